"""`shoal.__all__` lists exactly the public names the package exports."""

import pkgutil

import shoal


def test_all_is_complete_and_accurate() -> None:
    public = {name for name in dir(shoal) if not name.startswith("_")}
    modules = {info.name for info in pkgutil.iter_modules(shoal.__path__)}
    assert set(shoal.__all__) == public - modules
    for name in shoal.__all__:
        obj = getattr(shoal, name)
        if isinstance(obj, type):  # Handler and Middleware are type aliases
            assert obj.__module__.startswith("shoal."), name


def test_internal_machinery_lives_in_private_modules() -> None:
    # a new public module is a decision: internals get a leading underscore
    public = {info.name for info in pkgutil.iter_modules(shoal.__path__)}
    assert {name for name in public if not name.startswith("_")} == {
        "adapters",
        "app",
        "background",
        "cli",
        "client",
        "compression",
        "cors",
        "datastructures",
        "db",
        "errors",
        "events",
        "forms",
        "health",
        "limits",
        "logs",
        "metrics",
        "openapi",
        "requests",
        "responses",
        "routing",
        "security",
        "settings",
        "sse",
        "staticfiles",
        "system",
        "testing",
        "tracing",
        "watchdog",
        "websockets",
        "wsgi",
    }
