"""Plan rewrites: each rewritten plan equals the plain one, and costs fewer requests.

Every case runs on real workers twice, ``compute()`` and ``compute(rewrite=False)``, in a Context
without result cache (so each compute really runs), and compares both with numpy; the rewritten
plan must use the expected operation and send fewer requests (or no more, for reassociation,
which saves flops).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

import fedla as fl
from fedla.rewrites import rewrite
from tests.conftest import assert_matches

RNG = np.random.default_rng(11)
A = RNG.standard_normal((240, 6))
V = RNG.standard_normal((6, 1))
W = RNG.random((240, 1))
M = A.mean(axis=0, keepdims=True)
S = A.std(axis=0, keepdims=True)


@pytest.fixture
def ctx(workers: list[str]) -> Iterator[fl.Context]:
    with fl.Context(workers=workers, cache_mem=0) as context:
        yield context


def _requests(ctx: fl.Context, run: Callable[[], object]) -> tuple[object, int]:
    before = sum(s["requests"] for s in ctx.stats().values())
    value = run()
    ctx.flush()  # releases of the last compute ride with the next batch; count them here
    return value, sum(s["requests"] for s in ctx.stats().values()) - before


def _ops(node: fl.plan.Node) -> set[str]:
    ops, stack = set(), [node]
    while stack:
        current = stack.pop()
        ops.add(current.op)
        stack.extend(current.inputs)
    return ops


CASES = {
    "tsmm": (lambda X, Wf: X.T @ X, lambda: A.T @ A, "tsmm"),
    "mmchain": (lambda X, Wf: X.T @ (X @ V), lambda: A.T @ (A @ V), "mmchain"),
    "mmchain-local-w": (lambda X, Wf: X.T @ (W * (X @ V)), lambda: A.T @ (W * (A @ V)), "mmchain"),
    "mmchain-federated-w": (
        lambda X, Wf: X.T @ ((X @ V) * Wf), lambda: A.T @ ((A @ V) * W), "mmchain"
    ),
    "sumsq": (lambda X, Wf: (X * X).sum(axis=0), lambda: (A * A).sum(0, keepdims=True), None),
    "sumsq-pow": (lambda X, Wf: (X**2).sum(), lambda: (A**2).sum(), None),
    "scalar-out-of-sum": (lambda X, Wf: (X * 3.0).sum(axis=0), lambda: 3 * A.sum(0, keepdims=True),
                          None),
    "scalar-out-of-mean": (lambda X, Wf: (2.0 * X).mean(), lambda: 2 * A.mean(), None),
    "constant-out-of-mean": (lambda X, Wf: (X + 1.5).mean(axis=0),
                             lambda: A.mean(0, keepdims=True) + 1.5, None),
    "fused-chain": (lambda X, Wf: ((X - M) / S) * 2.0 + 1.0, lambda: ((A - M) / S) * 2.0 + 1.0,
                    "fused"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("parts", [1, 3], ids=["1-block", "3-blocks"])
def test_rewritten_plan_agrees_and_costs_less(ctx: fl.Context, case: str, parts: int) -> None:
    build, reference, expected_op = CASES[case]
    X = ctx.scatter(A, parts=parts, sizes=None)
    Wf = ctx.scatter(W, parts=parts)
    plan = build(X, Wf)
    if expected_op is not None:
        assert expected_op in _ops(rewrite([plan.node])[0])
        assert expected_op not in _ops(plan.node)
    plain, plain_requests = _requests(ctx, lambda: plan.compute(rewrite=False))
    rewritten, rewritten_requests = _requests(ctx, plan.compute)
    assert_matches(plain, reference(), rtol=1e-10, atol=1e-10)
    assert_matches(rewritten, reference(), rtol=1e-10, atol=1e-10)
    assert rewritten_requests < plain_requests, (rewritten_requests, plain_requests)


def test_sumsq_replaces_the_elementwise_pass() -> None:
    X = fl.matrix(A)
    (node,) = rewrite([((X * X).sum()).node])
    assert node.op == "reduce" and node.attr("reduction") == "sumsq"
    assert node.inputs[0].key == X.node.key


def test_reassociation_multiplies_the_small_matrices_first(ctx: fl.Context) -> None:
    X = ctx.scatter(A)
    Bwide, Bthin = RNG.standard_normal((6, 40)), RNG.standard_normal((40, 1))
    plan = (X @ Bwide) @ Bthin
    (node,) = rewrite([plan.node])
    assert node.op == "matmul" and node.inputs[0].key == X.node.key  # X @ (Bwide @ Bthin)
    assert node.key == plan.node.key  # same value, same lineage key
    assert_matches(plan.compute(), A @ Bwide @ Bthin, rtol=1e-10, atol=1e-10)
    assert_matches(plan.compute(rewrite=False), A @ Bwide @ Bthin, rtol=1e-10, atol=1e-10)
    # The other way round is already cheapest: left alone.
    cheap = (X @ Bthin[:6]) @ RNG.standard_normal((1, 40))
    assert rewrite([cheap.node])[0].inputs[0].op == "matmul"


def test_shared_intermediate_is_not_fused_away(ctx: fl.Context) -> None:
    X = ctx.scatter(A, parts=3)
    centred = X - M
    plan = (centred * 2.0) + centred.sum(axis=1)  # centred is used twice: it stays a variable
    (node,) = rewrite([plan.node])
    assert centred.node.key in {child.key for child in _walk(node)}
    assert_matches(plan.compute(), (A - M) * 2.0 + (A - M).sum(axis=1, keepdims=True),
                   rtol=1e-10, atol=1e-10)


def test_rewrites_keep_local_plans_exact() -> None:
    X = fl.matrix(A)
    for build, reference, _ in CASES.values():
        plan = build(X, fl.matrix(W))
        assert_matches(plan.compute(), reference(), rtol=1e-10, atol=1e-10)


def _walk(node: fl.plan.Node) -> Iterator[fl.plan.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.inputs)
