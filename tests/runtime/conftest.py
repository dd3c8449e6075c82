"""Fixtures for talking to the session's real worker processes (see ``tests/conftest.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import Clear, Get, Put


@pytest.fixture(scope="session")
def client(workers: list[str]) -> Iterator[WorkerClient]:
    """A client of the first session worker."""
    worker_client = WorkerClient(workers[0], timeout=60)
    yield worker_client
    worker_client.close()


@pytest.fixture
def tenant(client: WorkerClient) -> Iterator[str]:
    """A tenant id of its own for one test; its variables are cleared afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    client.execute(name, [Clear(all=True)])


@pytest.fixture
def site_subdir(site_dir: Path) -> Path:
    """A fresh directory inside the workers' data directory, and its path relative to it."""
    path = site_dir / uuid.uuid4().hex[:12]
    path.mkdir()
    return path


@pytest.fixture
def assert_healthy(client: WorkerClient, tenant: str) -> Callable[[], None]:
    """A check that the worker still runs a normal batch correctly (after a bad request)."""

    def check() -> None:
        value = np.arange(12.0).reshape(3, 4)
        meta, got = client.execute(tenant, [Put("health-check", value), Get("health-check")])
        assert meta.shape == (3, 4)
        np.testing.assert_array_equal(got, value)

    return check
