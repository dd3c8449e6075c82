"""The import contracts of ``pyproject.toml`` ([tool.importlinter]) hold: dependencies point
``fedla.estimators -> fedla.algorithms -> fedla -> fedla.runtime``, the plan layer never imports
``Matrix``, and no package has import cycles among its modules.

import-linter walks a package's directory, but ``runtime/``, ``algorithms/`` and
``estimators/`` are mapped into ``fedla`` by pyproject's ``package-dir``; so the check runs on a
copy of the sources laid out as they are installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept(tmp_path: Path) -> None:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or \
        shutil.which("lint-imports")
    if command is None:
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    sources = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "fedla", tmp_path / "fedla", ignore=sources)
    shutil.copytree(ROOT / "runtime", tmp_path / "fedla" / "runtime", ignore=sources)
    shutil.copytree(ROOT / "algorithms", tmp_path / "fedla" / "algorithms", ignore=sources)
    shutil.copytree(ROOT / "estimators", tmp_path / "fedla" / "estimators", ignore=sources)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([command, "--no-cache"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
