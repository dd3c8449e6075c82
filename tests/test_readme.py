"""Every ``python`` block of README.md runs, in a fresh namespace, as a user would paste it.

A block the README marks ``<!-- not run: reason -->`` on the line above is skipped with that
reason (it needs remote sites, or shows output of one particular run).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(?:<!-- not run: (?P<reason>.+?) -->\n)?```python\n(?P<code>.*?)```",
                   re.DOTALL)


def _blocks() -> list[object]:
    text = README.read_text()
    params = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        marks = [pytest.mark.skip(reason=match["reason"])] if match["reason"] else []
        params.append(pytest.param(match["code"], line, id=f"line-{line}", marks=marks))
    return params


def test_the_readme_has_blocks_to_run() -> None:
    assert sum(not param.marks for param in _blocks()) >= 6  # type: ignore[attr-defined]


@pytest.mark.parametrize(("code", "line"), _blocks())
def test_readme_block(code: str, line: int) -> None:
    source = "\n" * (line - 1) + code  # tracebacks point at README's own line numbers
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an example that warns is a wrong example
        exec(compile(source, str(README), "exec"), {"__name__": "readme"})
