"""How the parameter server combines updates, checked exactly on the server.

Expected models are computed by hand from the policies' definitions: BSP averages a round's
updates weighted by samples (FedAvg for model deltas [McMahan et al. 2017]); ASP and SSP add a
model delta as its worker's ``1/k`` share and pass a gradient to ``agg`` as it is; SBP averages
the first ``k - b`` fresh updates of a round and drops updates computed on a replaced model.
Values are multiples of powers of two, so every expected model is exact in binary and compared
with ``assert_array_equal``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedla.runtime.errors import ShapeMismatchError
from fedla.runtime.paramserv.aggregation import check_like, subtract, weighted_average
from fedla.runtime.paramserv.messages import DELTA, GRADIENTS, Update
from fedla.runtime.paramserv.policies import ASP, BSP, SBP, SSP, make_policy
from fedla.runtime.paramserv.server import ParameterServer

MODEL = [np.array([1.0, -1.0]), np.array([[2.0]])]


class RecordingAgg:
    """An ``agg`` that records the gradients it is given and applies plain SGD with lr 1."""

    def __init__(self) -> None:
        self.seen: list[list[np.ndarray]] = []

    def __call__(self, model, hyperparams, gradients):
        self.seen.append([g.copy() for g in gradients])
        return [m - g for m, g in zip(model, gradients)]


def update(worker: int, values: tuple[float, float], weight: int, kind: str = DELTA,
           version: int = 0) -> Update:
    return Update(worker, kind, [np.array([values[0], -values[0]]), np.array([[values[1]]])],
                  weight, version)


def make_server(policy, k: int) -> tuple[ParameterServer, RecordingAgg]:
    agg = RecordingAgg()
    return ParameterServer([m.copy() for m in MODEL], agg, {}, policy, k), agg


def assert_model(ps: ParameterServer, first: float, second: float) -> None:
    np.testing.assert_array_equal(ps.model[0], [first, -first])
    np.testing.assert_array_equal(ps.model[1], [[second]])


def test_bsp_adds_the_sample_weighted_mean_of_the_deltas():
    ps, agg = make_server(BSP(), k=3)
    ps.push(update(0, (0.5, 4.0), weight=1))
    ps.push(update(2, (-1.0, 0.0), weight=1))
    releases = ps.push(update(1, (0.25, 2.0), weight=2))
    assert sorted(r.worker for r in releases) == [0, 1, 2]
    # (1 * 0.5 + 2 * 0.25 + 1 * -1) / 4 = 0; (1 * 4 + 2 * 2 + 0) / 4 = 2
    assert_model(ps, 1.0 + 0.0, 2.0 + 2.0)
    assert agg.seen == []  # deltas are added, never passed to agg
    assert ps.version == 1 and ps.history.updates == 1 and ps.epoch_samples == 4


def test_bsp_averages_gradients_before_agg_runs_once():
    ps, agg = make_server(BSP(), k=2)
    ps.push(update(1, (3.0, 1.0), weight=3, kind=GRADIENTS))
    ps.push(update(0, (-1.0, 5.0), weight=1, kind=GRADIENTS))
    assert len(agg.seen) == 1
    np.testing.assert_array_equal(agg.seen[0][0], [2.0, -2.0])  # (3 * 3 - 1) / 4
    np.testing.assert_array_equal(agg.seen[0][1], [[2.0]])  # (3 * 1 + 5) / 4
    assert_model(ps, 1.0 - 2.0, 2.0 - 2.0)


def test_bsp_round_cut_short_by_a_leaving_worker_averages_only_its_updates():
    ps, _ = make_server(BSP(), k=3)
    ps.push(update(0, (1.0, 1.0), weight=1))
    ps.push(update(1, (3.0, 0.0), weight=3))
    assert ps.version == 0  # worker 2 is still active: the round stays open
    releases = ps.end_epoch(2)
    assert sorted(r.worker for r in releases) == [0, 1]
    assert_model(ps, 1.0 + 2.5, 2.0 + 0.25)  # (1 + 9) / 4, 1 / 4


@pytest.mark.parametrize("policy", [ASP, lambda: SSP(staleness=5)], ids=["ASP", "SSP"])
def test_asynchronous_policies_add_a_delta_as_a_1_over_k_share(policy):
    ps, agg = make_server(policy(), k=4)
    ps.push(update(2, (2.0, 8.0), weight=7))
    assert_model(ps, 1.0 + 0.5, 2.0 + 2.0)  # the weight of a single update does not matter
    ps.push(update(0, (-4.0, 4.0), weight=1))
    assert_model(ps, 1.5 - 1.0, 4.0 + 1.0)
    assert agg.seen == [] and ps.version == 2 and ps.history.updates == 2


@pytest.mark.parametrize("policy", [ASP, lambda: SSP(staleness=5)], ids=["ASP", "SSP"])
def test_asynchronous_policies_pass_each_gradient_to_agg_as_it_is(policy):
    ps, agg = make_server(policy(), k=4)
    ps.push(update(3, (2.0, 8.0), weight=5, kind=GRADIENTS))
    np.testing.assert_array_equal(agg.seen[0][0], [2.0, -2.0])
    np.testing.assert_array_equal(agg.seen[0][1], [[8.0]])
    assert_model(ps, 1.0 - 2.0, 2.0 - 8.0)


def test_one_asp_delta_from_each_worker_equals_one_fedavg_round_of_equal_weights():
    deltas = [(0.5, 1.0), (1.5, -3.0)]
    asp, _ = make_server(ASP(), k=2)
    bsp, _ = make_server(BSP(), k=2)
    for worker, values in enumerate(deltas):
        asp.push(update(worker, values, weight=1))
        bsp.push(update(worker, values, weight=1))
    assert_model(asp, 1.0 + 1.0, 2.0 - 1.0)
    assert_model(bsp, 1.0 + 1.0, 2.0 - 1.0)


def test_sbp_averages_the_first_k_minus_b_updates_and_drops_stale_ones():
    ps, _ = make_server(SBP(num_backup_workers=1), k=3)
    assert ps.push(update(2, (1.0, 2.0), weight=1)) == []
    releases = ps.push(update(0, (-3.0, 6.0), weight=3))
    assert sorted(r.worker for r in releases) == [0, 2]
    assert_model(ps, 1.0 - 2.0, 2.0 + 5.0)  # (1 - 9) / 4, (2 + 18) / 4
    late = ps.push(update(1, (100.0, 100.0), weight=1, version=0))
    assert [r.worker for r in late] == [1] and late[0].version == 1
    assert_model(ps, -1.0, 7.0)
    assert ps.history.dropped_updates == 1 and ps.version == 1
    # an update computed on the current model joins the next round
    assert ps.push(update(1, (4.0, 0.0), weight=1, version=1)) == []
    ps.push(update(2, (0.0, 4.0), weight=1, version=1))
    assert_model(ps, -1.0 + 2.0, 7.0 + 2.0)
    assert ps.version == 2 and ps.history.dropped_updates == 1


def test_sbp_round_closes_with_the_workers_left_when_fewer_than_k_minus_b_remain():
    ps, _ = make_server(SBP(num_backup_workers=1), k=3)
    ps.end_epoch(0)
    ps.end_epoch(1)
    releases = ps.push(update(2, (2.0, 2.0), weight=5))
    assert [r.worker for r in releases] == [2]
    assert_model(ps, 3.0, 4.0)


def test_server_counts_samples_staleness_and_clocks():
    ps, _ = make_server(ASP(), k=2)
    ps.push(update(0, (0.0, 0.0), weight=3, version=0))
    ps.push(update(0, (0.0, 0.0), weight=2, version=1))
    ps.push(update(1, (0.0, 0.0), weight=4, version=0))  # computed on version 0, now 2
    assert ps.epoch_samples == 9 and ps.clocks == [2, 1]
    assert ps.history.max_staleness == 2 and ps.version == 3
    ps.end_epoch(0)
    releases = ps.end_epoch(1)
    assert sorted(r.worker for r in releases) == [0, 1] and all(r.version == 3 for r in releases)
    assert ps.epoch == 1 and ps.epoch_samples == 0 and ps.clocks == [0, 0]


def test_a_push_after_leaving_the_epoch_is_refused():
    ps, _ = make_server(ASP(), k=2)
    ps.end_epoch(0)
    with pytest.raises(RuntimeError, match="worker 0 pushed an update after ending epoch 0"):
        ps.push(update(0, (1.0, 1.0), weight=1))


def test_weighted_average_is_exact_and_keeps_a_single_update():
    a = [np.array([1.0, 2.0]), np.array([[4.0]])]
    b = [np.array([3.0, 6.0]), np.array([[0.0]])]
    c = [np.array([-1.0, 0.0]), np.array([[8.0]])]
    out = weighted_average([a, b, c], [1, 2, 1])
    np.testing.assert_array_equal(out[0], [1.5, 3.5])  # (1 + 6 - 1) / 4, (2 + 12 + 0) / 4
    np.testing.assert_array_equal(out[1], [[3.0]])  # (4 + 0 + 8) / 4
    np.testing.assert_array_equal(weighted_average([a, b], [0, 5])[0], b[0])
    single = weighted_average([a], [3])
    assert single[0] is a[0] and single[1] is a[1]
    np.testing.assert_array_equal(subtract(a, b)[0], [-2.0, -4.0])


@pytest.mark.parametrize("weights", [[0, 0], [-1, 1], [-2, 1]], ids=["zero", "sum-zero", "neg"])
def test_weighted_average_refuses_weights_that_do_not_sum_to_a_positive_number(weights):
    with pytest.raises(ValueError, match="weights must sum to a positive number"):
        weighted_average([[np.ones(1)], [np.ones(1)]], weights)


def test_check_like_compares_list_lengths_and_shapes():
    model = [np.zeros(2), np.zeros((1, 1)), np.zeros(3)]
    check_like([np.ones(2), np.ones((1, 1)), np.ones(3)], model, "g", "fix")
    with pytest.raises(ShapeMismatchError, match=r"g has 2 arrays but the model has 3 "
                                                 r"\(expected 3\)\. fix"):
        check_like([np.ones(2), np.ones((1, 1))], model, "g", "fix")
    check_like([np.ones(2)], model, "g", "fix", exact=False)  # a leading prefix is enough
    check_like([np.ones(2), np.ones((1, 1))], model, "g", "fix", exact=False)
    check_like([np.ones(2), np.ones((1, 1)), np.ones(3)], model, "g", "fix", exact=False)
    with pytest.raises(ShapeMismatchError, match=r"expected between 1 and 3"):
        check_like([], model, "g", "fix", exact=False)
    with pytest.raises(ShapeMismatchError, match=r"expected between 1 and 3"):
        check_like([np.ones(2)] * 4, model, "g", "fix", exact=False)
    with pytest.raises(ShapeMismatchError, match=r"g\[1\] has shape \(2,\) but model\[1\] has "
                                                 r"shape \(1, 1\)"):
        check_like([np.ones(2), np.ones(2), np.ones(3)], model, "g", "fix")
    with pytest.raises(ShapeMismatchError, match=r"g must be a list of arrays; got ndarray"):
        check_like(np.ones(2), model, "g", "fix")


def test_make_policy_defaults_to_no_staleness_and_no_backup_workers():
    assert make_policy("SSP").staleness == 0
    assert make_policy("SBP").num_backup_workers == 0
    assert isinstance(make_policy("BSP"), BSP) and isinstance(make_policy("ASP"), ASP)
