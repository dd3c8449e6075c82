"""Secure aggregation: sums match the plain float sum, dropouts are recovered, masks hide."""

from __future__ import annotations

import numpy as np
import pytest

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.secure_aggregation import (
    SecAggCoordinator,
    SecAggSite,
    SecureAggregationError,
)


def key_set(n, t):
    """Sites and coordinator after the setup phase, messages relayed as the executor would."""
    sites = [SecAggSite(i, n, t) for i in range(n)]
    coordinator = SecAggCoordinator(n, t)
    bundle = coordinator.collect_public_keys({i: s.public_keys() for i, s in enumerate(sites)})
    inbox = coordinator.relay_shares({i: s.share_keys(bundle) for i, s in enumerate(sites)})
    for i, s in enumerate(sites):
        s.receive_shares(inbox[i])
    return sites, coordinator


def updates(n, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [[rng.normal(scale=100, size=(30, 7)).astype(dtype), rng.normal(size=5).astype(dtype)]
            for _ in range(n)]


def plain_sum(ups, who):
    return [np.sum([ups[i][a].astype(np.float64) for i in who], axis=0) for a in range(2)]


@pytest.mark.parametrize("n,t", [(3, 2), (4, 3), (5, 3)])
def test_sum_equals_the_plain_sum(n, t):
    sites, coordinator = key_set(n, t)
    ups = updates(n)
    masked = {i: sites[i].mask(ups[i], 0, coordinator.participants) for i in range(n)}
    total = coordinator.unmask_sum(masked, {}, 0, ups[0])
    for got, want in zip(total, plain_sum(ups, range(n))):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_messages_are_plain_data():
    sites, coordinator = key_set(3, 2)
    keys = sites[0].public_keys()
    assert {k: (type(v), len(v)) for k, v in keys.items()} == {"c": (bytes, 32), "s": (bytes, 32)}
    out = sites[0].share_keys(coordinator.collect_public_keys(
        {i: s.public_keys() for i, s in enumerate(sites)}))
    assert sorted(out) == [1, 2] and all(isinstance(b, bytes) for b in out.values())
    masked = sites[0].mask(updates(1)[0], 0, [0, 1, 2])
    assert [(m.dtype, m.shape) for m in masked] == [(np.uint64, (30, 7)), (np.uint64, (5,))]
    assert all(type(v) is int for v in sites[0].reveal([1]).values())


def test_float32_result_keeps_the_dtype():
    sites, coordinator = key_set(3, 2)
    ups = updates(3, dtype=np.float32)
    masked = {i: sites[i].mask(ups[i], 4, coordinator.participants) for i in range(3)}
    total = coordinator.unmask_sum(masked, {}, 4, ups[0])
    assert total[0].dtype == np.float32
    np.testing.assert_allclose(total[0], plain_sum(ups, range(3))[0], rtol=1e-6)


@pytest.mark.parametrize("dropped", [[2], [0], [1, 4]], ids=str)
def test_dropped_sites_are_recovered(dropped):
    n, t = 5, 3
    sites, coordinator = key_set(n, t)
    ups = updates(n, seed=1)
    live = [i for i in range(n) if i not in dropped]
    # every site masks against all participants; the dropped ones never send
    masked = {i: sites[i].mask(ups[i], 7, coordinator.participants) for i in live}
    assert coordinator.dropped(masked) == dropped
    reveals = {i: sites[i].reveal(dropped) for i in live[:t]}
    total = coordinator.unmask_sum(masked, reveals, 7, ups[0])
    for got, want in zip(total, plain_sum(ups, live)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_without_removing_the_dropped_masks_the_sum_is_garbage():
    sites, coordinator = key_set(3, 2)
    ups = updates(3)
    masked = {i: sites[i].mask(ups[i], 0, coordinator.participants) for i in (0, 1)}
    # a coordinator that pretends site 2 took no part cannot decode the survivors' sum
    lying = SecAggCoordinator(3, 2)
    lying.collect_public_keys({i: s.public_keys() for i, s in enumerate(sites)})
    lying.relay_shares({0: {1: b""}, 1: {0: b""}})
    total = lying.unmask_sum(masked, {}, 0, ups[0])
    assert np.abs(total[0] - plain_sum(ups, (0, 1))[0]).min() > 1.0


def test_fewer_than_threshold_reveals_is_a_clear_error():
    sites, coordinator = key_set(5, 3)
    ups = updates(5)
    masked = {i: sites[i].mask(ups[i], 0, coordinator.participants) for i in range(4)}
    reveals = {i: sites[i].reveal([4]) for i in (0, 1)}
    with pytest.raises(SecureAggregationError,
                       match=r"dropped site 4: 2 live site\(s\) revealed.*threshold is 3"):
        coordinator.unmask_sum(masked, reveals, 0, ups[0])


def test_fewer_than_threshold_survivors_cannot_be_recovered():
    sites, coordinator = key_set(4, 3)
    ups = updates(4)
    masked = {i: sites[i].mask(ups[i], 0, coordinator.participants) for i in (0, 1)}
    reveals = {i: sites[i].reveal([2, 3]) for i in (0, 1)}
    with pytest.raises(SecureAggregationError, match="too few sites are left"):
        coordinator.unmask_sum(masked, reveals, 0, ups[0])


def test_masked_update_is_uncorrelated_with_the_raw_update():
    sites, coordinator = key_set(3, 2)
    x = np.linspace(-1000, 1000, 10_000)  # a strong, simple signal
    masked = sites[1].mask([x], 0, coordinator.participants)[0]
    assert abs(np.corrcoef(x, masked.astype(np.float64))[0, 1]) < 0.05
    assert abs(np.corrcoef(x, masked.view(np.int64).astype(np.float64))[0, 1]) < 0.05
    # the same update in another round is masked differently
    again = sites[1].mask([x], 1, coordinator.participants)[0]
    assert np.count_nonzero(again == masked) < 5


def test_a_wrong_share_is_detected():
    sites, coordinator = key_set(4, 2)
    ups = updates(4)
    masked = {i: sites[i].mask(ups[i], 0, coordinator.participants) for i in range(3)}
    reveals = {i: sites[i].reveal([3]) for i in (0, 1)}
    reveals[1][3] += 1
    with pytest.raises(SecureAggregationError, match="wrong share"):
        coordinator.unmask_sum(masked, reveals, 0, ups[0])


def test_an_altered_share_ciphertext_is_refused():
    sites = [SecAggSite(i, 3, 2) for i in range(3)]
    bundle = {i: s.public_keys() for i, s in enumerate(sites)}
    out = {i: s.share_keys(bundle) for i, s in enumerate(sites)}
    altered = bytearray(out[0][1])
    altered[-1] ^= 1
    with pytest.raises(SecureAggregationError, match="from site 0 to site 1 does not decrypt"):
        sites[1].receive_shares({0: bytes(altered), 2: out[2][1]})
    with pytest.raises(SecureAggregationError, match="does not decrypt"):
        sites[2].receive_shares({0: out[0][1]})  # addressed to site 1


def test_a_revealed_site_must_rekey_before_taking_part_again():
    sites, coordinator = key_set(4, 2)
    ups = updates(4)
    masked = {i: sites[i].mask(ups[i], 0, coordinator.participants) for i in (0, 1, 3)}
    reveals = {i: sites[i].reveal([2]) for i in (0, 1)}
    coordinator.unmask_sum(masked, reveals, 0, ups[0])
    with pytest.raises(SecureAggregationError, match=r"site\(s\) \[2\] were reconstructed"):
        sites[0].mask(ups[0], 1, coordinator.participants)
    # site 3 revealed nothing and still masks with site 2; the coordinator refuses site 2
    late = {i: sites[i].mask(ups[i], 1, coordinator.participants) for i in (2, 3)}
    with pytest.raises(SecureAggregationError, match=r"site\(s\) \[2\] were reconstructed"):
        coordinator.unmask_sum(late, {}, 1, ups[0])


def test_values_beyond_the_fixed_point_range_are_refused():
    sites, coordinator = key_set(3, 2)
    with pytest.raises(InvalidArgumentError, match=r"2\*\*31 / 3 participants.*Got max"):
        sites[0].mask([np.array([1e9])], 0, coordinator.participants)


@pytest.mark.parametrize("kw,match", [
    ({"site_id": 3, "n_sites": 3, "threshold": 2}, r"'site_id'.*\[0, 3\).*Got 3"),
    ({"site_id": 0, "n_sites": 3, "threshold": 4}, r"'threshold'.*\[1, n_sites=3\].*Got 4"),
    ({"site_id": 0, "n_sites": 1, "threshold": 1}, r"'n_sites'.*Got 1"),
])
def test_invalid_site_arguments(kw, match):
    with pytest.raises(InvalidArgumentError, match=match):
        SecAggSite(**kw)


def test_masking_with_a_site_that_did_not_share_is_refused():
    sites = [SecAggSite(i, 3, 2) for i in range(3)]
    bundle = {i: s.public_keys() for i, s in enumerate(sites)}
    out = {i: s.share_keys(bundle) for i, s in enumerate(sites[:2])}
    sites[0].receive_shares({1: out[1][0]})
    with pytest.raises(SecureAggregationError, match=r"no share of site\(s\) \[2\]"):
        sites[0].mask(updates(1)[0], 0, [0, 1, 2])
