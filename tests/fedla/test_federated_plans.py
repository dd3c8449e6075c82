"""How plans run, not just what they compute.

Laziness and traffic (``ctx.stats()``: per worker calls, requests, bytes): a Gram matrix costs one
call per worker and only the aggregate travels; identical subexpressions run once per compute;
local operands are shipped once per worker. Also: coordinator-side errors at build time, and
plans without any federated input, which never need a worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import scipy.sparse as sp

import fedla as fl
from fedla import Partitioning
from tests.conftest import assert_matches

SEED = 20240612


def _rng(*salt: int) -> np.random.Generator:
    return np.random.default_rng([SEED, *salt])


@pytest.fixture
def fresh_ctx(workers: list[str]) -> Iterator[fl.Context]:
    """A tenant that has sent nothing yet, so its traffic counters start at zero."""
    with fl.Context(workers=workers) as context:
        yield context


def traffic_since(ctx: fl.Context, before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per worker: what was counted since the ``before`` snapshot of ``ctx.stats()``."""
    after = ctx.stats()
    return {
        address: {key: counts[key] - before.get(address, {}).get(key, 0) for key in counts}
        for address, counts in after.items()
    }


# --- laziness and one round trip -------------------------------------------------------------

N_BIG, M_BIG = 6000, 4  # 192 kB of float64: 64 kB per worker, far more than any aggregate


@pytest.fixture
def big(fresh_ctx: fl.Context) -> tuple[fl.Context, fl.Matrix, np.ndarray]:
    A = _rng(0).standard_normal((N_BIG, M_BIG))
    return fresh_ctx, fresh_ctx.scatter(A), A


def test_building_a_plan_sends_nothing(big: tuple[fl.Context, fl.Matrix, np.ndarray]) -> None:
    ctx, X, _ = big
    before = ctx.stats()
    G = (X - X.mean(axis=0)).T @ (X - X.mean(axis=0)) / (N_BIG - 1)
    assert G.shape == (M_BIG, M_BIG) and G.partitioning is Partitioning.LOCAL
    assert ctx.stats() == before


