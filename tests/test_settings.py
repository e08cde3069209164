"""`shoal.Settings`: conversion, validation in one line, `.env` files, precedence, secrets."""

from __future__ import annotations

import enum
import logging
import os
import re
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import msgspec
import pytest

from shoal import Secret, Settings, SettingsError
from shoal.errors import ConfigurationError, ShoalError
from shoal.settings import read_env_file
from tests.servers import ROOT, command, free_port, running_server


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Pool(msgspec.Struct, frozen=True):
    size: int = 5
    timeout: timedelta = timedelta(seconds=2)


def one(annotation: Any, raw: str) -> Any:
    """`raw` loaded into a one-field settings class of type `annotation`."""
    cls = msgspec.defstruct("One", [("value", annotation)], bases=(Settings,), frozen=True)
    return cls.load({"VALUE": raw}, env_file=None).value  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("annotation", "raw", "expected"),
    [
        (str, " spaced ", " spaced "),
        (int, "42", 42),
        (int, " -7 ", -7),
        (float, "1.5", 1.5),
        (Decimal, "0.10", Decimal("0.10")),
        (bool, "true", True),
        (bool, "YES", True),
        (bool, "on", True),
        (bool, "1", True),
        (bool, "False", False),
        (bool, "no", False),
        (bool, "off", False),
        (bool, "0", False),
        (timedelta, "30s", timedelta(seconds=30)),
        (timedelta, "500ms", timedelta(milliseconds=500)),
        (timedelta, "1h30m", timedelta(minutes=90)),
        (timedelta, "2d", timedelta(days=2)),
        (timedelta, "2.5", timedelta(seconds=2.5)),
        (timedelta, "PT5M", timedelta(minutes=5)),
        (list[int], "1, 2,3", [1, 2, 3]),
        (list[int], "[1, 2, 3]", [1, 2, 3]),
        (list[str], "a,b,,c", ["a", "b", "c"]),
        (list[str], '["a,b", "c"]', ["a,b", "c"]),
        (list[bool], "yes,no", [True, False]),
        (list[str], "", []),
        (set[int], "1,1,2", {1, 2}),
        (tuple[int, ...], "3,4", (3, 4)),
        (tuple[int, str], '[1, "x"]', (1, "x")),
        (dict[str, int], '{"a": 1}', {"a": 1}),
        (Pool, '{"size": 9}', Pool(size=9)),
        (int | None, "", None),
        (int | None, "3", 3),
        (Literal["a", "b"], "b", "b"),
        (Color, "blue", Color.BLUE),
        (Path, "/var/lib/notes", Path("/var/lib/notes")),
        (Annotated[int, msgspec.Meta(ge=1, le=10)], "10", 10),
    ],
)
def test_text_becomes_the_declared_type(annotation: Any, raw: str, expected: Any) -> None:
    value = one(annotation, raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("annotation", "raw", "message"),
    [
        (int, "many", "VALUE: expected an integer, got 'many'"),
        (int, "1.5", "VALUE: expected an integer, got '1.5'"),
        (float, "fast", "VALUE: expected a number, got 'fast'"),
        (bool, "maybe", "VALUE: expected a boolean (true/false, yes/no, on/off, 1/0), got 'maybe'"),
        (
            timedelta,
            "5 parsecs",
            "VALUE: expected a duration (30s, 500ms, 5m, 1h, or seconds), got '5 parsecs'",
        ),
        (
            list[int],
            "1,two",
            "VALUE: expected a comma-separated or JSON list, each an integer, got '1,two' (item 2)",
        ),
        (Literal["a", "b"], "c", "VALUE: expected one of 'a', 'b', got 'c'"),
        (Color, "green", "VALUE: expected one of 'red', 'blue', got 'green'"),
        (
            Annotated[int, msgspec.Meta(ge=1)],
            "0",
            "VALUE: expected an integer >= 1, got '0'",
        ),
        (
            Pool,
            '{"size": "big"}',
            'VALUE: expected a JSON object (Pool), got \'{"size": "big"}\' '
            "(Expected `int`, got `str` - at `$.size`)",
        ),
        (int, "x" * 100, f"VALUE: expected an integer, got '{'x' * 57}...'"),
        (int, "1\n2", "VALUE: expected an integer, got '1\\n2'"),  # escaped: still one line
    ],
)
def test_a_wrong_value_is_one_line_naming_the_variable(
    annotation: Any, raw: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        one(annotation, raw)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


class Service(Settings, kw_only=True):
    env_prefix = "SVC_"
    database_url: Secret[str]
    port: int = 8080
    debug: bool = False
    pool: Pool = Pool()
    hosts: list[str] = msgspec.field(default_factory=list)


def test_every_problem_is_reported_at_once_in_one_line() -> None:
    with pytest.raises(SettingsError) as caught:
        Service.load({"SVC_PORT": "http", "SVC_DEBUG": "sometimes"}, env_file=None)
    error = caught.value
    assert str(error) == (
        "SVC_DATABASE_URL: required, not set (expected a string); "
        "SVC_PORT: expected an integer, got 'http'; "
        "SVC_DEBUG: expected a boolean (true/false, yes/no, on/off, 1/0), got 'sometimes'"
    )
    assert [name for name, _ in error.problems] == ["SVC_DATABASE_URL", "SVC_PORT", "SVC_DEBUG"]
    assert isinstance(error, ConfigurationError) and isinstance(error, ShoalError)


def test_defaults_fill_what_the_environment_does_not_set() -> None:
    config = Service.load({"SVC_DATABASE_URL": "sqlite://:memory:", "PORT": "1"}, env_file=None)
    assert (config.port, config.debug, config.pool, config.hosts) == (8080, False, Pool(), [])
    assert config.database_url.reveal() == "sqlite://:memory:"


def test_a_nested_struct_field_by_field_or_as_json() -> None:
    base = {"SVC_DATABASE_URL": "x"}
    by_field = Service.load({**base, "SVC_POOL__SIZE": "20", "SVC_POOL__TIMEOUT": "250ms"})
    assert by_field.pool == Pool(size=20, timeout=timedelta(milliseconds=250))
    as_json = Service.load({**base, "SVC_POOL": '{"size": 3}'})
    assert as_json.pool == Pool(size=3)
    with pytest.raises(SettingsError, match=r"^SVC_POOL__SIZE: expected an integer, got 'x'$"):
        Service.load({**base, "SVC_POOL__SIZE": "x"})


def test_the_variables_a_class_reads() -> None:
    assert Service.variables() == [
        ("SVC_DATABASE_URL", "a string (secret)"),
        ("SVC_PORT", "an integer"),
        ("SVC_DEBUG", "a boolean (true/false, yes/no, on/off, 1/0)"),
        ("SVC_POOL", "a JSON object (Pool)"),
        ("SVC_POOL__SIZE", "an integer"),
        ("SVC_POOL__TIMEOUT", "a duration (30s, 500ms, 5m, 1h, or seconds)"),
        ("SVC_HOSTS", "a comma-separated or JSON list, each a string"),
    ]


def test_settings_are_frozen() -> None:
    config = Service.load({"SVC_DATABASE_URL": "x"})
    with pytest.raises(AttributeError):
        config.port = 1


def test_a_likely_typo_is_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="shoal.settings")
    env = {"SVC_DATABASE_URL": "x", "SVC_DEBGU": "true", "SVC_SERVICE_HOST": "10.0.0.1"}
    Service.load(env, env_file=None)
    assert [record.getMessage() for record in caplog.records] == [
        "SVC_DEBGU names no setting of Service; did you mean SVC_DEBUG?"
    ]


