"""Property tests of realignment: operands split any way, at any sites, give numpy's answer.

Hypothesis draws the row splits and site assignments of two matrices (and a column split for
one of them), writes the blocks as files read by in-process sites, and checks elementwise ops,
products, stacking, reductions and a weighted ``t(X) @ (w * (X @ v))`` against numpy. A wrong
piece offset, a piece taken from the wrong block or a missing piece changes the values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedla as fl
from tests.conftest import assert_matches

N, M = 23, 4


@pytest.fixture(scope="module")
def ctx() -> Iterator[fl.Context]:
    with fl.Context(local_workers=3, executor="in-process", cache_mem=0) as context:
        yield context


@st.composite
def splits(draw: st.DrawFn, length: int) -> list[int]:
    """Block sizes that add up to ``length`` (1 to 5 blocks)."""
    cuts = draw(st.lists(st.integers(1, length - 1), max_size=4, unique=True))
    bounds = [0, *sorted(cuts), length]
    return [hi - lo for lo, hi in zip(bounds, bounds[1:])]


def placed(ctx: fl.Context, data: np.ndarray, sizes: list[int], axis: int,
           order: list[int]) -> fl.Matrix:
    """``data`` in blocks of ``sizes`` along ``axis``, block i read at site ``order[i % 3]``."""
    folder = ctx.data_dir / uuid.uuid4().hex
    folder.mkdir()
    locations, start = [], 0
    for i, size in enumerate(sizes):
        block = data[start:start + size] if axis == 0 else data[:, start:start + size]
        np.save(folder / f"{i}.npy", block)
        locations.append(f"{ctx.workers[order[i % 3]]}/{folder.name}/{i}.npy")
        start += size
    return ctx.federated(locations, axis=axis)


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(x_sizes=splits(N), y_sizes=splits(N), y_col_sizes=splits(M),
       x_order=st.permutations([0, 1, 2]), y_order=st.permutations([0, 1, 2]),
       y_by_columns=st.booleans(), seed=st.integers(0, 2**16))
def test_misaligned_operands_give_numpy_results(
    ctx: fl.Context, x_sizes: list[int], y_sizes: list[int], y_col_sizes: list[int],
    x_order: list[int], y_order: list[int], y_by_columns: bool, seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((N, M)), rng.standard_normal((N, M))
    w, v = rng.uniform(0.5, 2.0, (N, 1)), rng.standard_normal((M, 1))
    X = placed(ctx, A, x_sizes, 0, list(x_order))
    if y_by_columns:
        Y = placed(ctx, B, y_col_sizes, 1, list(y_order))
    else:
        Y = placed(ctx, B, y_sizes, 0, list(y_order))
    W = placed(ctx, w, y_sizes, 0, list(y_order))
    got = fl.compute(X + Y, X.T @ Y, fl.hstack([X, Y]), (X * Y).sum(axis=0),
                     X.T @ (W * (X @ v)), fl.vstack([X, Y]).sum(axis=1))
    expected = [A + B, A.T @ B, np.hstack([A, B]), (A * B).sum(axis=0, keepdims=True),
                A.T @ (w * (A @ v)), np.vstack([A, B]).sum(axis=1, keepdims=True)]
    for value, reference in zip(got, expected):
        assert_matches(value, reference, rtol=1e-10, atol=1e-12)
