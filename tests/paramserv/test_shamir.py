"""Shamir sharing over GF(2**521 - 1): any t shares recover, t - 1 do not."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.shamir import PRIME, reconstruct_secret, split_secret


def test_prime_is_the_mersenne_prime_521():
    assert PRIME == 2**521 - 1 and PRIME > 2**256
    for base in (2, 3, 5, 7, 11):  # Fermat test: a composite would almost surely fail one
        assert pow(base, PRIME - 1, PRIME) == 1


@pytest.mark.parametrize("n,t", [(3, 2), (5, 3), (6, 6), (4, 1)])
def test_any_t_shares_recover_and_t_minus_1_do_not(n, t):
    secret = 2**255 + 12345
    shares = split_secret(secret, n, t)
    assert sorted(shares) == list(range(1, n + 1))
    for subset in itertools.combinations(shares, t):
        assert reconstruct_secret({x: shares[x] for x in subset}) == secret
    if t > 1:
        for subset in itertools.combinations(shares, t - 1):
            assert reconstruct_secret({x: shares[x] for x in subset}) != secret


def test_threshold_1_shares_are_the_secret_and_threshold_2_shares_lie_on_a_line():
    assert set(split_secret(42, 4, 1).values()) == {42}
    y = split_secret(42, 4, 2)
    slope = (y[2] - y[1]) % PRIME
    assert all((y[x + 1] - y[x]) % PRIME == slope for x in (1, 2, 3))
    assert (y[1] - slope) % PRIME == 42  # the line at x = 0


def test_shares_are_fresh_random_each_time():
    assert split_secret(7, 3, 2) != split_secret(7, 3, 2)


@settings(max_examples=30, deadline=None)
@given(secret=st.integers(0, PRIME - 1), n=st.integers(1, 7), data=st.data())
def test_reconstruct_property(secret, n, data):
    t = data.draw(st.integers(1, n))
    shares = split_secret(secret, n, t)
    chosen = data.draw(st.lists(st.sampled_from(sorted(shares)), min_size=t, max_size=n,
                                unique=True))
    assert reconstruct_secret({x: shares[x] for x in chosen}) == secret


def test_invalid_arguments():
    with pytest.raises(InvalidArgumentError, match=r"'threshold'.*\[1, n=3\].*Got 4"):
        split_secret(1, 3, 4)
    with pytest.raises(InvalidArgumentError, match="'secret'.*521"):
        split_secret(PRIME, 3, 2)
    with pytest.raises(InvalidArgumentError, match="at least one share"):
        reconstruct_secret({})
