"""numpy on fedla matrices: ``np.asarray`` computes, supported ufuncs and functions stay lazy
(and federated), everything else is a ``TypeError`` naming the fedla way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special

import fedla as fl
from tests.conftest import assert_matches

A = np.arange(1.0, 13.0).reshape(4, 3)
B = np.linspace(-1.0, 2.0, 12).reshape(4, 3)


def test_asarray_computes_a_local_matrix() -> None:
    X = fl.matrix(A) * 2
    result = np.asarray(X)
    assert isinstance(result, np.ndarray) and result.shape == (4, 3)
    np.testing.assert_array_equal(result, A * 2)
    assert np.asarray(X, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(fl.matrix(sp.csr_array(A))), A)


def test_asarray_refuses_to_promise_no_copy() -> None:
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(fl.matrix(A), copy=False)


@pytest.mark.parametrize(
    ("ufunc", "reference"),
    [(np.exp, np.exp(A)), (np.log, np.log(A)), (np.sqrt, np.sqrt(A)), (np.negative, -A),
     (np.absolute, A), (np.square, A**2), (np.tanh, np.tanh(A)),
     (scipy.special.expit, 1 / (1 + np.exp(-A)))],
    ids=["exp", "log", "sqrt", "negative", "absolute", "square", "tanh", "expit"],
)
def test_unary_ufuncs_are_lazy(ufunc: np.ufunc, reference: np.ndarray) -> None:
    result = ufunc(fl.matrix(A))
    assert isinstance(result, fl.Matrix)
    assert_matches(result.compute(), reference)


@pytest.mark.parametrize(
    ("ufunc", "reference"),
    [(np.add, A + B), (np.subtract, A - B), (np.multiply, A * B), (np.true_divide, A / B),
     (np.maximum, np.maximum(A, B)), (np.minimum, np.minimum(A, B)), (np.less, A < B),
     (np.greater_equal, A >= B)],
    ids=["add", "subtract", "multiply", "divide", "maximum", "minimum", "less", "greater_equal"],
)
def test_binary_ufuncs_with_an_ndarray_on_either_side_are_lazy(
    ufunc: np.ufunc, reference: np.ndarray
) -> None:
    for result in (ufunc(fl.matrix(A), B), ufunc(A, fl.matrix(B))):
        assert isinstance(result, fl.Matrix)
        assert_matches(result.compute(), reference)


def test_ndarray_operators_defer_to_the_matrix() -> None:
    X = fl.matrix(A)
    assert_matches((B.T @ X).compute(), B.T @ A)
    assert_matches((B + X).compute(), B + A)
    assert_matches((B < X).compute(), B < A)
    assert_matches((np.float64(2.0) * X).compute(), 2.0 * A)


def test_numpy_functions_are_lazy_and_keep_the_reduced_axis() -> None:
    X = fl.matrix(A)
    assert np.mean(X).compute() == pytest.approx(A.mean())
    assert_matches(np.sum(X, axis=0).compute(), A.sum(axis=0, keepdims=True))
    assert_matches(np.max(X, axis=1).compute(), A.max(axis=1, keepdims=True))
    assert_matches(np.var(X, axis=0, ddof=1).compute(), A.var(axis=0, ddof=1, keepdims=True))
    assert_matches(np.argmax(X, axis=1).compute(), A.argmax(axis=1)[:, None])
    assert_matches(np.transpose(X).compute(), A.T)
    assert_matches(np.dot(X, A.T).compute(), A @ A.T)
    assert_matches(np.where(X > 5, X, 0.0).compute(), np.where(A > 5, A, 0.0))
    assert_matches(np.concatenate([X, B]).compute(), np.vstack([A, B]))
    assert_matches(np.hstack([B, X]).compute(), np.hstack([B, A]))
    assert np.shape(X) == (4, 3) and np.ndim(X) == 2


@pytest.mark.parametrize(
    "call",
    [lambda X: np.median(X), lambda X: np.cumsum(X), lambda X: np.arctan2(X, X),
     lambda X: np.add.reduce(X), lambda X: np.add(X, 1.0, out=np.empty((4, 3))),
     lambda X: np.linalg.inv(X)],
    ids=["median", "cumsum", "arctan2", "ufunc.reduce", "out=", "linalg.inv"],
)
def test_unsupported_numpy_calls_name_the_fedla_way(call: object) -> None:
    with pytest.raises(TypeError, match=r"not supported on a fedla Matrix.*\.sum/\.mean.*"
                                        r"np\.asarray\(X\)"):
        call(fl.matrix(A))  # type: ignore[operator]


def test_numpy_on_federated_matrices_stays_federated(ctx: fl.Context) -> None:
    X = ctx.scatter(A, sizes=[1, 2, 1])
    centered = X - np.mean(X, axis=0)
    assert centered.partitioning == fl.Partitioning.ROW
    assert_matches(np.asarray(np.exp(centered)), np.exp(A - A.mean(axis=0)))
    assert_matches((B.T @ X).compute(), B.T @ A)


def test_asarray_refuses_data_its_sites_keep_private(
    ctx: fl.Context, workers: list[str], site_dir: Path
) -> None:
    names = []
    for i in range(2):
        name = f"numpy-protocol-{i}.npy"
        np.save(site_dir / name, A[2 * i:2 * i + 2])
        (site_dir / f"{name}.policy.json").write_text(json.dumps({"level": "private"}))
        names.append(f"{workers[i]}/{name}")
    X = ctx.federated(names)
    with pytest.raises(fl.AccessDeniedError, match="private"):
        np.asarray(X)


def test_scipy_sparse_operators_still_defer_to_the_matrix(ctx: fl.Context) -> None:
    X = ctx.scatter(A, sizes=[1, 2, 1])
    S = sp.csr_array(np.eye(4)[::-1])
    result = S.T @ X
    assert isinstance(result, fl.Matrix)  # lazy, not computed through np.asarray
    assert_matches(result.compute(), np.eye(4)[::-1].T @ A)
    assert isinstance(sp.csr_array(B) * fl.matrix(A), fl.Matrix)