def test_gram_matrix_is_one_call_per_worker(big: tuple[fl.Context, fl.Matrix, np.ndarray]) -> None:
    ctx, X, A = big
    block_bytes = A.nbytes // len(ctx.workers)
    before = ctx.stats()
    assert_matches((X.T @ X).compute(), A.T @ A, rtol=1e-10)
    for address, used in traffic_since(ctx, before).items():
        assert used["calls"] == 1, (address, used)
        assert used["bytes_received"] < min(2048, block_bytes // 20), (address, used)
        assert used["bytes_sent"] < 2048, (address, used)
    # The same aggregate again comes from the Context's result cache: nothing is sent.
    before = ctx.stats()
    assert_matches((X.T @ X).compute(), A.T @ A, rtol=1e-10)
    assert all(used["calls"] == 0 for used in traffic_since(ctx, before).values())


def test_gram_matrix_again_without_result_cache_is_a_worker_cache_hit(workers: list[str]) -> None:
    A = _rng(0).standard_normal((N_BIG, M_BIG))
    with fl.Context(workers=workers, cache_mem=0) as ctx:
        X = ctx.scatter(A)
        for attempt in range(2):  # the second also carries the first one's CLEAR: still one call
            before = ctx.stats()
            assert_matches((X.T @ X).compute(), A.T @ A, rtol=1e-10)
            for address, used in traffic_since(ctx, before).items():
                assert used["calls"] == 1, (address, used)
                assert (used["exec_hits"], used["exec_misses"]) == (attempt, 1 - attempt), used


@pytest.mark.parametrize(
    ("plan", "reference", "max_calls"),
    [
        (lambda X, v: X.T @ (X @ v), lambda A, v: A.T @ (A @ v), 1),
        (lambda X, v: (X @ v).sum(axis=0), lambda A, v: (A @ v).sum(axis=0, keepdims=True), 1),
        (lambda X, v: (X * 2 + 1).sum(axis=0), lambda A, v: (A * 2 + 1).sum(0, keepdims=True), 1),
        (lambda X, v: fl.sigmoid(X @ v).T @ X, lambda A, v: (1 / (1 + np.exp(-A @ v))).T @ A, 1),
        # the column means must come back before X can be centred: two calls, X stays put
        (lambda X, v: (X - X.mean(axis=0)).T @ (X - X.mean(axis=0)),
         lambda A, v: (A - A.mean(axis=0)).T @ (A - A.mean(axis=0)), 2),
        # one call per reduction (mean, var) today, then the product; X still stays put
        (lambda X, v: ((X - X.mean(axis=0)) / fl.sqrt(X.var(axis=0))).T @ (X @ v),
         lambda A, v: ((A - A.mean(axis=0)) / A.std(axis=0)).T @ (A @ v), 3),
    ],
    ids=["XT(Xv)", "(Xv).sum0", "(2X+1).sum0", "sigmoid(Xv)T@X", "centered-gram",
         "standardized-XT(Xv)"],
)
def test_only_aggregates_travel(big, plan, reference, max_calls) -> None:  # type: ignore[no-untyped-def]
    ctx, X, A = big
    v = _rng(1).standard_normal((M_BIG, 1))
    before = ctx.stats()
    assert_matches(plan(X, v).compute(), reference(A, v), rtol=1e-9, atol=1e-9)
    block_bytes = A.nbytes // len(ctx.workers)
    for address, used in traffic_since(ctx, before).items():
        assert 1 <= used["calls"] <= max_calls, (address, used)
        assert used["bytes_received"] < block_bytes // 20, (address, used)
        assert used["bytes_sent"] < block_bytes // 20, (address, used)


def test_aligned_federated_vector_is_one_call(fresh_ctx: fl.Context) -> None:
    A = _rng(2).standard_normal((300, 5))
    y = _rng(3).standard_normal((300, 1))
    X, Y = fresh_ctx.scatter(A), fresh_ctx.scatter(y)
    before = fresh_ctx.stats()
    assert_matches((X.T @ Y).compute(), A.T @ y)
    assert all(used["calls"] == 1 for used in traffic_since(fresh_ctx, before).values())


def test_federated_result_is_gathered_once(fresh_ctx: fl.Context) -> None:
    """``(X @ W).compute()``: the product stays at the sites until the one gathering call."""
    A, W = _rng(4).standard_normal((90, 6)), _rng(5).standard_normal((6, 2))
    X = fresh_ctx.scatter(A, parts=5)
    XW = X @ W
    assert XW.partitioning is Partitioning.ROW
    before = fresh_ctx.stats()
    assert_matches(XW.compute(), A @ W)
    assert all(used["calls"] == 1 for used in traffic_since(fresh_ctx, before).values())


# --- identical subexpressions and shipped operands ------------------------------------------


def test_identical_subexpression_runs_once(fresh_ctx: fl.Context) -> None:
    A = _rng(6).standard_normal((30, 4))
    X = fresh_ctx.scatter(A)
    before = fresh_ctx.stats()
    # two separately built exp(X).sum(): one EXEC exp, one partial sum, one GET per worker
    assert_matches((fl.exp(X).sum() + fl.exp(X).sum()).compute(), 2 * np.exp(A).sum())
    for used in traffic_since(fresh_ctx, before).values():
        assert (used["calls"], used["requests"]) == (1, 3), used


def test_shared_intermediate_is_sent_once(workers: list[str]) -> None:
    """``exp(X)`` feeding two reductions is one EXEC per worker; ``exp(X)``, ``sigmoid(X)`` two."""
    A = _rng(7).standard_normal((30, 4))
    requests = {}
    for name, other, reference in (("shared", fl.exp, np.exp),
                                   ("distinct", fl.sigmoid, lambda a: 1 / (1 + np.exp(-a)))):
        with fl.Context(workers=workers) as ctx:
            X = ctx.scatter(A)
            before = ctx.stats()
            plan = fl.exp(X).sum() + other(X).max()
            assert_matches(plan.compute(), np.exp(A).sum() + reference(A).max())
            requests[name] = {a: u["requests"] for a, u in traffic_since(ctx, before).items()}
    for address in workers:
        # shared: exp, sum partial, GET, max partial, GET; distinct adds a sigmoid
        assert requests["shared"][address] == 5
        assert requests["distinct"][address] == 6


def test_large_local_operand_is_put_once_per_worker(fresh_ctx: fl.Context) -> None:
    """An operand over the inline limit is PUT, once per worker even for two blocks there."""
    A = _rng(8).standard_normal((50, 4))
    W = _rng(9).standard_normal((4, 4000))  # 128 kB
    X = fresh_ctx.scatter(A, parts=5)  # workers 0 and 1 hold two blocks each
    before = fresh_ctx.stats()
    plan = (X @ W).sum(axis=0) + (X @ W).max(axis=0)
    assert_matches(plan.compute(), (A @ W).sum(0, keepdims=True) + (A @ W).max(0, keepdims=True))
    for address, used in traffic_since(fresh_ctx, before).items():
        assert W.nbytes <= used["bytes_sent"] < 1.2 * W.nbytes, (address, used)


def test_large_local_elementwise_operand_ships_only_its_slices(fresh_ctx: fl.Context) -> None:
    A = _rng(10).standard_normal((9000, 3))
    B = _rng(11).standard_normal((9000, 3))  # 72 kB per block: over the inline limit
    X = fresh_ctx.scatter(A)
    before = fresh_ctx.stats()
    assert_matches(((X + B) * (X - B)).sum(axis=0).compute(),
                   ((A + B) * (A - B)).sum(axis=0, keepdims=True))
    for address, used in traffic_since(fresh_ctx, before).items():
        assert B.nbytes / 3 <= used["bytes_sent"] < 1.2 * B.nbytes / 3, (address, used)


def test_repeated_computes_reuse_the_tenant(fresh_ctx: fl.Context) -> None:
    """Intermediates of one compute are cleared with the next batch; results stay right."""
    A = _rng(12).standard_normal((40, 5))
    X = fresh_ctx.scatter(A, parts=4)
    for scale in (1.0, 2.0, 1.0, 2.0):
        assert_matches(((X * scale).T @ (X * scale)).compute(), scale**2 * A.T @ A)
        assert_matches((X * scale - X.mean(axis=0)).max(axis=1).compute(),
                       (A * scale - A.mean(axis=0)).max(axis=1, keepdims=True))


# --- coordinator-side errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda X: X @ np.ones((6, 2)),
        lambda X: np.ones((3, 7)) @ X,
        lambda X: X.T @ np.ones((8, 1)),
        lambda X: X + np.ones((9, 5)),
        lambda X: X * np.ones((1, 4)),
        lambda X: X - np.ones((8, 1)),
        lambda X: X + X.T,
        lambda X: X > X[0:2, :],
        lambda X: fl.maximum(X, np.ones((9, 1))),
        lambda X: fl.where(X > 0, X, np.ones((3, 5))),
        lambda X: fl.hstack([X, np.ones((9, 1))]),
        lambda X: fl.vstack([X, np.ones((1, 4))]),
        lambda X: X @ X,
    ],
    ids=["X@W", "W@X", "XT@y", "add-matrix", "mul-row", "sub-col", "add-transpose", "gt-slice",
         "maximum-col", "where", "hstack", "vstack", "X@X"],
)
def test_shape_mismatch_raises_at_build_time(ctx: fl.Context, build) -> None:  # type: ignore[no-untyped-def]
    X = ctx.scatter(_rng(13).standard_normal((10, 5)))
    before = ctx.stats()
    with pytest.raises(fl.ShapeMismatchError, match=r"\(10, 5\)|10|5"):
        build(X)
    assert ctx.stats() == before  # nothing was sent


