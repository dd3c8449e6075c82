"""Privacy levels of datasets (``<file>.policy.json``) against real worker processes.

A ``private-aggregation`` dataset releases aggregates over at least ``min_rows`` rows (``X.T @ X``,
``lm``) and nothing row by row: the coordinator refuses such plans before sending anything
(``ctx.stats()`` does not move), and the worker refuses the GET itself when a client bypasses the
coordinator. ``private`` releases nothing derived; ``tenants`` restricts READ; ``--audit-log``
records every request, refusals included.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fedla as fl
from fedla.algorithms import lm
from fedla.local_workers import LocalWorkerPool
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import Clear, ExecInst, ExecUdf, Get, Read
from tests.conftest import assert_matches

RNG = np.random.default_rng(20261130)
X = RNG.standard_normal((40, 4))
Y = X @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * RNG.standard_normal((40, 1))
HALF = 20  # rows per site


def _write(site_dir: Path, name: str, block: np.ndarray, policy: dict[str, Any] | None) -> str:
    np.save(site_dir / name, block)
    if policy is not None:
        (site_dir / f"{name}.policy.json").write_text(json.dumps(policy))
    return name


@pytest.fixture
def dataset(site_dir: Path) -> Callable[..., list[str]]:
    """Writes X (or Y) cut in two row blocks with a policy; returns their file names."""

    def write(data: np.ndarray = X, policy: dict[str, Any] | None = None) -> list[str]:
        stem = uuid.uuid4().hex[:10]
        return [_write(site_dir, f"{stem}-{i}.npy", data[i * HALF:(i + 1) * HALF], policy)
                for i in range(2)]

    return write


def _federated(ctx: fl.Context, workers: list[str], names: list[str]) -> fl.Matrix:
    return ctx.federated([f"{site}/{name}" for site, name in zip(workers, names)])


AGGREGATION = {"level": "private-aggregation", "min_rows": 10}


def test_aggregates_of_private_aggregation_data_are_released(ctx, workers, dataset):
    F = _federated(ctx, workers, dataset(X, AGGREGATION))
    labels = _federated(ctx, workers, dataset(Y, AGGREGATION))
    assert_matches((F.T @ F).compute(), X.T @ X)
    assert_matches((F.T @ labels).compute(), X.T @ Y)
    assert_matches(F.sum(axis=0).compute(), X.sum(axis=0, keepdims=True))
    beta = lm(F, labels)
    assert_matches(beta, np.linalg.solve(X.T @ X, X.T @ Y), rtol=1e-8)


def test_public_labels_with_private_aggregation_features(ctx, workers, dataset):
    F = _federated(ctx, workers, dataset(X, AGGREGATION))
    labels = _federated(ctx, workers, dataset(Y, None))
    assert_matches(lm(F, labels), np.linalg.solve(X.T @ X, X.T @ Y), rtol=1e-8)


REFUSED: dict[str, Callable[[fl.Matrix], Any]] = {
    "compute": lambda F: F.compute(),
    "fl.compute": lambda F: fl.compute(F),
    "row slice": lambda F: F[0:5, :].compute(),
    "gram of 5 rows": lambda F: (F[0:5].T @ F[0:5]).compute(),
    "rowwise": lambda F: (F * 2.0).sum(axis=1).compute(),
    "max over rows": lambda F: F.max(axis=0).compute(),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_raw_rows_and_small_aggregates_are_refused_before_any_work(ctx, workers, dataset, case):
    names = dataset(X, AGGREGATION)
    F = _federated(ctx, workers, names)
    before = ctx.stats()
    with pytest.raises(fl.AccessDeniedError, match="private-aggregation") as info:
        REFUSED[case](F)
    assert names[0] in str(info.value)
    assert "at least 10 rows" in str(info.value)
    assert ctx.stats() == before  # no request was sent


def test_private_dataset_releases_not_even_aggregates(ctx, workers, dataset):
    names = dataset(X, {"level": "private"})
    F = _federated(ctx, workers, names)
    before = ctx.stats()
    with pytest.raises(fl.AccessDeniedError, match=f"'{names[0]}' is private: nothing derived"):
        (F.T @ F).compute()
    assert ctx.stats() == before


@pytest.fixture
def client(workers: list[str]) -> Iterator[WorkerClient]:
    worker_client = WorkerClient(workers[0], timeout=60)
    tenant = f"raw-{uuid.uuid4().hex[:8]}"
    worker_client.tenant = tenant  # type: ignore[attr-defined]
    yield worker_client
    worker_client.execute(tenant, [Clear(all=True)])
    worker_client.close()


def test_worker_refuses_raw_rows_to_a_client_bypassing_the_coordinator(client, dataset):
    name = dataset(X, AGGREGATION)[0]
    tenant = client.tenant
    meta = client.execute(tenant, [Read("X", name)])[0]
    assert (meta.privacy, meta.min_rows) == ("private-aggregation", 10)
    with pytest.raises(fl.AccessDeniedError, match=f"'{name}' is private-aggregation.*raw rows"):
        client.execute(tenant, [Get("X")])
    with pytest.raises(fl.AccessDeniedError, match="aggregates only 5 rows"):
        client.execute(tenant, [ExecInst("slice", ("X",), "S", {"rows": [0, 5]}),
                                ExecInst("tsmm", ("S",), "G5"), Get("G5")])
    with pytest.raises(fl.AccessDeniedError, match="products of raw rows"):  # X X^T
        client.execute(tenant, [ExecInst("tsmm", ("X",), "K", {"left": False}), Get("K")])
    with pytest.raises(fl.AccessDeniedError, match="EXEC_UDF results over restricted data"):
        client.execute(tenant, [ExecUdf("tests.udfs:total", ("X",))])
    *_, gram = client.execute(tenant, [ExecInst("tsmm", ("X",), "G"), Get("G")])
    assert_matches(gram, X[:HALF].T @ X[:HALF])


def test_tenants_restrict_read(workers, site_dir):
    name = _write(site_dir, f"{uuid.uuid4().hex[:10]}.npy", X, {
        "level": "public", "tenants": ["alice"]})
    with fl.Context(workers=workers[:1], tenant="mallory") as ctx:
        with pytest.raises(fl.AccessDeniedError, match=f"dataset '{name}' may be read only by"):
            ctx.federated([f"{workers[0]}/{name}"])
    with fl.Context(workers=workers[:1], tenant="alice") as ctx:
        F = ctx.federated([f"{workers[0]}/{name}"])
        assert_matches(F.compute(), X)  # public: raw rows may leave


@pytest.mark.parametrize("policy, problem", [
    ({"level": "secret"}, "'level' must be one of"),
    ({"level": "private", "minrows": 3}, r"unknown key\(s\) \['minrows'\]"),
    ({"level": "private-aggregation", "min_rows": 0}, "'min_rows' must be an integer >= 1"),
    ({"level": "public", "tenants": "alice"}, "'tenants' must be a list"),
    ("not json", "it is not JSON"),
])
def test_invalid_policy_fails_the_read_naming_the_policy_file(ctx, workers, site_dir, policy,
                                                              problem):
    name = f"{uuid.uuid4().hex[:10]}.npy"
    np.save(site_dir / name, X)
    text = policy if isinstance(policy, str) else json.dumps(policy)
    (site_dir / f"{name}.policy.json").write_text(text)
    with pytest.raises(fl.InvalidArgumentError, match=problem) as info:
        ctx.federated([f"{workers[0]}/{name}"])
    assert f"policy file '{name}.policy.json' is invalid" in str(info.value)


def test_policy_files_cannot_be_read(ctx, workers, dataset):
    name = dataset(X, AGGREGATION)[0]
    with pytest.raises(fl.AccessDeniedError, match="policy files cannot be read"):
        ctx.federated([f"{workers[0]}/{name}.policy.json"], format="csv")


def test_audit_log_has_one_line_per_request(tmp_path):
    log = tmp_path / "audit.jsonl"
    data = tmp_path / "data"
    data.mkdir()
    name = _write(data, "X.npy", X, AGGREGATION)
    with LocalWorkerPool(1, data_dir=data, options=("--audit-log", str(log))) as pool:
        client = WorkerClient(pool.addresses[0], timeout=60)
        try:
            client.execute("auditor", [Read("X", name), ExecInst("tsmm", ("X",), "G"), Get("G")])
            results = client.execute_all("auditor", [Get("X"), Get("G")])
        finally:
            client.close()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["request"], e["outcome"]) for e in lines] == [
        ("READ", "allowed"), ("EXEC_INST", "allowed"), ("GET", "allowed"),
        ("GET", "refused"), ("GET", "skipped"),
    ]
    assert isinstance(results[0], fl.AccessDeniedError)
    assert all(e["tenant"] == "auditor" and e["datasets"] == [name] for e in lines)
    assert all(e["time"].endswith("+00:00") for e in lines)
    assert lines[2]["bytes_out"] == X.shape[1] ** 2 * 8
    assert lines[3]["bytes_out"] == 0
    assert "private-aggregation" in lines[3]["reason"] and "raw rows" in lines[3]["reason"]
