"""`bench/report.py`'s page: what a new run of `make bench` keeps of the page it replaces."""

from __future__ import annotations

from pathlib import Path

from bench.report import keep_sections, markdown

OLD = """# Benchmarks

the last run's intro

## Targets

the last run's targets

## Events (NATS JetStream)

written by python -m bench.events

## Profile findings

the last run's copy of bench/findings.md

## Security: JWT and rate limits

written by hand
"""

NEW = """# Benchmarks

this run's intro

## Targets

this run's targets

## Profile findings

bench/findings.md now
"""


def test_a_new_run_keeps_the_sections_it_does_not_write_before_the_findings() -> None:
    assert keep_sections(OLD, NEW) == (
        "# Benchmarks\n\nthis run's intro\n\n## Targets\n\nthis run's targets\n\n"
        "## Events (NATS JetStream)\n\nwritten by python -m bench.events\n\n"
        "## Security: JWT and rate limits\n\nwritten by hand\n\n"
        "## Profile findings\n\nbench/findings.md now\n"
    )
    assert keep_sections(NEW, NEW) == NEW  # nothing to keep: the page as written
    without_findings = NEW.split("## Profile findings")[0]
    assert keep_sections(OLD, without_findings).endswith(
        "this run's targets\n\n## Events (NATS JetStream)\n\nwritten by python -m bench.events"
        "\n\n## Security: JWT and rate limits\n\nwritten by hand\n"
    )


def test_the_page_as_committed_survives_a_new_run() -> None:
    # every hand-written section of docs/benchmarks.md outlives a regeneration
    committed = (Path(__file__).parents[1] / "docs" / "benchmarks.md").read_text()
    new = markdown([], {"cores": "2"}, "python -m bench", {}, {}, {}, "now")
    page = keep_sections(committed, new)
    headings = [line for line in committed.splitlines() if line.startswith("## ")]
    # this run wrote no scaling table: the committed one, another run's, is not kept
    assert [line for line in page.splitlines() if line.startswith("## ")] == [
        heading for heading in headings if heading != "## Scaling with workers (json)"
    ]
    # the findings sit a level down, under "Profile findings", not beside it
    assert "\n### Counting instructions instead of timing (27 November)\n" in new