def test_operands_from_two_contexts_are_refused(ctx: fl.Context, workers: list[str]) -> None:
    A = _rng(14).standard_normal((10, 5))
    with fl.Context(workers=workers[:2]) as other:
        X, Y = ctx.scatter(A), other.scatter(A)
        for build in (lambda: X + Y, lambda: X.T @ Y, lambda: fl.hstack([X, Y]),
                      lambda: fl.where(X > 0, Y, 0), lambda: fl.maximum(Y, X)):
            with pytest.raises(fl.InvalidArgumentError, match="different Contexts"):
                build()
        # a local matrix belongs to no Context and mixes with either
        L = fl.matrix(A)
        assert_matches((X + L).compute(), 2 * A)
        assert_matches((L - Y).compute(), np.zeros_like(A))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda X: X[::2, :], "step 1"),
        (lambda X: X[5:2, :], "empty"),
        (lambda X: X[10, :], "out of range"),
        (lambda X: X[:, -6], "out of range"),
        (lambda X: X[[1, 2], :], "contiguous slice"),
        (lambda X: X.sum(axis=2), "axis"),
        (lambda X: X.argmax(axis=None), "axis"),
        (lambda X: X.sum()[0, 0], "scalar"),
        (lambda X: X.sum().T, "scalar"),
    ],
    ids=["step", "empty", "row-out-of-range", "col-out-of-range", "fancy", "axis2",
         "argmax-None", "index-scalar", "transpose-scalar"],
)
def test_invalid_arguments(ctx: fl.Context, build, message: str) -> None:  # type: ignore[no-untyped-def]
    X = ctx.scatter(_rng(15).standard_normal((10, 5)))
    with pytest.raises(fl.InvalidArgumentError, match=message):
        build(X)


def test_matrix_has_no_truth_value(ctx: fl.Context) -> None:
    X = ctx.scatter(np.ones((4, 2)))
    with pytest.raises(TypeError, match="ambiguous"):
        bool(X.sum() > 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parts": 11}, "parts must be in"),
        ({"parts": 0}, "parts must be in"),
        ({"sizes": [5, 4]}, "sum to 10"),
        ({"sizes": [10, 0]}, "positive"),
        ({"axis": 2}, "axis"),
    ],
    ids=["too-many-parts", "zero-parts", "sizes-short", "empty-part", "axis"],
)
def test_scatter_errors(ctx: fl.Context, kwargs: dict, message: str) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=message):
        ctx.scatter(np.ones((10, 3)), **kwargs)


