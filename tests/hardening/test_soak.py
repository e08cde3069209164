"""A short smoke of `make soak`: load with hostile clients mixed in; nothing leaks or fails."""

from __future__ import annotations

from .soak import soak


def test_a_short_soak_serves_every_request_and_lets_every_hostile_client_go() -> None:
    report = soak(seconds=3, hostile=5, connections=8)
    for route in report["wrk"].values():
        assert route["requests"] > 0
        assert route["non_2xx"] == 0, route
        # wrk's timeouts (2 s) depend on how loaded the machine is; a refused,
        # reset or failed connection does not
        errors = route["socket_errors"]
        assert errors == "none" or errors["connect"] == errors["read"] == errors["write"] == 0
    assert report["hostile"]["slow_body"]["statuses"].get("408", 0) >= 1
    assert report["hostile"]["slowloris"]["closed_by_server"] >= 1
    assert report["probe_max_s"] < 5
    assert report["fds_growth"] <= 2, report
    assert report["rss_growth_kib"] < 32 * 1024, report
    assert report["tracebacks"] == 0