# -- .env files ---------------------------------------------------------------------------


ENV_FILE = """\
# a comment, then a blank line

PLAIN=value
SPACED = spaced value   # a trailing comment
export EXPORTED=yes
SINGLE='# not a comment'
SQ='a \\n b'
DOUBLE="tab\\there \\"quoted\\" # kept"
EMPTY=
HASH=a#b
URL=postgresql://user:p%40ss@db:5432/notes?sslmode=require
"""


def test_env_file_syntax(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(ENV_FILE)
    assert read_env_file(path) == {
        "PLAIN": "value",
        "SPACED": "spaced value",
        "EXPORTED": "yes",
        "SINGLE": "# not a comment",
        "SQ": "a \\n b",
        "DOUBLE": 'tab\there "quoted" # kept',
        "EMPTY": "",
        "HASH": "a#b",
        "URL": "postgresql://user:p%40ss@db:5432/notes?sslmode=require",
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("JUST A SENTENCE hunter2", "expected KEY=VALUE"),
        ("KEY='hunter2", "unterminated single quote"),
        ('KEY="hunter2', "unterminated double quote"),
        ("KEY='a' hunter2", "text after the closing quote"),
        ("9KEY=hunter2", "expected KEY=VALUE"),
    ],
)
def test_a_malformed_env_line_is_named_by_number_not_content(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = tmp_path / ".env"
    path.write_text(f"GOOD=1\n\n{line}\n")
    with pytest.raises(SettingsError) as caught:
        read_env_file(path)
    assert str(caught.value) == f"{path}:3: {problem}"
    assert "hunter2" not in str(caught.value)


def test_an_unreadable_env_file_is_one_line_too(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"KEY=caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(SettingsError, match=r"\.env: not UTF-8 text \(byte 7\)$"):
        read_env_file(path)
    folder = tmp_path / "folder.env"
    folder.mkdir()
    with pytest.raises(SettingsError, match=r"folder\.env: cannot be read \(Is a directory\)$"):
        read_env_file(folder)


class FromFile(Settings):
    env_prefix = "FF_"
    env_file = ".env"
    name: str = "default"
    size: int = 1
    color: str = "red"


def test_precedence_environment_then_file_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("FF_NAME=from-file\nFF_SIZE=2\n")
    monkeypatch.chdir(tmp_path)  # the class's env_file is relative to the working directory
    config = FromFile.load({"FF_SIZE": "3"})
    assert (config.name, config.size, config.color) == ("from-file", 3, "red")
    monkeypatch.setenv("FF_NAME", "from-os-environ")
    assert FromFile.load().name == "from-os-environ"
    assert FromFile.load({}, env_file=None).name == "default"  # the file switched off
    other = tmp_path / "other.env"
    other.write_text("FF_COLOR=blue\n")
    assert FromFile.load({}, env_file=other).color == "blue"


def test_a_missing_env_file_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert FromFile.load({}).name == "default"


def test_a_bad_value_in_the_file_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("FF_SIZE=huge\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match=r"^FF_SIZE: expected an integer, got 'huge'$"):
        FromFile.load({})


# -- secrets ------------------------------------------------------------------------------


class Keys(Settings):
    env_prefix = "KEYS_"
    token: Secret[str] = Secret("")
    pin: Secret[int] = Secret(0)
    backup: Secret[str] | None = None


def test_a_secret_is_masked_everywhere_but_reveal(caplog: pytest.LogCaptureFixture) -> None:
    config = Keys.load({"KEYS_TOKEN": "hunter2", "KEYS_PIN": "1234", "KEYS_BACKUP": "swordfish"})
    assert config.token.reveal() == "hunter2"
    assert config.pin.reveal() == 1234
    assert config.backup is not None and config.backup.reveal() == "swordfish"
    shown = [repr(config), str(config), f"{config.token}", f"{config.token:>12}", str(config.pin)]
    for text in shown:
        assert "hunter2" not in text and "1234" not in text and "swordfish" not in text
    assert repr(config) == (
        "Keys(token=Secret('**********'), pin=Secret('**********'), backup=Secret('**********'))"
    )
    with caplog.at_level(logging.INFO):
        logging.getLogger("shoal.tests").info("settings: %s %r", config, config)
    assert "hunter2" not in caplog.text and "**********" in caplog.text
    with pytest.raises(TypeError):  # never sent as JSON by mistake
        msgspec.json.encode(config)
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


def test_a_wrong_secret_is_named_but_never_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        Keys.load({"KEYS_PIN": "hunter2"})
    assert str(caught.value) == ("KEYS_PIN: expected an integer, got a value not shown (secret)")


class Credentials(msgspec.Struct, frozen=True):
    user: str
    password: Secret[str]
    mode: Literal["ro", "rw"] = "ro"


class Nested(Settings):
    env_prefix = "NEST_"
    credentials: Credentials | None = None
    tokens: list[Secret[int]] = msgspec.field(default_factory=list)


def test_secrets_inside_structs_and_lists_stay_hidden() -> None:
    by_field = Nested.load({"NEST_CREDENTIALS__USER": "ada", "NEST_CREDENTIALS__PASSWORD": "pw1"})
    as_json = Nested.load({"NEST_CREDENTIALS": '{"user": "ada", "password": "pw1"}'})
    for config in (by_field, as_json):
        assert config.credentials is not None
        assert config.credentials.password.reveal() == "pw1"
        assert "pw1" not in repr(config)
    assert [t.reveal() for t in Nested.load({"NEST_TOKENS": "1, 2"}).tokens] == [1, 2]
    bad = {
        "NEST_CREDENTIALS": '{"user": "ada", "password": "hunter2", "mode": "hunter2"}',
        "NEST_TOKENS": "1,hunter2",
    }
    with pytest.raises(SettingsError) as caught:
        Nested.load(bad)
    assert str(caught.value) == (
        "NEST_CREDENTIALS: expected a JSON object (Credentials) (empty for none), "
        "got a value not shown (secret); "
        "NEST_TOKENS: expected a comma-separated or JSON list, each an integer, "
        "got a value not shown (secret)"
    )


def test_a_bom_and_crlf_line_ends_are_read_as_text_editors_mean_them(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"\xef\xbb\xbfFIRST=1\r\nSECOND='two'\r\n")
    assert read_env_file(path) == {"FIRST": "1", "SECOND": "two"}


# -- a real `shoal run` -------------------------------------------------------------------


def shoal_run_fails(target: str, env: dict[str, str], cwd: Path = ROOT) -> str:
    """Run `shoal run target`, which must exit non-zero soon; return its output."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    result = subprocess.run(
        command("granian-rsgi", target, free_port()),
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    return result.stderr


def test_shoal_run_stops_with_the_line_naming_the_variable() -> None:
    output = shoal_run_fails("examples.notes_service:app", {"NOTES_PAGE_SIZE": "many"})
    # the whole output is one line: no traceback, no worker ever started
    assert output == "shoal: error: NOTES_PAGE_SIZE: expected an integer, got 'many'\n"


def test_shoal_run_names_a_missing_secret_and_hides_a_wrong_one() -> None:
    output = shoal_run_fails("tests.apps.settings_app:app", {"SETAPP_PIN": "hunter2"})
    last = output.strip().splitlines()[-1]
    assert last.endswith(
        "SETAPP_API_KEY: required, not set (expected a string); "
        "SETAPP_PIN: expected an integer, got a value not shown (secret)"
    )
    assert "hunter2" not in output


def test_shoal_run_reads_a_dotenv_in_its_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NOTES_PAGE_SIZE=0.5\n")
    output = shoal_run_fails("examples.notes_service:app", {}, cwd=tmp_path)
    assert (
        output.strip().splitlines()[-1].endswith("NOTES_PAGE_SIZE: expected an integer, got '0.5'")
    )


def test_shoal_run_serves_with_settings_from_the_environment() -> None:
    env = {"SETAPP_API_KEY": "hunter2", "SETAPP_PIN": "4321", "SETAPP_WORKERS": "3"}
    with running_server("granian-rsgi", "tests.apps.settings_app:app", env=env) as server:
        response = httpx.get(server.url + "/config")
    assert response.json() == {"workers": 3, "api_key": "**********", "pin": "**********"}
    output = server.output()
    assert "started with Config(api_key=Secret('**********')" in output  # the workers' log
    assert "hunter2" not in output and "4321" not in output


def test_the_notes_example_takes_its_page_size_from_the_environment() -> None:
    with running_server(
        "granian-rsgi", "examples.notes_service:app", env={"NOTES_PAGE_SIZE": "1"}
    ) as server:
        for text in ("one", "two"):
            httpx.post(server.url + "/notes", json={"text": text}).raise_for_status()
        notes = httpx.get(server.url + "/notes").json()
    assert notes == [{"id": 1, "text": "one"}]


# -- docs/settings.md ---------------------------------------------------------------------


def doc_blocks(language: str) -> list[str]:
    text = (ROOT / "docs" / "settings.md").read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_the_docs_example_runs_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql://app:s3cret@db/orders")
    monkeypatch.setenv("ORDERS_TIMEOUT", "250ms")
    namespace: dict[str, Any] = {"__name__": "docs_settings"}
    code = compile(doc_blocks("python")[0], "docs/settings.md", "exec", dont_inherit=True)
    exec(code, namespace)
    config = namespace["config"]
    assert config.timeout == timedelta(milliseconds=250)
    assert "database_url=Secret('**********')" in repr(config) and "s3cret" not in repr(config)
    assert config.database_url.reveal() == "postgresql://app:s3cret@db/orders"
    monkeypatch.setenv("ORDERS_PAGE_SIZE", "many")
    monkeypatch.delenv("ORDERS_DATABASE_URL")
    with pytest.raises(SettingsError) as caught:
        namespace["Config"].load()
    error_block = doc_blocks("text")[0].strip()
    assert error_block == f"shoal.errors.SettingsError: {caught.value}"


def test_the_docs_env_file_reads_as_documented(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(doc_blocks("sh")[0])
    assert read_env_file(path) == {
        "ORDERS_DATABASE_URL": "postgresql://app@127.0.0.1/orders",
        "ORDERS_DEBUG": "yes",
        "ORDERS_GREETING": "tab\there",
        "ORDERS_PATTERN": "#[a-z]+",
    }


def test_the_orm_example_reads_the_conventional_database_url() -> None:
    from examples.sqlalchemy_orm import Config as OrmConfig

    config = OrmConfig.load({"DATABASE_URL": "postgresql://app:pw@db/notes"}, env_file=None)
    assert config.database_url.reveal() == "postgresql://app:pw@db/notes"
    assert OrmConfig.load({}, env_file=None).database_url.reveal() == "postgresql://localhost/notes"
