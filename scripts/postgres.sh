#!/bin/sh
# Make sure PostgreSQL's server binaries are installed, for the database tests.
# Idempotent: does nothing when initdb is already there. As root it installs
# Debian's postgresql package (no prompts); otherwise it says what to run.
set -eu

for dir in ${PG_BINDIR:-} /usr/lib/postgresql/*/bin; do
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        exit 0
    fi
done
if command -v initdb >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "PostgreSQL is not installed; run as root: apt-get install -y postgresql" >&2
    exit 1
fi
echo "installing PostgreSQL (Debian's postgresql package) for the database tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends postgresql
