"""The site side of FEDERATED paramserv: remote functions a coordinator calls by EXEC_UDF.

A federated site is passive: the coordinator's thread for the site sends the model and asks for
local steps; the site runs them on its own rows and returns only the update (gradients or a model
delta), never rows. Both functions are registered remote functions, callable by default (they
are in the worker's default allow-list); ``upd`` and ``agg`` are callbacks, resolved by the worker
through the same allow-list, so a coordinator can only train with functions the site's operator
allowed.

- ``row_order``: the rows a site trains on under a federated data scheme, kept at the site.
- ``train``: ``local_steps`` over batches of that order, then (optionally) clipping and noise for
  differential privacy, compression, or masking for secure aggregation; returns only that.
- ``evaluate``: the model's validation loss and accuracy on the site's validation rows.
- ``secagg_keys``, ``secagg_share``, ``secagg_receive``, ``secagg_reveal``: the site's side of
  secure aggregation's key set-up and dropout recovery; private keys never leave the site.

Federated data schemes (SystemDS's names; rows never leave their site, so every scheme works
within a site):

- ``KEEP_DATA_ON_WORKER``: the site's rows as they are.
- ``SHUFFLE``: the site's rows in a random order.
- ``REPLICATE_TO_MAX``: rows drawn again at random (with replacement) are appended until the
  site has as many rows as the largest site.
- ``SUBSAMPLE_TO_MIN``: a random subset of as many rows as the smallest site has.
- ``BALANCE_TO_AVG``: subsampled or replicated to the average number of rows over the sites.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.compression import compress_update
from fedla.runtime.paramserv.differential_privacy import add_gaussian_noise, clip_update
from fedla.runtime.paramserv.secure_aggregation import SecAggSite
from fedla.runtime.paramserv.worker import (
    AggregateFn,
    Steps,
    UpdateFn,
    ValidateFn,
    local_steps,
)
from fedla.runtime.udf_registry import remote_function

FEDERATED_SCHEMES = ("KEEP_DATA_ON_WORKER", "SHUFFLE", "REPLICATE_TO_MAX", "SUBSAMPLE_TO_MIN",
                     "BALANCE_TO_AVG")

MAX_TARGET_FACTOR = 64
"""A site replicates its rows at most this many times over (bounds what a caller can allocate)."""

MAX_BATCHES = 1_000_000
"""Most batches one ``train`` call walks."""


def scheme_row_counts(sizes: Sequence[int], scheme: str) -> list[int]:
    """Rows each site trains on per pass under federated data ``scheme``, from the sites' sizes.

    The ``target_rows`` that ``row_order`` takes at each site: the largest site's size
    (REPLICATE_TO_MAX, for sites smaller than it), the smallest (SUBSAMPLE_TO_MIN), the average
    (BALANCE_TO_AVG), or the site's own size.
    """
    if scheme not in FEDERATED_SCHEMES:
        raise InvalidArgumentError(
            f"The 'scheme' parameter must be one of {FEDERATED_SCHEMES}. Got {scheme!r} instead."
        )
    if scheme == "REPLICATE_TO_MAX":
        return [max(sizes) for _ in sizes]
    if scheme == "SUBSAMPLE_TO_MIN":
        return [min(sizes) for _ in sizes]
    if scheme == "BALANCE_TO_AVG":
        return [max(1, round(sum(sizes) / len(sizes))) for _ in sizes]
    return list(sizes)


@remote_function
def row_order(features: Any, *, scheme: str, target_rows: int, seed: int) -> np.ndarray:
    """Row indices (int64) the site trains on under federated data ``scheme``.

    Parameters
    ----------
    features : array of shape (n, d)
        The site's features (only their row count is used).
    scheme : str
        One of ``FEDERATED_SCHEMES``.
    target_rows : int
        Rows wanted (the largest, smallest or average site's row count); ignored by
        ``KEEP_DATA_ON_WORKER`` and ``SHUFFLE``.
    seed : int
        Seed of the shuffle or the draws.
    """
    n = int(features.shape[0])
    if scheme not in FEDERATED_SCHEMES:
        raise InvalidArgumentError(
            f"The 'scheme' parameter of row_order must be one of {FEDERATED_SCHEMES}. Got "
            f"{scheme!r} instead."
        )
    if (not isinstance(target_rows, int) or isinstance(target_rows, bool) or target_rows < 1
            or target_rows > MAX_TARGET_FACTOR * max(n, 1)):
        raise InvalidArgumentError(
            f"The 'target_rows' parameter of row_order must be an int in [1, "
            f"{MAX_TARGET_FACTOR} * n_rows] with n_rows={n}. Got {target_rows!r} instead."
        )
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x517E]))
    every = np.arange(n, dtype=np.int64)
    if scheme == "KEEP_DATA_ON_WORKER":
        return every
    if scheme == "SHUFFLE":
        return rng.permutation(n).astype(np.int64)
    grow = scheme == "REPLICATE_TO_MAX" or (scheme == "BALANCE_TO_AVG" and target_rows > n)
    shrink = scheme == "SUBSAMPLE_TO_MIN" or (scheme == "BALANCE_TO_AVG" and target_rows < n)
    if grow and target_rows > n:
        extra = rng.integers(0, n, size=target_rows - n, dtype=np.int64)
        return np.concatenate([every, np.sort(extra)])
    if shrink and target_rows < n:
        return np.sort(rng.choice(n, size=target_rows, replace=False)).astype(np.int64)
    return every


@remote_function(callbacks=("upd", "agg"))
def train(
    features: Any, labels: Any, order: Any, state: Any, *model: Any, upd: UpdateFn,
    agg: AggregateFn, hyperparams: Mapping[str, Any], batches: Sequence[Sequence[int]],
    seeds: Sequence[int], freq: str, prox_mu: float = 0.0,
    names: Sequence[str] = ("upd", "agg"), clip: float = 0.0, noise_multiplier: float = 0.0,
    compression: str = "none", ratio: float = 0.01, compression_seed: int = 0,
    secagg_round: int = -1, participants: Sequence[int] = (), weight: float = 1.0,
    keep_state: bool = False,
) -> Any:
    """Local steps on this site's rows, then what the update goes through before it leaves.

    Returns ``[kind, arrays, samples, encoding, seconds]`` (``encoding``: ``"plain"``, a
    compression method, or ``"masked"``; ``seconds``: how long this took here), or with
    ``keep_state`` that and the site's new state (kept at the site for the next round: the
    compression residual, the secure-aggregation keys).

    Parameters
    ----------
    features, labels : arrays of shape (n, d) and (n, c)
        The site's data.
    order : int array or None
        Row indices the batches index into (from ``row_order``); None for the rows as they are.
    state : dict or None
        The site's state from the previous round (or from ``secagg_keys``).
    *model : arrays
        The model list as the coordinator released it.
    upd, agg : callables
        The model's gradient and update functions (sent as references; see the module docstring).
    hyperparams : dict
        Passed to ``upd`` and ``agg``.
    batches : int array of shape (n_batches, 2)
        Each batch's [start, stop) in ``order`` (or of the rows).
    seeds : int array of shape (n_batches,)
        Each batch's ``upd`` seed.
    freq : {"BATCH", "EPOCH", "NBATCHES"}
    prox_mu : float, default 0
        FedProx's proximal weight.
    names : (str, str)
        How errors name ``upd`` and ``agg``.
    clip, noise_multiplier : float, default 0
        Differential privacy: the update is clipped to L2 norm ``clip`` and Gaussian noise of
        standard deviation ``noise_multiplier * clip`` is added here, drawn from the operating
        system's randomness (a seed the coordinator knew would let it subtract the noise).
    compression : {"none", "topk", "qsgd8"}, default "none"
        Uplink compression (``fedla.runtime.paramserv.compression``); ``ratio`` for top-k,
        whose residual (error feedback) stays in ``state``.
    compression_seed : int
        Randomness of qsgd8's rounding.
    secagg_round, participants, weight
        Secure aggregation (when ``secagg_round >= 0``): the update times ``weight``, followed by
        ``[[weight]]``, masked for ``participants`` in round ``secagg_round`` with the keys in
        ``state`` (``secure_aggregation``).
    keep_state : bool, default False
        Return the new state too (the caller keeps it as a second output).
    """
    n = int(features.shape[0]) if order is None else int(np.shape(order)[0])
    bounds, seeds = np.asarray(batches), np.asarray(seeds).reshape(-1)
    if (bounds.ndim != 2 or bounds.shape[1:] != (2,) or bounds.dtype.kind not in "iu"
            or seeds.dtype.kind not in "iu" or len(bounds) != len(seeds)
            or not 1 <= len(bounds) <= MAX_BATCHES):
        raise InvalidArgumentError(
            f"train needs batches as 1 to {MAX_BATCHES} integer [start, stop] pairs and one "
            f"integer seed per batch; got batches of shape {bounds.shape} ({bounds.dtype}) and "
            f"{seeds.size} seeds ({seeds.dtype})"
        )
    if labels.shape[0] != features.shape[0]:
        raise InvalidArgumentError(
            f"train: features have {features.shape[0]} rows but labels have {labels.shape[0]}"
        )
    rows: list[Any] = []
    for start, stop in bounds.tolist():
        if not 0 <= start < stop <= n:
            raise InvalidArgumentError(
                f"train: batch [{start}, {stop}) is not a non-empty range within the site's "
                f"{n} rows"
            )
        rows.append(slice(start, stop) if order is None else np.asarray(order)[start:stop])
    for name, value in (("prox_mu", prox_mu), ("clip", clip),
                        ("noise_multiplier", noise_multiplier), ("weight", weight)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
            raise InvalidArgumentError(f"train: {name} must be a float >= 0; got {value!r}")
    started = time.perf_counter()
    kind, arrays, samples, trainable = local_steps(
        list(model), hyperparams, features, labels, Steps(rows, seeds.tolist()), freq,
        upd, agg, (str(names[0]), str(names[1])), float(prox_mu))
    state = dict(state) if isinstance(state, dict) else {}
    encoding = "plain"
    if clip > 0:
        arrays = _private(arrays, trainable, float(clip), float(noise_multiplier))
    if secagg_round >= 0:
        site = state.get("secagg")
        if not isinstance(site, SecAggSite):
            raise InvalidArgumentError(
                "train: secure aggregation needs the keys of secagg_keys in 'state'"
            )
        scaled = [np.asarray(a, dtype=np.float64) * float(weight) for a in arrays]
        arrays = site.mask([*scaled, np.full((1, 1), float(weight))], int(secagg_round),
                           [int(p) for p in participants])
        encoding = "masked"
    elif compression != "none":
        packed, residual = compress_update(arrays, str(compression), state.get("residual"),
                                           ratio=float(ratio), seed=int(compression_seed))
        state["residual"] = residual
        arrays, encoding = packed.arrays, packed.method
    result = [kind, list(arrays), samples, encoding, time.perf_counter() - started]
    return (result, state) if keep_state else result


@remote_function(callbacks=("val",))
def evaluate(
    features: Any, labels: Any, *model: Any, val: ValidateFn, hyperparams: Mapping[str, Any],
) -> list[Any]:
    """The model's validation loss and accuracy on this site's rows: ``[loss, accuracy, rows]``.

    ``val`` (a reference, resolved like ``train``'s callbacks) returns means over the rows, so
    the coordinator's row-weighted average over the sites is ``val`` on all their rows.
    """
    if labels.shape[0] != features.shape[0]:
        raise InvalidArgumentError(
            f"evaluate: features have {features.shape[0]} rows but labels have "
            f"{labels.shape[0]}"
        )
    loss, accuracy = val(list(model), hyperparams, features, labels)
    return [float(loss), float(accuracy), int(features.shape[0])]


def _private(arrays: list[Any], trainable: int, clip: float, noise_multiplier: float
             ) -> list[Any]:
    """Clip the parameters' update to ``clip`` and add noise; optimizer state does not leave.

    A delta of the optimizer state (momentum, Adam's moments) is a function of the gradients
    too, so it would leak what the noise protects: it is sent as zeros (the server keeps its
    own state), and only the ``trainable`` parameters' update is clipped and noised.
    """
    clipped, _ = clip_update(arrays[:trainable], clip)
    if noise_multiplier > 0:
        clipped = add_gaussian_noise(clipped, noise_multiplier * clip, np.random.default_rng())
    return clipped + [np.zeros_like(a) for a in arrays[trainable:]]


@remote_function
def secagg_keys(*, site_id: int, n_sites: int, threshold: int) -> tuple[dict[str, Any], Any]:
    """New secure-aggregation keys of this site: ``(state, public keys as uint8 arrays)``.

    The state (private keys inside) is kept at the site; only the public keys are returned.
    """
    site = SecAggSite(int(site_id), int(n_sites), int(threshold))
    public = {name: _as_array(key) for name, key in site.public_keys().items()}
    return {"secagg": site}, public


@remote_function
def secagg_share(state: Any, bundle: Any) -> dict[str, Any]:
    """The site's encrypted key shares for every other site, ``{recipient: uint8 array}``."""
    keys = {int(i): {name: _as_bytes(key) for name, key in entry.items()}
            for i, entry in dict(bundle).items()}
    shares = _site(state).share_keys(keys)
    return {str(recipient): _as_array(data) for recipient, data in shares.items()}


@remote_function
def secagg_receive(state: Any, shares: Any) -> None:
    """Take the shares other sites encrypted for this site (``{sender: uint8 array}``)."""
    _site(state).receive_shares({int(i): _as_bytes(d) for i, d in dict(shares).items()})


@remote_function
def secagg_reveal(state: Any, *, dropped: Sequence[int]) -> dict[str, str]:
    """The site's shares of the keys of ``dropped`` sites, as decimal strings."""
    shares = _site(state).reveal([int(d) for d in dropped])
    return {str(d): str(share) for d, share in shares.items()}


def _site(state: Any) -> SecAggSite:
    site = state.get("secagg") if isinstance(state, dict) else None
    if not isinstance(site, SecAggSite):
        raise InvalidArgumentError("the state holds no secure-aggregation keys (secagg_keys)")
    return site


def _as_array(data: bytes) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=np.uint8).copy()


def _as_bytes(array: Any) -> bytes:
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim != 1 or array.size > 1 << 16:
        raise InvalidArgumentError("keys and shares travel as 1-D uint8 arrays of at most 64 KiB")
    return array.tobytes()
