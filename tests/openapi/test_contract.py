"""Contract test: schemathesis fuzzes the example service from its own OpenAPI document.

Every check is on: no server errors, responses (status, content type, body)
that match the document, schema-valid requests accepted, schema-invalid ones
rejected with a 4xx, plus the stateful phase that follows links between
operations. The example count and the seed are fixed so the run is bounded
and repeatable.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.servers import BIN, running_server


def test_the_users_service_honours_its_own_schema(tmp_path: Path) -> None:
    with running_server("granian-rsgi", "examples.users_service:app") as server:
        run = subprocess.run(
            [
                str(BIN / "st"),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "40",
                "--seed",
                "20240601",
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
            ],
            cwd=tmp_path,  # schemathesis writes its scratch files here, not in the repo
            capture_output=True,
            text=True,
            timeout=120,
        )
        server_log = server.output()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "No issues found" in output
    generated = re.search(r"(\d+) generated", output)
    assert generated is not None and int(generated.group(1)) >= 100, output
    assert "Traceback" not in server_log
