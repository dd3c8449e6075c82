"""The fold functions ``treeAggregate`` runs for the Spark executor, on hand-made site results.

Spark is not needed: these are the pure ``seqOp``/``combOp`` and the driver's ``spread``. The
end-to-end path (16 partitions on ``local[2]``) is in ``tests/spark/test_spark_tree.py``.
"""

from __future__ import annotations

import functools

import numpy as np

from fedla.executors.spark_tree import Collected, TreeFold, add_site, merged, spread
from fedla.physical_plan import FOLDED
from fedla.runtime.errors import AccessDeniedError, RequestSkippedError

# three sites; each batch ends with GET sum-partial, GET argmax-partial (positions -2 and -1)
FOLDS = [TreeFold("add", ("p1", "p2", "p3"), {0: (-2,), 1: (-2,), 2: (-2,)}),
         TreeFold("argmax", ("q1", "q2", "q3"), {0: (-1,), 1: (-1,), 2: (-1,)})]


def _site(index: int, total: float, value: float, row: int) -> tuple[int, list[object]]:
    partial = {"index": np.array([[row]]), "value": np.array([[value]])}
    return index, ["meta", np.array([[total]]), partial]


def _aggregate(items: list[tuple[int, list[object]]], split: int) -> Collected:
    """Fold ``items`` in two groups, as two partitions of a tree would, then merge them."""
    zero = Collected({}, [None] * len(FOLDS))
    left = functools.reduce(functools.partial(add_site, FOLDS), items[:split], zero)
    right = functools.reduce(functools.partial(add_site, FOLDS), items[split:], zero)
    return merged(FOLDS, right, left)  # the order of a tree's branches is not fixed


def test_partials_fold_and_take_the_first_partials_place() -> None:
    items = [_site(0, 1.5, 2.0, 3), _site(1, 2.5, 7.0, 40), _site(2, -1.0, 7.0, 90)]
    results = spread(FOLDS, _aggregate(items, 1))
    assert results[0][0] == "meta" and results[2][0] == "meta"
    np.testing.assert_array_equal(results[0][1], [[3.0]])
    # the maximum 7.0 is at rows 40 and 90: the lower index wins, whatever the fold order
    np.testing.assert_array_equal(results[0][2]["index"], [[40]])
    assert results[1][1:] == [FOLDED, FOLDED] and results[2][1:] == [FOLDED, FOLDED]


def test_a_real_error_wins_over_values_and_skipped_requests() -> None:
    denied = AccessDeniedError("GET p2: denied by the policy")
    first = _site(0, 0.0, 0.0, 0)
    first[1][1] = RequestSkippedError("GET p1: skipped after an earlier failure")
    last = _site(2, 0.0, 3.0, 9)
    last[1][1] = denied
    for items in ([first, _site(1, 2.0, 1.0, 5), last], [last, _site(1, 2.0, 1.0, 5), first]):
        results = spread(FOLDS, _aggregate(items, 2))
        assert results[0][1] is denied
        np.testing.assert_array_equal(results[0][2]["index"], [[9]])
