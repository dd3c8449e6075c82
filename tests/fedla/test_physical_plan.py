"""The physical plan and the executors that run it.

Stages and round trips, ``explain()``, explicit data movement (a misaligned operand moves only
the rows that are not already at the right site; a column-partitioned ``X.T @ X`` never pulls X
to the coordinator), one Context shared by several threads, and a frozen worker or Ctrl-C
interrupting a waiting ``compute()``.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

import fedla as fl
from fedla.evaluation import physical_plan
from fedla.physical_plan import Gather, Repartition
from tests.conftest import assert_matches
from tests.frozen_process import freeze

RNG = np.random.default_rng(20261130)


@pytest.fixture(params=["grpc", "in-process"])
def ctx(request: pytest.FixtureRequest, workers: list[str]) -> Iterator[fl.Context]:
    """A fresh tenant over three sites: the session's worker processes, or in-process sites."""
    if request.param == "grpc":
        context = fl.Context(workers=workers, cache_mem=0)
    else:
        context = fl.Context(local_workers=3, executor="in-process", cache_mem=0)
    with context:
        yield context


def moved(ctx: fl.Context, before: dict[str, dict[str, int]]) -> tuple[int, int]:
    """Bytes sent to and received from all sites since ``before``."""
    after = ctx.stats()
    sent = sum(c["bytes_sent"] - before.get(s, {}).get("bytes_sent", 0) for s, c in after.items())
    received = sum(c["bytes_received"] - before.get(s, {}).get("bytes_received", 0)
                   for s, c in after.items())
    return sent, received


# --- stages and explain ----------------------------------------------------------------------


def test_independent_aggregates_share_one_round_trip(ctx: fl.Context) -> None:
    A, y = RNG.standard_normal((300, 4)), RNG.standard_normal((300, 1))
    X, Y = ctx.scatter(A), ctx.scatter(y)
    plan = physical_plan([(X.T @ X).node, (X.T @ Y).node, Y.sum().node], ctx)
    assert plan.round_trips == 1
    G, b, s = fl.compute(X.T @ X, X.T @ Y, Y.sum())
    assert_matches(G, A.T @ A)
    assert_matches(b, A.T @ y)
    assert_matches(s, y.sum())


def test_a_value_that_needs_an_aggregate_first_takes_a_second_stage(ctx: fl.Context) -> None:
    A = RNG.standard_normal((300, 4))
    X = ctx.scatter(A)
    centred = X - X.mean(axis=0)
    plan = physical_plan([(centred.T @ centred).node], ctx)
    assert plan.round_trips == 2
    Ac = A - A.mean(axis=0)
    assert_matches((centred.T @ centred).compute(), Ac.T @ Ac)


def test_each_intermediate_is_dropped_after_the_last_stage_that_reads_it(ctx: fl.Context) -> None:
    X = ctx.scatter(RNG.standard_normal((300, 4)))
    E = fl.exp(X)
    centred = E - E.mean(axis=0)
    plan = physical_plan([(centred.T @ centred).node, X.sum().node], ctx)
    first, second = plan.stages
    leaves = {block.var for block in X.node.layout.blocks}
    for site in ctx.workers:
        made_first = {step.output: step.kernel for step in first.sites[site].steps}
        made_second = {step.output for step in second.sites[site].steps}
        made_second |= {b.var for b in second.broadcasts if b.site == site}
        (exp,) = [var for var, kernel in made_first.items() if kernel == "unary"]
        read_second = {arg for step in second.sites[site].steps for arg in step.args}
        assert exp in read_second  # exp(X) is made in stage 1 and read again in stage 2
        assert set(first.drops[site]) == set(made_first) - {exp}
        assert set(second.drops[site]) == made_second | {exp}
        assert sorted(first.drops[site] + second.drops[site]) == sorted(plan.created[site])
        assert not leaves & set(first.drops[site] + second.drops[site])


def test_explain_shows_each_site_its_steps_and_the_bytes(ctx: fl.Context,
                                                          capsys: pytest.CaptureFixture) -> None:
    A = RNG.standard_normal((3000, 5))
    X = ctx.scatter(A)
    before = ctx.stats()
    text = fl.explain(X.T @ X)
    assert ctx.stats() == before  # explaining sends nothing
    assert text.startswith("PhysicalPlan: 1 round trip(s), 3 site(s)")
    for site in ctx.workers:
        assert f"site {site}:" in text
    assert text.count("tsmm(") == 3
    assert "Combine add" in text and "Gather" not in text
    assert "returns ~600 B" in text  # three 5x5 float64 partials
    (X.T @ X).explain()
    assert capsys.readouterr().out.strip() == text


# --- data moves only where it must ----------------------------------------------------------


def test_misaligned_elementwise_moves_only_the_rows_that_must_move(workers: list[str]) -> None:
    """Rows [50k|50k] plus rows [30k|70k] on the same two sites: only rows 30k-50k move."""
    n, m = 100_000, 20
    A, B = RNG.standard_normal((n, m)), RNG.standard_normal((n, m))
    with fl.Context(workers=workers[:2], cache_mem=0) as ctx:
        X = ctx.scatter(A, sizes=[50_000, 50_000])
        Z = ctx.scatter(B, sizes=[30_000, 70_000])
        plan = physical_plan([(X + Z).sum(axis=0).node], ctx)
        repartitions = [s for st in plan.stages for s in st.coordinator
                        if isinstance(s, Repartition)]
        assert [(m.rows, m.cols) for r in repartitions for m in r.moves] == \
            [((30_000, 50_000), (0, 20))]
        before = ctx.stats()
        assert_matches((X + Z).sum(axis=0).compute(), (A + B).sum(axis=0, keepdims=True))
        sent, received = moved(ctx, before)
    must_move = 20_000 * m * 8  # 3.2 MB
    assert received <= 1.2 * must_move + 64 * 1024, received
    assert sent <= 1.2 * must_move + 64 * 1024, sent


