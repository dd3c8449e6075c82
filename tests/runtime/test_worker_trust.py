"""Attacks on a real worker process that must be refused or harmless (issue 9).

Each attack runs against the session's worker on 127.0.0.1; the worker then answers a healthy
request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.sparse as sp

from fedla.runtime.errors import (
    AccessDeniedError,
    DataFileNotFoundError,
    InvalidArgumentError,
    ResourceLimitError,
)
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.codec import Encoder
from fedla.runtime.protocol.requests import Clear, ExecInst, ExecUdf, Literal, Metadata, Read
from tests.runtime.test_worker_errors import RawWorker

# --- READ: no check-then-open race ------------------------------------------------------------

RACE_READS = 2_000


def test_read_never_follows_a_symlink_swapped_in_during_the_check(
    client, tenant, site_dir, site_subdir, tmp_path, assert_healthy
):
    """A thread swaps a file and a symlink out of the data dir while READs run."""
    secret = tmp_path / "secret.csv"
    secret.write_text("7,8\n9,9\n")  # nnz 4: a READ of it would show
    target = site_subdir / "swap.csv"
    target.write_text("0,0\n0,0\n")  # nnz 0
    rel = target.relative_to(site_dir).as_posix()
    stop = threading.Event()

    def swap() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            link, file = site_subdir / f".link{n}", site_subdir / f".file{n}"
            link.symlink_to(secret)
            os.replace(link, target)
            file.write_text("0,0\n0,0\n")
            os.replace(file, target)

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    outcomes: dict[str, int] = {}
    try:
        for _ in range(RACE_READS):
            (result,) = client.execute_all(tenant, [Read("X", rel, "csv")])
            if isinstance(result, Metadata):
                assert result.shape == (2, 2)
                assert result.nnz == 0, "READ returned the content of a file outside the data dir"
            else:
                assert isinstance(result, (AccessDeniedError, DataFileNotFoundError)), result
                assert str(tmp_path) not in str(result)
            outcomes[type(result).__name__] = outcomes.get(type(result).__name__, 0) + 1
    finally:
        stop.set()
        swapper.join()
    assert outcomes.get("Metadata", 0) > 0, outcomes  # the race was really run
    assert sum(outcomes.values()) - outcomes.get("Metadata", 0) > 0, outcomes
    assert_healthy()


# --- typed errors instead of INTERNAL/UNKNOWN -------------------------------------------------


@pytest.fixture(scope="module")
def raw(workers: list[str]) -> Iterator[RawWorker]:
    worker = RawWorker(workers[0])
    yield worker
    worker.channel.close()


def test_out_of_memory_is_a_resource_limit(client, tenant, assert_healthy):
    with pytest.raises(ResourceLimitError, match="not enough memory") as info:
        client.execute(tenant, [ExecUdf("tests.udfs:allocate", (Literal(2**62),))])
    assert "request #0 EXEC_UDF 'tests.udfs:allocate'" in str(info.value)
    assert_healthy()


@pytest.mark.parametrize(
    "shape", [(2**63, 2), (2, 2**63), (2**64 - 1, 2**64 - 1)], ids=["rows", "cols", "both"]
)
def test_csr_with_an_absurd_shape_is_malformed(raw, tenant, assert_healthy, shape):
    value = Encoder().value(sp.csr_array(np.eye(2)))
    value.csr.ClearField("shape")
    value.csr.shape.extend(shape)
    batch = pb.BatchRequest(tenant=tenant, requests=[pb.Request(put=pb.Put(var="c", value=value))])
    (response,) = raw.call_batch(batch).responses
    assert response.error.type == "MalformedRequestError", response
    assert response.error.code == "INVALID_ARGUMENT"
    assert "request #0 PUT -> 'c'" in response.error.message
    assert "(2**63 - 1)" in response.error.message
    assert_healthy()


MODEL = [np.ones((3, 2)), np.zeros((1, 2))]


@pytest.mark.parametrize(
    ("function", "inputs"),
    [
        ("fedla.algorithms.nn.ffn:gradients", (["a", "b"], {}, "X", "Y")),
        ("fedla.algorithms.nn.ffn:gradients", (MODEL, {}, "not an array", 3)),
        ("fedla.algorithms.nn.ffn:gradients", (MODEL, "lambda", np.ones((4, 3)), np.ones(4))),
        ("fedla.algorithms.nn.ffn:aggregate", (["a"], {}, ["b"])),
        ("fedla.algorithms.nn.cnn:gradients", ([1, 2], {}, "X", None)),
        ("fedla.algorithms.nn.cnn:aggregate", (MODEL, {"optimizer": 7}, [None, None])),
    ],
    ids=["ffn-strings", "ffn-features", "ffn-hyperparams", "ffn-aggregate", "cnn", "cnn-agg"],
)
def test_remote_functions_given_non_arrays_are_invalid_arguments(
    client, tenant, assert_healthy, function, inputs
):
    with pytest.raises(InvalidArgumentError, match="cannot run on the given inputs") as info:
        client.execute(tenant, [ExecUdf(function, tuple(Literal(v) for v in inputs))])
    assert type(info.value) is InvalidArgumentError
    assert f"request #0 EXEC_UDF {function!r}" in str(info.value)
    assert_healthy()


# --- no cross-tenant signal in ``reused`` -----------------------------------------------------


def test_reused_never_reports_another_tenants_read_or_computation(
    client, tenant, site_dir, site_subdir
):
    """Probing ``F > t`` over a shared file must not tell whether another tenant computed it."""
    path = site_subdir / "F.csv"
    path.write_text("1,5\n7,2\n")
    rel = path.relative_to(site_dir).as_posix()
    victim, attacker = tenant, tenant + "-attacker"
    probe = [Read("F", rel), ExecInst("binary", ("F", Literal(3.0)), "G", {"op": "gt"})]
    try:
        read, inst = client.execute(victim, probe)
        assert (read.reused, inst.reused) == (False, False)
        read, inst = client.execute(attacker, probe)  # the victim's entries are still cached
        assert (read.reused, inst.reused) == (False, False)
        read, inst = client.execute(victim, probe)  # its own entries: reported
        assert (read.reused, inst.reused) == (True, True)
        read, inst = client.execute(attacker, probe)  # now the attacker's own as well
        assert (read.reused, inst.reused) == (True, True)
        read, inst = client.execute(attacker, [
            Read("F", rel), ExecInst("binary", ("F", Literal(4.0)), "G", {"op": "gt"})
        ])
        assert (read.reused, inst.reused) == (True, False)
    finally:
        client.execute(attacker, [Clear(all=True)])
