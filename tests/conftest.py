"""Shared fixtures: real ``fedla worker`` processes on 127.0.0.1, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import fedla as fl
from fedla.local_workers import LocalWorkerPool

REPO_ROOT = Path(__file__).resolve().parent.parent
# Worker processes import the test-only remote functions of ``tests.udfs`` (``--allow-module``).
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
)


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory all session workers READ from."""
    return tmp_path_factory.mktemp("site")


@pytest.fixture(scope="session")
def workers(site_dir: Path) -> Iterator[list[str]]:
    """Addresses of three worker processes sharing ``site_dir``."""
    with LocalWorkerPool(3, data_dir=site_dir, allow_modules=("tests.udfs",)) as pool:
        yield pool.addresses


@pytest.fixture
def ctx(workers: list[str]) -> Iterator[fl.Context]:
    """A fresh tenant over all three session workers; its variables are cleared afterwards."""
    with fl.Context(workers=workers) as context:
        yield context


def assert_matches(
    result: object, expected: object, rtol: float = 1e-10, atol: float = 1e-12
) -> None:
    """Compare a fedla result with its numpy reference: shape, dtype kind and values."""
    if sp.issparse(result):
        result = result.toarray()
    if sp.issparse(expected):
        expected = expected.toarray()
    result_array, expected_array = np.asarray(result), np.asarray(expected)
    assert result_array.shape == expected_array.shape, (result_array.shape, expected_array.shape)
    if expected_array.dtype.kind in "biu":
        np.testing.assert_array_equal(result_array, expected_array)
    else:
        np.testing.assert_allclose(result_array, expected_array, rtol=rtol, atol=atol)


_SPARK_FAILURE: list[str] = []


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """A ``local[2]`` SparkSession for the whole run; every Spark test skips, with the reason,
    if pyspark is missing or the JVM cannot start."""
    if _SPARK_FAILURE:
        pytest.skip(_SPARK_FAILURE[0])
    try:
        from fedla.spark import spark_session

        session = spark_session("local[2]", driver_memory="2g")
    except Exception as exc:  # noqa: BLE001 - any failure to start means: no Spark here
        _SPARK_FAILURE.append(f"Spark cannot start here: {type(exc).__name__}: {exc}"[:500])
        pytest.skip(_SPARK_FAILURE[0])
    yield session
    session.stop()
