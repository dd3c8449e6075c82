"""``RequestHandler.handle`` called directly, as an in-process site or a Spark task does."""

from __future__ import annotations

import numpy as np
import pytest

from fedla.runtime.errors import (
    FedlaError,
    InvalidArgumentError,
    MalformedRequestError,
    RequestSkippedError,
    UnknownVariableError,
)
from fedla.runtime.kernels import registry
from fedla.runtime.protocol.requests import (
    Clear,
    ExecInst,
    ExecUdf,
    Get,
    Literal,
    Metadata,
    Put,
    Read,
)
from fedla.runtime.worker.principal import Principal
from fedla.runtime.worker.request_handler import RequestHandler, WorkerConfig

ALICE = Principal("alice")
BOB = Principal("bob")


@pytest.fixture
def handler(tmp_path) -> RequestHandler:
    np.save(tmp_path / "X.npy", np.arange(12.0).reshape(4, 3))
    return RequestHandler(WorkerConfig(data_dir=tmp_path, allowed_modules=("tests.udfs",)))


@pytest.fixture
def shift_kernel(monkeypatch) -> str:
    """A kernel whose result depends on an array attribute: ``x + shift``."""
    monkeypatch.setitem(registry._KERNELS, "test_shift", lambda xp, x, shift: x + shift)
    return "test_shift"


def test_healthy_batch_returns_one_result_per_request(handler):
    X = np.arange(6.0).reshape(2, 3)
    results = handler.handle(ALICE, [
        Put("x", X),
        ExecInst("transpose", ("x",), "xt"),
        Get("xt"),
        ExecUdf("tests.udfs:total", ("x",)),
        ExecUdf("tests.udfs:cumulative", ("x",), outputs=("c",)),
        Read("file", "X.npy"),
        Clear(("x",)),
    ])
    put, inst, value, total, udf_stored, read, cleared = results
    assert put == Metadata(shape=(2, 3), dtype="<f8", sparse=False, nnz=-1)
    assert inst.shape == (3, 2) and not inst.reused
    np.testing.assert_array_equal(value, X.T)
    assert total == 15.0
    assert udf_stored is None and cleared is None
    assert read.shape == (4, 3) and read.nnz == 11 and read.fingerprint
    assert isinstance(handler.handle(ALICE, [Get("x")])[0], UnknownVariableError)  # cleared


def test_failed_request_is_returned_and_the_rest_skipped(handler):
    results = handler.handle(ALICE, [
        Put("x", 1.0),
        ExecInst("no_such_kernel", ("x",), "y"),
        Get("x"),
        Clear(all=True),
    ])
    assert isinstance(results[0], Metadata)
    assert type(results[1]).__name__ == "UnknownKernelError"
    assert str(results[1]).startswith("request #1 EXEC_INST 'no_such_kernel' -> 'y': unknown")
    for index, skipped in enumerate(results[2:], start=2):
        assert isinstance(skipped, RequestSkippedError)
        assert f"request #{index} " in str(skipped)
        assert "was not executed because request #1 failed" in str(skipped)
    assert handler.handle(ALICE, [Get("x")]) == [1.0]  # the CLEAR did not run


def test_a_request_that_did_not_decode_fails_in_its_slot(handler):
    undecodable = MalformedRequestError("request #1 PUT -> 'p': array needs 24 bytes; got 8")
    results = handler.handle(ALICE, [Put("x", 1), undecodable, Get("x")])
    assert isinstance(results[0], Metadata)
    assert results[1] is undecodable
    assert isinstance(results[2], RequestSkippedError)
    assert "request #2 GET 'x' was not executed because request #1 failed" in str(results[2])


def test_errors_name_the_request_variable_and_cause(handler):
    (error,) = handler.handle(ALICE, [ExecInst("transpose", ("missing",), "t")])
    assert isinstance(error, UnknownVariableError)
    assert "request #0 EXEC_INST 'transpose' -> 't'" in str(error)
    assert "no variable 'missing' in this tenant's scope" in str(error)


def test_another_tenants_variable_is_unknown(handler):
    handler.handle(ALICE, [Put("secret", np.eye(2))])
    results = handler.handle(BOB, [Get("secret"), Get("secret")])
    assert isinstance(results[0], UnknownVariableError)
    assert "no variable 'secret'" in str(results[0])
    assert isinstance(results[1], RequestSkippedError)
    np.testing.assert_array_equal(handler.handle(ALICE, [Get("secret")])[0], np.eye(2))