def test_column_partitioned_gram_matrix_never_gathers_x(workers: list[str]) -> None:
    n, m = 20_000, 20
    A = RNG.standard_normal((n, m))
    with fl.Context(workers=workers[:2], cache_mem=0) as ctx:
        X = ctx.scatter(A, axis=1)
        plan = physical_plan([(X.T @ X).node], ctx)
        steps = [s for st in plan.stages for s in st.coordinator]
        assert not any(isinstance(s, Gather) for s in steps)
        before = ctx.stats()
        assert_matches((X.T @ X).compute(), A.T @ A)
        sent, received = moved(ctx, before)
    # Realigned to row blocks: each site sends the half of its columns' rows the other needs.
    must_move = A.nbytes // 2
    assert received <= 1.2 * must_move + 64 * 1024, received
    assert sent <= 1.2 * must_move + 64 * 1024, sent


def test_labels_split_differently_are_realigned(ctx: fl.Context) -> None:
    """Regression: misaligned blocks used to fail with an empty AssertionError."""
    A, y = RNG.standard_normal((90, 3)), RNG.standard_normal((90, 1))
    X = ctx.scatter(A, sizes=[40, 20, 30])
    Y = ctx.scatter(y, sizes=[10, 50, 30])
    Xty, total = fl.compute(X.T @ Y, Y.sum(axis=0))
    assert_matches(Xty, A.T @ y)
    assert_matches(total, y.sum(axis=0, keepdims=True))


# --- threads ---------------------------------------------------------------------------------


def test_one_context_shared_by_several_threads(ctx: fl.Context) -> None:
    A = RNG.standard_normal((600, 6))
    X = ctx.scatter(A)
    Z = ctx.scatter(A[:, :1], sizes=[100, 300, 200])
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(5):
                c = float(i * 10 + j)
                got_sum, got_gram, got_misaligned = fl.compute(
                    (X * c).sum(axis=0), (X + c).T @ X, (X[:, :1] - Z * c).sum()
                )
                assert_matches(got_sum, (A * c).sum(axis=0, keepdims=True))
                assert_matches(got_gram, (A + c).T @ A, rtol=1e-9)
                assert_matches(got_misaligned, (A[:, :1] - A[:, :1] * c).sum(), rtol=1e-9,
                               atol=1e-9)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]


# --- failures --------------------------------------------------------------------------------


@pytest.fixture
def frozen_worker(tmp_path: object) -> Iterator[tuple[fl.Context, int]]:
    """A Context over one local worker process, and that process's pid (to SIGSTOP)."""
    with fl.Context(local_workers=1, cache_mem=0) as context:
        pid = context._pool.processes[0].pid  # type: ignore[union-attr]
        try:
            yield context, pid
        finally:
            os.kill(pid, signal.SIGCONT)


def test_a_frozen_worker_is_reported_within_30_seconds(
    frozen_worker: tuple[fl.Context, int],
) -> None:
    ctx, pid = frozen_worker
    X = ctx.scatter(RNG.standard_normal((100, 3)))
    freeze(pid)
    start = time.monotonic()
    with pytest.raises(fl.WorkerUnavailableError, match=ctx.workers[0]):
        (X.T @ X).compute()
    assert time.monotonic() - start < 35
    os.kill(pid, signal.SIGCONT)


def test_ctrl_c_interrupts_a_waiting_compute(frozen_worker: tuple[fl.Context, int]) -> None:
    ctx, pid = frozen_worker
    X = ctx.scatter(RNG.standard_normal((100, 3)))
    freeze(pid)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        (X.T @ X).compute()
    assert time.monotonic() - start < 2.5
    os.kill(pid, signal.SIGCONT)


def test_a_realigned_input_is_kept_for_later_plans_and_released_with_it(
    workers: list[str],
) -> None:
    """Iterative algorithms over labels split differently move the labels' rows once."""
    A, y = RNG.standard_normal((900, 4)), RNG.standard_normal((900, 1))
    with fl.Context(workers=workers, cache_mem=0) as ctx:
        X = ctx.scatter(A, sizes=[400, 200, 300])
        baseline = sum(t.variables for s in ctx.workers
                       for t in ctx.executor.client(s).status().tenants)
        Y = ctx.scatter(y, sizes=[100, 500, 300])
        assert physical_plan([(X.T @ Y).node], ctx).round_trips == 2
        assert_matches((X.T @ Y).compute(), A.T @ y)
        # The realignment stays at the sites: the next plan over it is one round trip, and
        # its result is right for new data combined with the kept rows.
        assert physical_plan([((X * 2).T @ Y).node], ctx).round_trips == 1
        before = ctx.stats()
        assert_matches(((X * 2).T @ Y).compute(), (A * 2).T @ y)
        sent, received = moved(ctx, before)
        assert received < 2000 and sent < 4000, (sent, received)
        del Y
        gc.collect()
        ctx.flush()
        after = sum(t.variables for s in ctx.workers
                    for t in ctx.executor.client(s).status().tenants)
        assert after == baseline
