"""`shoal.__all__` lists exactly the public names the package exports."""

import shoal


def test_all_is_complete_and_accurate() -> None:
    public = {name for name in dir(shoal) if not name.startswith("_")}
    modules = {"adapters", "app", "cli", "datastructures", "db", "errors", "handlers"}
    modules |= {"requests", "responses", "routing", "testing", "watchdog", "wsgi"}
    modules |= {"dependencies", "openapi", "params", "client", "system"}
    modules |= {"events"}
    assert set(shoal.__all__) == public - modules
    for name in shoal.__all__:
        obj = getattr(shoal, name)
        if isinstance(obj, type):  # Handler and Middleware are type aliases
            assert obj.__module__.startswith("shoal."), name
