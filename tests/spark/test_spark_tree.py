"""Partials of many Spark partitions fold inside Spark (``treeAggregate``), not on the driver.

16 partitions on ``local[2]``: every sum of products and every reduction over a row-partitioned
matrix has 16 partials, more than the executor's ``tree_min_partials`` (8), so each combine's
partials are folded in the cluster. Results equal numpy (1e-10); the executor counts the folded
combines and ``explain()`` names the ``treeAggregate``. With 4 partitions nothing folds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import fedla as fl
from tests.conftest import assert_matches

pytestmark = pytest.mark.spark

RNG = np.random.default_rng(11)
A = RNG.standard_normal((403, 6)) * [1.0, 3.0, 0.5, 2.0, 1.0, 4.0] + [0.0, 1.0, -2.0, 0.0, 5, 1]
Y = RNG.standard_normal((403, 1))
A_SPARSE = sp.random_array((403, 6), density=0.2, format="csr", rng=RNG)


@pytest.fixture(scope="module")
def ctx16(spark: Any) -> Iterator[fl.Context]:
    context = fl.Context(executor="spark", spark=spark, local_workers=16)
    yield context
    context.close()


def _tree_combines(context: fl.Context) -> int:
    return context.executor.tree_combines  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("data", [A, A_SPARSE], ids=["dense", "sparse"])
def test_sums_of_products_and_reductions_fold_as_a_tree(ctx16: fl.Context, data: Any) -> None:
    X = ctx16.scatter(data, parts=16, axis=0)
    y = ctx16.scatter(Y, parts=16, axis=0)
    dense = data.toarray() if sp.issparse(data) else data
    results = {
        "X.T @ X": (X.T @ X, dense.T @ dense),
        "X.T @ y": (X.T @ y, dense.T @ Y),
        "colSums": (X.sum(axis=0), dense.sum(axis=0, keepdims=True)),
        "sum": (X.sum(), dense.sum()),
        "colMeans": (X.mean(axis=0), dense.mean(axis=0, keepdims=True)),
        "colVars": (X.var(axis=0, ddof=1), dense.var(axis=0, ddof=1, keepdims=True)),
        "colMins": (X.min(axis=0), dense.min(axis=0, keepdims=True)),
        "max": (X.max(), dense.max()),
        "colArgmax": (X.argmax(axis=0), dense.argmax(axis=0)[None, :]),
    }
    before = _tree_combines(ctx16)
    values = fl.compute(*(result for result, _ in results.values()))
    for (name, (_, want)), value in zip(results.items(), values):
        try:
            assert_matches(np.asarray(value), np.asarray(want), rtol=1e-10)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    assert _tree_combines(ctx16) - before == len(results)


def test_row_results_come_back_beside_the_folded_partials(ctx16: fl.Context) -> None:
    """A gathered row-partitioned result travels unfolded next to a tree-folded combine."""
    X = ctx16.scatter(A, parts=16, axis=0)
    before = _tree_combines(ctx16)
    scaled, product = fl.compute(X * 2.0, X.T @ (X + 1.0))
    np.testing.assert_array_equal(scaled, A * 2.0)
    assert_matches(product, A.T @ (A + 1.0), rtol=1e-10)
    assert _tree_combines(ctx16) - before == 1


def test_explain_names_the_tree_aggregation(ctx16: fl.Context) -> None:
    X = ctx16.scatter(A, parts=16, axis=0)
    assert "treeAggregate returned values (depth 2), folding the 16 partials of 1 combine(s)" \
        in fl.explain(X.T @ (X - 1.0))


def test_few_partitions_collect_partials_to_the_driver(spark: Any) -> None:
    with fl.Context(executor="spark", spark=spark, local_workers=4) as context:
        X = context.scatter(A, parts=4, axis=0)
        assert "collect returned values" in fl.explain(X.T @ X)
        assert_matches((X.T @ X).compute(), A.T @ A, rtol=1e-10)
        assert _tree_combines(context) == 0
