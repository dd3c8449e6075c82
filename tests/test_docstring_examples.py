"""Every docstring example of fedla runs and prints what it shows (doctest).

pytest's ``--doctest-modules`` imports a file by its path, which would load ``runtime/`` and
``algorithms/`` a second time as top-level ``runtime``/``algorithms`` packages (pyproject maps
them into ``fedla``), with a second kernel registry and second exception classes. So the
examples are collected here from the installed modules instead, one test per module.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

PACKAGES = ("fedla", "fedla.runtime", "fedla.algorithms", "fedla.estimators")

EXCLUDED: dict[str, str] = {}
"""Modules whose examples cannot run here, with the reason."""


def _modules() -> list[str]:
    names = set(PACKAGES)
    for package in PACKAGES:
        path = importlib.import_module(package).__path__
        names |= {info.name for info in pkgutil.walk_packages(path, f"{package}.")}
    return sorted(name for name in names if not name.endswith("__main__"))  # runs the CLI


def _with_examples() -> list[object]:
    params = []
    for name in _modules():
        tests = [t for t in doctest.DocTestFinder().find(importlib.import_module(name))
                 if t.examples]
        if tests or name in EXCLUDED:
            marks = [pytest.mark.skip(reason=EXCLUDED[name])] if name in EXCLUDED else []
            params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("module", _with_examples())
def test_docstring_examples(module: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    report = io.StringIO()
    for test in doctest.DocTestFinder().find(importlib.import_module(module)):
        runner.run(test, out=report.write)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, report.getvalue()
    assert results.attempted > 0