def test_a_principal_without_tenant_fails_every_request(handler):
    results = handler.handle(Principal(""), [Get("x"), Put("x", 1)])
    assert all(isinstance(r, InvalidArgumentError) for r in results)
    assert all("names no tenant" in str(r) for r in results)


def test_an_unexpected_exception_becomes_an_internal_error(handler, monkeypatch):
    def broken(xp, x):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(registry._KERNELS, "test_broken", broken)
    (error,) = handler.handle(ALICE, [ExecInst("test_broken", (Literal(1.0),), "y")])
    assert type(error).__name__ == "WorkerInternalError"
    assert "request #0 EXEC_INST 'test_broken' -> 'y': ZeroDivisionError: boom" in str(error)


def test_values_without_a_key_are_refused_in_process(handler):
    (error,) = handler.handle(ALICE, [ExecInst("transpose", (Literal({1, 2}),), "y")])
    assert isinstance(error, InvalidArgumentError)
    assert "cannot compute a lineage key of a builtins.set" in str(error)


# --- lineage keys and sharing -------------------------------------------------------------------


def _exec(handler, principal, op, inputs, attrs=None):
    meta, value = handler.handle(
        principal, [ExecInst(op, tuple(inputs), "out", attrs or {}), Get("out")]
    )
    assert isinstance(meta, Metadata), meta
    return meta, value


def test_array_attributes_count_by_content(handler, shift_kernel):
    X = np.zeros((3, 2))
    handler.handle(ALICE, [Put("x", X)])
    first, got1 = _exec(handler, ALICE, shift_kernel, ["x"], {"shift": np.full(2, 1.0)})
    second, got2 = _exec(handler, ALICE, shift_kernel, ["x"], {"shift": np.full(2, 2.0)})
    again, got3 = _exec(handler, ALICE, shift_kernel, ["x"], {"shift": np.full(2, 2.0)})
    np.testing.assert_array_equal(got1, X + 1)
    np.testing.assert_array_equal(got2, X + 2)
    np.testing.assert_array_equal(got3, X + 2)
    assert (first.reused, second.reused, again.reused) == (False, False, True)


@pytest.mark.parametrize(
    "constant, shared",
    [(2.0, True), (2, True), (np.float64(2.0), False), (np.array(2.0), False),
     (np.array([[1.0, 2.0, 3.0]]), False)],
    ids=["float", "int", "numpy-scalar", "0d-array", "row-array"],
)
def test_only_reads_and_scalar_constants_are_shared_across_tenants(handler, constant, shared):
    for principal in (ALICE, BOB):
        handler.handle(principal, [Read("X", "X.npy")])
    meta_a, value_a = _exec(handler, ALICE, "binary", ["X", Literal(constant)], {"op": "mul"})
    hits = handler.lineage_cache.stats()["hits"]
    meta_b, value_b = _exec(handler, BOB, "binary", ["X", Literal(constant)], {"op": "mul"})
    np.testing.assert_array_equal(value_a, value_b)
    assert not meta_a.reused
    assert not meta_b.reused  # shared or not, Bob is never told that Alice computed it
    assert handler.lineage_cache.stats()["hits"] - hits >= int(shared)
    if not shared:  # Bob's own repeat is reported; Alice's result was never his
        assert _exec(handler, BOB, "binary", ["X", Literal(constant)], {"op": "mul"})[0].reused


def test_array_attributes_make_a_result_per_tenant(handler, shift_kernel):
    for principal in (ALICE, BOB):
        handler.handle(principal, [Read("X", "X.npy")])
    shift = np.ones(3)
    assert not _exec(handler, ALICE, shift_kernel, ["X"], {"shift": shift})[0].reused
    assert not _exec(handler, BOB, shift_kernel, ["X"], {"shift": shift})[0].reused
    assert _exec(handler, BOB, shift_kernel, ["X"], {"shift": shift})[0].reused


def test_put_data_makes_everything_derived_per_tenant(handler):
    for principal in (ALICE, BOB):
        handler.handle(principal, [Put("P", np.eye(3)), ExecInst("transpose", ("P",), "T")])
    meta, _ = _exec(handler, BOB, "transpose", ["T"])
    assert not meta.reused


def test_results_are_fedla_errors_or_values_never_raised(handler):
    results = handler.handle(ALICE, [Get("nothing"), Put("x", 1)])
    assert all(isinstance(r, FedlaError) for r in results)
