"""Lineage reuse over real gRPC: keys cover out-of-line array content, sharing needs no arrays.

Regressions: attributes were keyed by their protobuf message, in which a large array is only a
buffer index, so two EXECs differing only in such an array shared a key; 0-d array literals were
keyed by their wire message and shared across tenants.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fedla.runtime.kernels import registry
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.codec import INLINE_LIMIT
from fedla.runtime.protocol.requests import Clear, ExecInst, Get, Literal, Put, Read
from fedla.runtime.worker.principal import Principal
from fedla.runtime.worker.request_handler import RequestHandler, WorkerConfig
from fedla.runtime.worker.server import create_server

LARGE = INLINE_LIMIT // 8 + 1
"""float64 elements that make an array travel as an out-of-line buffer."""


@pytest.fixture
def in_process_client(tmp_path, monkeypatch) -> Iterator[WorkerClient]:
    """A client of a worker served in this process, which knows the kernel ``test_shift``."""
    monkeypatch.setitem(registry._KERNELS, "test_shift", lambda xp, x, shift: x + shift)
    server, port = create_server(WorkerConfig(data_dir=tmp_path))
    server.start()
    client = WorkerClient(f"127.0.0.1:{port}", timeout=60)
    try:
        yield client
    finally:
        client.close()
        server.stop(0)


def _run(client: WorkerClient, tenant: str, inst: ExecInst) -> tuple[object, np.ndarray]:
    meta, value = client.execute(tenant, [inst, Get(inst.output)])
    return meta, value


def test_large_array_attributes_count_by_content(in_process_client):
    client, tenant = in_process_client, "a"
    X = np.zeros((2, LARGE))
    client.execute(tenant, [Put("X", X)])
    results = [
        _run(client, tenant, ExecInst("test_shift", ("X",), "Y", {"shift": np.full(LARGE, v)}))
        for v in (1.0, 2.0, 2.0)
    ]
    np.testing.assert_array_equal(results[0][1], X + 1.0)
    np.testing.assert_array_equal(results[1][1], X + 2.0)
    assert [meta.reused for meta, _ in results] == [False, False, True]


def test_large_arrays_inside_a_fused_program_count_by_content(client, tenant):
    """Against a session worker process: an out-of-line buffer nested in a program's step."""
    X = np.arange(6.0).reshape(2, 3)
    client.execute(tenant, [Put("X", X)])

    def fused(note: np.ndarray) -> ExecInst:
        step = {"kernel": "unary", "attrs": {"op": "exp"}, "args": [["in", 0]], "note": note}
        return ExecInst("fused", ("X",), "Y", {"program": [step]})

    first = np.zeros(LARGE)
    changed = first.copy()
    changed[LARGE // 2] = 1.0
    metas = [_run(client, tenant, fused(note))[0] for note in (first, first, changed)]
    assert [meta.reused for meta in metas] == [False, True, False]


@pytest.mark.parametrize("make", [np.float64, np.array], ids=["numpy-scalar", "0d-array"])
def test_0d_literals_count_by_value(client, tenant, make):
    X = np.arange(6.0).reshape(2, 3)
    client.execute(tenant, [Put("X", X)])
    results = [
        _run(client, tenant, ExecInst("binary", ("X", Literal(make(v))), "Y", {"op": "mul"}))
        for v in (2.0, 3.0)
    ]
    np.testing.assert_array_equal(results[0][1], X * 2.0)
    np.testing.assert_array_equal(results[1][1], X * 3.0)
    assert not results[1][0].reused


@pytest.mark.parametrize(
    "data_a, data_b",
    [(np.float64(2.0), np.float64(3.0)), (np.float64(2.0), np.float64(2.0)),
     (np.full((1, 3), 2.0), np.full((1, 3), 3.0)),
     (np.full((LARGE, 3), 2.0), np.full((LARGE, 3), 3.0))],
    ids=["0d-different", "0d-same", "row-different", "large-different"],
)
def test_another_tenant_never_gets_a_result_of_array_data(
    client, tenant, site_subdir: Path, data_a, data_b
):
    np.save(site_subdir / "X.npy", np.arange(3.0 * LARGE).reshape(LARGE, 3))
    path = f"{site_subdir.name}/X.npy"
    other = f"{tenant}-b-{uuid.uuid4().hex[:6]}"
    try:
        metas, values = [], []
        for who, data in ((tenant, data_a), (other, data_b)):
            client.execute(who, [Read("X", path)])
            inst = ExecInst("binary", ("X", Literal(data)), "Y", {"op": "mul"})
            meta, value = _run(client, who, inst)
            metas.append(meta)
            values.append(value)
        X = np.load(site_subdir / "X.npy")
        np.testing.assert_array_equal(values[0], X * data_a)
        np.testing.assert_array_equal(values[1], X * data_b)
        assert [meta.reused for meta in metas] == [False, False]
    finally:
        client.execute(other, [Clear(all=True)])


def test_results_of_reads_and_python_scalars_are_still_shared(tmp_path):
    """Shared, but not reported: ``reused`` never tells a tenant about another's work."""
    np.save(tmp_path / "X.npy", np.arange(6.0).reshape(2, 3))
    handler = RequestHandler(WorkerConfig(data_dir=tmp_path))
    inst = ExecInst("binary", ("X", Literal(2.5)), "Y", {"op": "mul"})
    metas = [handler.handle(Principal(who), [Read("X", "X.npy"), inst])[1] for who in "ab"]
    assert [meta.reused for meta in metas] == [False, False]
    assert handler.lineage_cache.stats()["hits"] == 1  # b's EXEC was a lookup all the same
    assert handler.read_cache.stats()["hits"] == 1
