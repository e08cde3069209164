"""Every example in docs/http.md is code from a tested file under examples/."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_each_python_block_is_from_an_example() -> None:
    page = (ROOT / "docs" / "http.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert blocks
    linked = re.findall(r"\]\(\.\./(examples/\w+\.py)\)", page)
    sources = "\n".join((ROOT / name).read_text() for name in linked)
    for block in blocks:
        assert block.strip() in sources, block