def test_closed_context_refuses_to_compute(workers: list[str]) -> None:
    ctx = fl.Context(workers=workers)
    X = ctx.scatter(np.ones((6, 2)))
    ctx.close()
    with pytest.raises(fl.InvalidArgumentError, match="closed"):
        X.sum().compute()


# --- plans without workers -------------------------------------------------------------------

LOCAL_A = _rng(16).standard_normal((9, 4))
LOCAL_S = sp.random_array((9, 4), density=0.3, format="csr", rng=_rng(17))


@pytest.mark.parametrize("data", [LOCAL_A, LOCAL_S], ids=["dense", "sparse"])
def test_local_only_plans(data) -> None:  # type: ignore[no-untyped-def]
    A = data.toarray() if sp.issparse(data) else data
    X = fl.matrix(data)
    assert X.partitioning is Partitioning.LOCAL and X.context is None
    W = _rng(18).standard_normal((4, 2))
    assert_matches(X.compute(), A)
    assert_matches((X @ W).compute(), A @ W)
    assert_matches((X.T @ X).compute(), A.T @ A)
    assert_matches(((X - X.mean(axis=0)) / fl.sqrt(X.var(axis=0, ddof=1))).compute(),
                   (A - A.mean(axis=0)) / A.std(axis=0, ddof=1))
    assert_matches(X.argmax(axis=1).compute(), A.argmax(axis=1, keepdims=True))
    assert_matches(fl.hstack([X, A @ W]).compute(), np.hstack([A, A @ W]))
    assert_matches(fl.vstack([X, W.T]).compute(), np.vstack([A, W.T]))
    assert_matches(X[2:7, 1:3].compute(), A[2:7, 1:3])
    assert_matches((2 - X).compute(), 2 - A)
    assert X.nnz == np.count_nonzero(A)
    assert float(X.sum()) == pytest.approx(A.sum(), rel=1e-12)
    assert_matches((X.sum() / X.max() + 1).compute(), A.sum() / A.max() + 1)
    assert_matches(fl.exp(X.min()).compute(), np.exp(A.min()))


def test_local_vectors_and_scalars() -> None:
    v = fl.matrix(np.arange(3.0))
    assert v.shape == (3, 1)  # 1-D data is a column, as in SystemDS
    assert_matches((v.T @ v).compute(), np.array([[5.0]]))
    s = fl.matrix(2.5)
    assert s.shape == () and s.ndim == 0
    assert_matches((s * v).compute(), 2.5 * np.arange(3.0).reshape(3, 1))
    with pytest.raises(fl.InvalidArgumentError, match="2-D"):
        fl.matrix(np.ones((2, 2, 2)))
    with pytest.raises(fl.InvalidArgumentError, match="numeric"):
        fl.matrix(np.array([["a"]]))


def test_independent_aggregates_share_one_round_trip(fresh_ctx: fl.Context) -> None:
    A = _rng(8).standard_normal((300, 5))
    y = _rng(9).standard_normal((300, 1))
    X, Y = fresh_ctx.scatter(A), fresh_ctx.scatter(y)
    before = fresh_ctx.stats()
    G, b, m, v = fl.compute(X.T @ X, X.T @ Y, X.mean(axis=0), X.var(axis=0))
    assert_matches(G, A.T @ A)
    assert_matches(b, A.T @ y)
    assert_matches(m, A.mean(axis=0, keepdims=True))
    assert_matches(v, A.var(axis=0, keepdims=True))
    assert all(used["calls"] == 1 for used in traffic_since(fresh_ctx, before).values())


def test_local_matrices_are_keyed_by_content_up_to_the_limit(workers: list[str]) -> None:
    from fedla.matrix import CONTENT_KEY_LIMIT

    small = _rng(10).standard_normal((20, 3))
    assert fl.matrix(small).node.key == fl.matrix(small.copy()).node.key
    big = np.zeros((CONTENT_KEY_LIMIT // 8 + 1, 1))
    first, second = fl.matrix(big), fl.matrix(big)
    assert first.node.key != second.node.key  # identity keys: no hashing of large data
    assert float(first.sum().compute()) == 0.0
    with fl.Context(workers=workers) as ctx:
        X = ctx.scatter(small)
        W = fl.matrix(np.ones((3, 1)))
        assert_matches((X @ W).compute(), small @ np.ones((3, 1)))
