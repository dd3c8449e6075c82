"""The federated-op cases of ``tests/fedla/test_federated_ops.py`` on Spark-backed sites.

The same operations, data and numpy references, against a Context whose sites are Spark
partitions on ``local[2]``: the data is PUT into the partitions' cached RDDs and each stage is a
Spark job running the worker's kernels. Each test computes a whole family of operations with one
``fl.compute`` (one plan, a few Spark jobs) so the module stays short; two partitionings (uneven
rows over 2 sites, dense and sparse; 5 column blocks over 3 sites, dense).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import fedla as fl
from tests.conftest import assert_matches
from tests.fedla import test_federated_ops as ops

pytestmark = pytest.mark.spark

SPARK_CASES = [("row-2w-uneven", "dense"), ("row-2w-uneven", "sparse"),
               ("col-5parts-3w", "dense")]


@pytest.fixture(scope="module")
def contexts(spark: Any) -> Iterator[dict[int, fl.Context]]:
    """One tenant over 2 and 3 Spark partitions."""
    opened = {n: fl.Context(executor="spark", spark=spark, local_workers=n) for n in (2, 3)}
    yield opened
    for context in opened.values():
        context.close()


@pytest.fixture(scope="module", params=SPARK_CASES, ids=[f"{a}-{b}" for a, b in SPARK_CASES])
def case(request: pytest.FixtureRequest, contexts: dict[int, fl.Context]) -> ops.Case:
    layout, kind = request.param
    lay = ops.LAYOUTS[layout]
    ctx = contexts[lay.workers]
    data = ops.A_DENSE if kind == "dense" else ops.A_SPARSE
    X = ctx.scatter(data, axis=lay.axis, parts=lay.parts, sizes=lay.sizes)
    Y = ctx.scatter(ops.B, axis=lay.axis, parts=lay.parts, sizes=lay.sizes)
    Z = ctx.scatter(ops.B, axis=1 - lay.axis)
    A = data.toarray() if sp.issparse(data) else data
    return ops.Case(ctx, lay, X, Y, Z, A)


def check_all(results: dict[str, fl.Matrix], expected: dict[str, Any],
              rtol: float = 1e-10) -> None:
    """Compute every result in one plan; compare each with its numpy reference and dtype."""
    values = [np.asarray(v) if np.ndim(v) == 0 else v for v in fl.compute(*results.values())]
    for (name, result), value in zip(results.items(), values):
        want = np.asarray(expected[name])
        try:
            assert_matches(value, want, rtol=rtol)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
        assert value.dtype == want.dtype == result.dtype, name


def test_sites_are_spark_partitions(case: ops.Case) -> None:
    blocks = case.X.node.layout.blocks
    assert all(block.site.startswith("spark-") for block in blocks)
    assert_matches(case.X.compute(), case.A)


def test_elementwise(case: ops.Case) -> None:
    family: dict[str, Callable[..., Any]] = ops.ELEMENTWISE
    results = {name: op(fl, case.X, case.Y, case.Z) for name, op in family.items()}
    expected = {name: ops.reference(op, ops.NP, case.A, ops.B, ops.B)
                for name, op in family.items()}
    check_all(results, expected)


def test_reductions(case: ops.Case) -> None:
    results, expected = {}, {}
    for name, axis, kwargs in ops.REDUCTIONS:
        label = f"{name}-{axis}-{kwargs}"
        results[label] = getattr(case.X, name)(axis=axis, **kwargs)
        expected[label] = getattr(np, name)(case.A, axis=axis, keepdims=axis is not None,
                                            **kwargs)
    check_all(results, expected)


def test_matmul(case: ops.Case) -> None:
    results = {name: op(case.X, case.Y, case.Z) for name, op in ops.MATMUL.items()}
    expected = {name: op(case.A, ops.B, ops.B) for name, op in ops.MATMUL.items()}
    check_all(results, expected)


def test_slices_and_indexing(case: ops.Case) -> None:
    results = {name: cut(case.X) for name, cut in ops.SLICES.items()}
    expected = {name: cut(case.A) for name, cut in ops.SLICES.items()}
    for name, (cut, ref) in ops.INDEXED.items():
        results[name], expected[name] = cut(case.X), ref(case.A)
    check_all(results, expected)


def test_stacks(case: ops.Case) -> None:
    results = {name: op(fl, case.X, case.Y, case.Z) for name, op in ops.STACKS.items()}
    expected = {name: op(ops.NP, case.A, ops.B, ops.B) for name, op in ops.STACKS.items()}
    check_all(results, expected)


def test_statistics_broadcast_back(case: ops.Case) -> None:
    """Multi-stage plans: statistics combined at the driver, then used at the partitions."""
    X, Y, A, B = case.X, case.Y, case.A, ops.B
    results = {
        "centered": X - X.mean(axis=1),
        "scaled": X / fl.abs(Y).sum(axis=1),
        "max-minus": X.max(axis=0) - X,
        "mixed": X * Y.min(axis=1) + Y.sum(axis=0),
        "gram-centered": (X - X.mean(axis=0)).T @ (X - X.mean(axis=0)),
    }
    Ac = A - A.mean(axis=0, keepdims=True)
    expected = {
        "centered": A - A.mean(axis=1, keepdims=True),
        "scaled": A / np.abs(B).sum(axis=1, keepdims=True),
        "max-minus": A.max(axis=0, keepdims=True) - A,
        "mixed": A * B.min(axis=1, keepdims=True) + B.sum(axis=0, keepdims=True),
        "gram-centered": Ac.T @ Ac,
    }
    check_all(results, expected)
