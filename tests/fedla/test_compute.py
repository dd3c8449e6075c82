"""``fl.compute(A, B, ...)``: several results of one evaluation, shared subexpressions once."""

from __future__ import annotations

import numpy as np
import pytest

import fedla as fl
from tests.conftest import assert_matches

A = np.random.default_rng([20240613, 1]).standard_normal((90, 4))
V = np.random.default_rng([20240613, 2]).standard_normal((4, 2))


def test_compute_returns_one_value_per_argument_locally() -> None:
    X = fl.matrix(A)
    gram, total, array, scalar = fl.compute(X.T @ X, X.sum(), V, 3)
    assert_matches(gram, A.T @ A)
    assert float(total) == pytest.approx(A.sum())
    assert array is V and scalar == 3
    assert fl.compute() == []


def test_compute_evaluates_shared_subexpressions_once(ctx: fl.Context) -> None:
    X = ctx.scatter(A, sizes=[50, 5, 35])
    U = fl.exp(X @ V) * 2.0  # stays at the workers; both results need it

    def requests() -> int:
        return sum(s["requests"] for s in ctx.stats().values())

    before = requests()
    G, s = fl.compute(X.T @ U, U.sum(axis=0))
    together = requests() - before
    expected = np.exp(A @ V) * 2.0
    assert_matches(G, A.T @ expected, rtol=1e-12)
    assert_matches(s, expected.sum(axis=0, keepdims=True), rtol=1e-12)

    U2 = fl.exp(X @ (V + 1.0)) * 2.0  # new content, so no reuse from the call above
    before = requests()
    (X.T @ U2).compute()
    U2.sum(axis=0).compute()
    assert requests() - before > together


def test_compute_refuses_matrices_of_different_contexts(ctx: fl.Context, workers) -> None:
    with fl.Context(workers=workers) as other:
        with pytest.raises(fl.InvalidArgumentError, match="different Contexts"):
            fl.compute(ctx.scatter(A).sum(), other.scatter(A).sum())
