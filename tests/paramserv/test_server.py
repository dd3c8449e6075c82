"""The parameter server state machine and its update policies, driven without processes.

``simulate`` plays workers with given per-push durations through the server in event order (a
discrete-event simulation), so the policies' waiting rules are checked deterministically.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pytest

from fedla.runtime.errors import ShapeMismatchError
from fedla.runtime.paramserv.aggregation import subtract, weighted_average
from fedla.runtime.paramserv.messages import DELTA, GRADIENTS, Update
from fedla.runtime.paramserv.policies import ASP, BSP, SBP, SSP, make_policy
from fedla.runtime.paramserv.server import ParameterServer


def sgd(model, hyperparams, grads):
    return [m - hyperparams.get("lr", 1.0) * g for m, g in zip(model, grads)]


def server(policy, k=2, on_epoch_end=None, agg=sgd):
    return ParameterServer([np.zeros(2)], agg, {"lr": 1.0}, policy, k, on_epoch_end=on_epoch_end)


def grad(worker, value, version=0, weight=1, kind=GRADIENTS):
    return Update(worker, kind, [np.full(2, float(value))], weight, version)


def simulate(policy, durations, pushes):
    """Play one epoch of ``len(durations)`` simulated workers: worker ``w`` needs
    ``durations[w]`` time units per push and pushes ``pushes[w]`` times. Returns the server."""
    k = len(durations)
    ps = server(policy, k)
    events: list[tuple[float, int, int, str]] = []  # (time, tie-breaker, worker, what)
    order = itertools.count()
    done, version, at_barrier = [0] * k, [0] * k, set()

    def go_on(now, release):
        w = release.worker
        version[w] = release.version
        if done[w] < pushes[w]:
            heapq.heappush(events, (now + durations[w], next(order), w, "push"))
        else:
            heapq.heappush(events, (now, next(order), w, "end"))

    for w in range(k):
        for release in ps.pull(w):
            go_on(0.0, release)
    while events:
        now, _, w, what = heapq.heappop(events)
        if what == "push":
            done[w] += 1
            releases = ps.push(grad(w, 1.0, version=version[w]))
        else:
            at_barrier.add(w)
            releases = ps.end_epoch(w)
        for release in releases:
            if release.worker not in at_barrier:  # the barrier's releases start the next epoch
                go_on(now, release)
    assert ps.epoch == 1
    return ps


def test_weighted_average_and_deltas():
    a, b = [np.array([1.0, 2.0])], [np.array([3.0, 6.0])]
    np.testing.assert_allclose(weighted_average([a, b], [1, 3]), [[2.5, 5.0]])
    assert weighted_average([a], [7])[0] is a[0]
    np.testing.assert_array_equal(subtract(b, a)[0], [2.0, 4.0])
    with pytest.raises(ValueError):
        weighted_average([], [])


def test_bsp_waits_for_every_active_worker_and_averages():
    ps = server(BSP(), k=3)
    assert ps.push(grad(2, 3.0, weight=1)) == []
    assert ps.push(grad(0, 0.0, weight=1)) == []
    releases = ps.push(grad(1, 6.0, weight=2))
    assert sorted(r.worker for r in releases) == [0, 1, 2]
    np.testing.assert_allclose(ps.model[0], -(0 + 12 + 3) / 4)
    assert ps.version == 1 and ps.history.updates == 1


def test_bsp_result_does_not_depend_on_arrival_order():
    updates = [grad(w, v, weight=w + 1) for w, v in enumerate([0.1, 0.7, 0.3])]
    results = []
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        ps = server(BSP(), k=3)
        for w in order:
            ps.push(updates[w])
        results.append(ps.model[0])
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_bsp_round_closes_when_a_worker_leaves_the_epoch():
    ps = server(BSP(), k=2)
    assert ps.push(grad(0, 1.0)) == []
    releases = ps.end_epoch(1)  # worker 1 had fewer batches this epoch
    assert [r.worker for r in releases] == [0]
    np.testing.assert_allclose(ps.model[0], -1.0)


def test_epoch_barrier_runs_the_callback_and_resets_clocks():
    seen = []
    ps = server(ASP(), k=2, on_epoch_end=lambda epoch, model: seen.append((epoch, model[0][0])))
    ps.push(grad(0, 1.0))
    ps.push(grad(0, 1.0))
    assert ps.clocks == [2, 0]
    assert ps.end_epoch(0) == []
    releases = ps.end_epoch(1)
    assert sorted(r.worker for r in releases) == [0, 1]
    assert seen == [(0, -2.0)] and ps.epoch == 1 and ps.clocks == [0, 0]
    assert ps.active == {0, 1}


def test_asp_applies_gradients_fully_and_deltas_as_a_1_over_k_share():
    ps = server(ASP(), k=4)
    assert [r.worker for r in ps.push(grad(3, 2.0))] == [3]
    np.testing.assert_allclose(ps.model[0], -2.0)
    ps.push(grad(1, 8.0, kind=DELTA))
    np.testing.assert_allclose(ps.model[0], -2.0 + 2.0)


def test_asp_records_staleness():
    ps = server(ASP(), k=2)
    ps.push(grad(0, 1.0, version=0))
    ps.push(grad(0, 1.0, version=1))
    ps.push(grad(1, 1.0, version=0))  # computed on version 0, applied at version 2
    assert ps.history.max_staleness == 2


@pytest.mark.parametrize("staleness", [0, 1, 3])
def test_ssp_keeps_the_fastest_worker_within_the_bound(staleness):
    ps = simulate(SSP(staleness), durations=[1.0, 5.0, 2.0], pushes=[20, 20, 20])
    gaps = [clock - slowest for _, _, clock, slowest in ps.history.clock_log]
    assert max(gaps) == staleness == ps.history.max_clock_gap  # the bound is reached ...
    assert ps.history.blocked > 0  # ... and enforced
    assert ps.history.updates == 60


def test_asp_lets_the_fastest_worker_run_ahead():
    ps = simulate(ASP(), durations=[1.0, 5.0], pushes=[20, 20])
    gaps = [clock - slowest for _, _, clock, slowest in ps.history.clock_log]
    assert max(gaps) > 10 and ps.history.blocked == 0


def test_ssp_with_zero_staleness_is_lockstep():
    ps = simulate(SSP(0), durations=[1.0, 3.0], pushes=[6, 6])
    assert all(clock == slowest for _, _, clock, slowest in ps.history.clock_log)


def test_sbp_closes_rounds_with_n_of_n_plus_b_and_drops_late_updates():
    ps = server(SBP(num_backup_workers=1), k=3)
    assert ps.push(grad(0, 1.0)) == []
    releases = ps.push(grad(2, 3.0))
    assert sorted(r.worker for r in releases) == [0, 2]
    np.testing.assert_allclose(ps.model[0], -2.0)
    late = ps.push(grad(1, 100.0, version=0))  # the straggler's gradient is stale: dropped
    assert [r.worker for r in late] == [1] and late[0].version == 1
    np.testing.assert_allclose(ps.model[0], -2.0)
    assert ps.history.dropped_updates == 1


def test_sbp_in_simulation_drops_the_stragglers_updates():
    ps = simulate(SBP(1), durations=[1.0, 1.0, 10.0], pushes=[10, 10, 10])
    assert ps.history.dropped_updates > 0
    assert ps.history.updates >= 10


def test_agg_returning_a_wrong_model_is_named():
    ps = server(BSP(), k=1, agg=lambda model, hp, grads: [np.zeros(3)])
    with pytest.raises(ShapeMismatchError, match=r"model returned by agg\[0\] has shape \(3,\)"):
        ps.push(grad(0, 1.0))


def test_make_policy():
    assert isinstance(make_policy("SSP", staleness=2), SSP)
    assert make_policy("SBP", num_backup_workers=2).num_backup_workers == 2
    with pytest.raises(ValueError):
        make_policy("HOGWILD")


def test_clock_log_is_capped_but_the_gap_is_still_tracked(monkeypatch):
    from fedla.runtime.paramserv import server as server_module

    monkeypatch.setattr(server_module, "CLOCK_LOG_LIMIT", 5)
    ps = simulate(ASP(), durations=[1.0, 5.0], pushes=[20, 20])
    assert len(ps.history.clock_log) == 5 and ps.history.max_clock_gap > 10


@pytest.mark.parametrize("policy", [BSP(), ASP(), SSP(1), SBP(0)], ids=lambda p: p.name)
def test_a_dropped_worker_rejoins_at_the_next_epoch_barrier(policy):
    ps = server(policy, k=3)
    ps.drop(1)
    assert ps.num_workers == 2
    assert ps.rejoin(1) == []  # not released mid-epoch: this epoch's rounds go on without it
    assert ps.num_workers == 2 and 1 in ps.dropped
    ps.push(grad(0, 1.0))
    ps.push(grad(2, 1.0))
    ps.end_epoch(0)
    releases = ps.end_epoch(2)  # the barrier of the two workers left
    assert sorted(r.worker for r in releases) == [0, 1, 2]
    assert ps.epoch == 1 and ps.num_workers == 3 and not ps.dropped
    assert all(r.version == ps.version for r in releases)
    # the next epoch waits for it again: the barrier needs all three
    for w in (0, 1, 2):
        ps.push(grad(w, 1.0, version=ps.version))
    assert ps.end_epoch(0) == [] and ps.end_epoch(2) == []
    assert sorted(r.worker for r in ps.end_epoch(1)) == [0, 1, 2]


def test_only_a_dropped_worker_can_rejoin():
    ps = server(BSP(), k=2)
    with pytest.raises(RuntimeError, match="not dropped"):
        ps.rejoin(0)
