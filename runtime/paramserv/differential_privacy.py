"""Differential privacy for federated rounds: clip each update, add Gaussian noise, count the cost.

The DP-FedAvg recipe [1]_: every contribution (a site's update for site-level privacy) is clipped
to L2 norm ``max_norm`` over all its arrays together (``clip_update``), and the round's sum gets
Gaussian noise of standard deviation ``noise_multiplier * max_norm`` (``add_gaussian_noise``).
When each contribution takes part in a round independently with probability ``sample_rate``,
each round is one sampled Gaussian mechanism, and ``RdpAccountant`` composes them.

With noise added by the sites rather than the coordinator (secure aggregation hides each update,
so the coordinator cannot add noise before it sees the sum), each of ``n`` sites adds standard
deviation ``noise_multiplier * max_norm / sqrt(n)``: the sum carries the full noise only if all
``n`` sites survive the round; account for the smallest number that can.

Accounting is the Rényi DP of the sampled Gaussian mechanism [2]_ (exact for integer orders by
the closed form of its Section 3.3, and numerically for fractional ones), composed additively
over rounds, and converted to ``(epsilon, delta)`` with the bound of Balle et al. [3]_ (Theorem
21), ``eps = rdp + log((a-1)/a) - (log(delta) + log(a)) / (a-1)``, minimised over the orders
``a``; it is tighter than the classic ``rdp + log(1/delta) / (a-1)`` [4]_. Both come from Google's
``dp-accounting`` package (install ``fedla[dp]``), which is used rather than reimplemented.

References
----------
.. [1] H. B. McMahan, D. Ramage, K. Talwar and L. Zhang, "Learning Differentially Private
   Recurrent Language Models", ICLR 2018. https://arxiv.org/abs/1710.06963
.. [2] I. Mironov, K. Talwar and L. Zhang, "Rényi Differential Privacy of the Sampled Gaussian
   Mechanism", 2019. https://arxiv.org/abs/1908.10530
.. [3] B. Balle, G. Barthe, M. Gaboardi, J. Hsu and T. Sato, "Hypothesis Testing Interpretations
   and Rényi Differential Privacy", AISTATS 2020. https://arxiv.org/abs/1905.09982
.. [4] I. Mironov, "Rényi Differential Privacy", CSF 2017. https://arxiv.org/abs/1702.07476
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError

# The orders of dp-accounting's default grid: dense near 1 where small epsilons are found, sparse
# far out where large noise multipliers or few rounds put the optimum.
DEFAULT_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]
)


def _check_number(value: Any, name: str, where: str, low: float, high: float,
                  low_open: bool, high_open: bool = True) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise InvalidArgumentError(
            f"The {name!r} parameter of {where} must be a float in the range "
            f"{interval}. Got {value!r} instead."
        )
    return value


def clip_update(update: Sequence[Any], max_norm: float) -> tuple[list[np.ndarray], float]:
    """Scale ``update`` so its global L2 norm is at most ``max_norm``.

    Parameters
    ----------
    update : list of ndarray
        One site's update; the norm is over all arrays together.
    max_norm : float
        The clipping bound ``C``, in ``(0, inf)``.

    Returns
    -------
    clipped : list of ndarray
        ``update * min(1, C / norm)``, each array in its dtype.
    norm : float
        The norm before clipping (report it: its quantiles guide the choice of ``C``).

    Examples
    --------
    >>> import numpy as np
    >>> clipped, norm = clip_update([np.array([3.0]), np.array([[4.0]])], 1.0)
    >>> norm, clipped[0], clipped[1]
    (5.0, array([0.6]), array([[0.8]]))
    """
    max_norm = _check_number(max_norm, "max_norm", "clip_update", 0, math.inf, low_open=True)
    arrays = [np.asarray(a) for a in update]
    # in float64 whatever the dtypes: a float32 sum of squares would misplace the bound itself
    norm = math.sqrt(sum(float(np.square(a, dtype=np.float64).sum()) for a in arrays))
    if norm <= max_norm:
        return [a.copy() for a in arrays], norm
    factor = max_norm / norm
    return [(a * factor).astype(a.dtype, copy=False) for a in arrays], norm


def add_gaussian_noise(update: Sequence[Any], std: float, rng: np.random.Generator
                       ) -> list[np.ndarray]:
    """``update`` plus independent ``N(0, std**2)`` noise on every entry.

    Parameters
    ----------
    update : list of ndarray
        The (clipped) update or the round's sum.
    std : float
        Standard deviation, in ``[0, inf)``: ``noise_multiplier * max_norm`` on the sum, or that
        over ``sqrt(n_sites)`` per site (see the module docstring).
    rng : numpy.random.Generator
        Source of the noise; seed it from a secure source (``np.random.default_rng()``) in
        production, a fixed seed only in tests.

    Returns
    -------
    list of ndarray
        Noisy arrays in the input dtypes.
    """
    std = _check_number(std, "std", "add_gaussian_noise", 0, math.inf, low_open=False)
    if not isinstance(rng, np.random.Generator):
        raise InvalidArgumentError(
            f"The 'rng' parameter of add_gaussian_noise must be a numpy.random.Generator. Got "
            f"{type(rng).__name__} instead. Pass np.random.default_rng()."
        )
    out = []
    for a in update:
        a = np.asarray(a)
        out.append((a + rng.normal(0.0, std, size=a.shape)).astype(a.dtype, copy=False))
    return out


class RdpAccountant:
    """Privacy spent by rounds of the sampled Gaussian mechanism, in RDP and ``(eps, delta)``.

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation over the clipping bound (``std / max_norm``), in ``(0, inf)``.
    sample_rate : float
        Probability that a contribution takes part in a round (Poisson sampling), in ``(0, 1]``;
        1 when every site takes part in every round.
    orders : sequence of float, default=DEFAULT_ORDERS
        The Rényi orders (all > 1) over which epsilon is minimised.

    Examples
    --------
    >>> acc = RdpAccountant(noise_multiplier=1.1, sample_rate=256 / 60000)
    >>> acc.step(14063)  # 60 epochs of MNIST at batch size 256
    >>> eps, order = acc.epsilon(1e-5)
    >>> round(eps, 2), order
    (2.6, 8.1)
    """

    def __init__(self, noise_multiplier: float, sample_rate: float,
                 orders: Sequence[float] = DEFAULT_ORDERS) -> None:
        try:
            from dp_accounting import dp_event
            from dp_accounting.rdp import RdpAccountant as _DpAccountingRdp
        except ImportError as exc:
            raise ModuleNotFoundError(
                "RdpAccountant needs the dp-accounting package. Install it with "
                "pip install 'fedla[dp]'."
            ) from exc
        self.noise_multiplier = _check_number(noise_multiplier, "noise_multiplier",
                                              "RdpAccountant", 0, math.inf, low_open=True)
        self.sample_rate = _check_number(sample_rate, "sample_rate", "RdpAccountant", 0, 1,
                                         low_open=True, high_open=False)
        orders = tuple(float(a) for a in orders)
        if not orders or min(orders) <= 1:
            raise InvalidArgumentError(
                f"The 'orders' parameter of RdpAccountant must be a non-empty sequence of floats "
                f"> 1. Got {orders!r} instead."
            )
        self.orders = orders
        self.steps = 0
        # RDP composes by addition, so one round's RDP is computed once (fractional orders take
        # a numerical series, ~1 ms each) and step() only adds multiples of it.
        one_round = _DpAccountingRdp(orders=list(orders))
        one_round.compose(dp_event.PoissonSampledDpEvent(
            self.sample_rate, dp_event.GaussianDpEvent(self.noise_multiplier)))
        self._per_round = np.asarray(one_round.rdp, dtype=np.float64)
        self._rdp = np.zeros(len(orders))

    def step(self, n: int = 1) -> None:
        """Account for ``n`` more rounds."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidArgumentError(
                f"The 'n' parameter of RdpAccountant.step must be an int in the range [0, inf). "
                f"Got {n!r} instead."
            )
        self._rdp = self._rdp + int(n) * self._per_round
        self.steps += int(n)

    def rdp(self) -> np.ndarray:
        """The Rényi DP spent so far at each of ``orders`` (shape ``(len(orders),)``)."""
        return self._rdp.copy()

    def epsilon(self, delta: float) -> tuple[float, float]:
        """``(epsilon, order)``: the smallest epsilon at this ``delta`` and the order giving it.

        Uses the conversion of Balle et al. 2020 (see the module docstring).
        """
        from dp_accounting.rdp import compute_epsilon

        delta = _check_number(delta, "delta", "RdpAccountant.epsilon", 0, 1, low_open=True)
        eps, order = compute_epsilon(self.orders, self._rdp, delta)
        return float(eps), float(order)
