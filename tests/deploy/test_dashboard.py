"""deploy/grafana: every query parses as PromQL and asks only for metrics shoal exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import promql_parser
import pytest

from tests.deploy.contract import DEPLOY, METRICS, TARGET_LABELS

DASHBOARD = DEPLOY / "grafana" / "shoal-dashboard.json"
COUNTER_FUNCTIONS = {"rate", "irate", "increase"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def variables() -> set[str]:
    return {variable["name"] for variable in dashboard()["templating"]["list"]}


def as_promql(expr: str) -> str:
    """The expression as Prometheus gets it: Grafana's variables substituted."""
    expr = expr.replace("$__rate_interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


@dataclass
class Use:
    """One metric selector in a query, with what encloses it."""

    series: str
    functions: tuple[str, ...]
    grouping: tuple[str, ...]


def uses(
    node: Any, functions: tuple[str, ...] = (), grouping: tuple[str, ...] = ()
) -> Iterator[Use]:
    """Every vector selector under `node`, walking promql_parser's tree."""
    if isinstance(node, promql_parser.VectorSelector):
        assert node.name is not None, "select metrics by name"
        yield Use(node.name, functions, grouping)
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from uses(node.vector_selector, functions, grouping)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from uses(arg, (*functions, node.func.name), grouping)
    elif isinstance(node, promql_parser.AggregateExpr):
        labels = tuple(node.modifier.labels) if node.modifier is not None else ()
        yield from uses(node.expr, functions, (*grouping, *labels))
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from uses(node.lhs, functions, grouping)
        yield from uses(node.rhs, functions, grouping)
    elif isinstance(
        node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
    ):
        yield from uses(node.expr, functions, grouping)
    else:
        assert isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral), node


def exported_name(series: str) -> tuple[str, str]:
    """(metric, suffix) for a series name: histograms are read through _bucket/_sum/_count."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = series.removesuffix(suffix)
        if base != series and METRICS.get(base, ("",))[0] == "histogram":
            return base, suffix
    return series, ""


def all_uses() -> list[tuple[str, Use]]:
    return [
        (title, use)
        for title, expr in queries()
        for use in uses(promql_parser.parse(as_promql(expr)))
    ]


@pytest.mark.parametrize(("title", "expr"), queries())
def test_every_query_parses_as_promql(title: str, expr: str) -> None:
    promql_parser.parse(as_promql(expr))  # raises on a syntax error
    for name in re.findall(r"\$\{?(\w+)\}?", expr):
        assert name == "__rate_interval" or name in variables(), f"{title}: ${name} is undefined"


def test_the_parser_rejects_what_prometheus_would() -> None:
    for broken in (
        "sum(rate(shoal_requests_total[1m])",
        "rate(shoal_requests_total)",
        "sum by le (x)",
    ):
        with pytest.raises(ValueError):
            promql_parser.parse(broken)


def test_every_metric_queried_is_one_shoal_exports() -> None:
    unknown = {
        (title, use.series)
        for title, use in all_uses()
        if exported_name(use.series)[0] not in METRICS
    }
    assert unknown == set()


def test_every_exported_metric_is_on_the_dashboard() -> None:
    shown = {exported_name(use.series)[0] for _, use in all_uses()}
    assert shown == set(METRICS)


def test_each_metric_is_queried_as_its_type_allows() -> None:
    for title, use in all_uses():
        name, suffix = exported_name(use.series)
        kind = METRICS[name][0]
        in_rate = bool(COUNTER_FUNCTIONS & set(use.functions))
        where = f"{title}: {use.series}"
        if kind == "counter" or suffix:
            assert in_rate, f"{where} is a counter: query its rate"
        else:
            assert not in_rate, f"{where} is a gauge: its rate means nothing"
        if suffix == "_bucket":
            assert "histogram_quantile" in use.functions and "le" in use.grouping, where
        # a label the metric does not have would group everything into one series
        allowed = METRICS[name][1] | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
        assert set(use.grouping) <= allowed, where


def test_every_query_follows_the_dashboards_filters() -> None:
    for title, expr in queries():
        for variable in ("namespace", "service", "pod"):
            selectors = re.findall(r"\b(?:shoal|process)_\w+\{([^}]*)\}", expr)
            assert selectors, title
            for matchers in selectors:
                assert f'{variable}=~"${variable}"' in matchers, (
                    f"{title}: not filtered by {variable}"
                )


def test_panels_are_well_formed_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert [target["refId"] for target in panel["targets"]] == [
                chr(ord("A") + index) for index in range(len(panel["targets"]))
            ]
    assert dashboard()["uid"] == "shoal-service"
