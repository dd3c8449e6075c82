"""Compression of a site's update for the uplink, with the payload that crosses the network.

- ``none``: the arrays as they are.
- ``topk``: per array, the ``k = max(1, ceil(ratio * size))`` entries of largest magnitude, as
  flat indices (int32, int64 for arrays of ``2**31`` entries or more) and values (the array's
  dtype). With error feedback [1]_ [2]_: the residual (what earlier rounds did not send) is added
  before selecting, and what is not sent now becomes the new residual, so nothing is lost, only
  delayed; without it top-k is biased and can stall training.
- ``qsgd8``: per array, stochastic rounding of every entry to one of 256 evenly spaced levels
  between the array's min and max: the level below with probability 1 - p and the one above with
  probability p, where p is the fractional position, so decoding is unbiased (``E[decode] = x``)
  and needs no residual. Payload: uint8 codes and float64 ``[min, scale]``. This is QSGD's
  stochastic quantization [3]_ with the range ``[min, max]`` instead of ``[-|x|, |x|]``, which
  halves the step for arrays that are not centred on zero.

A site holds one ``Compressor`` (it owns the residual and the random generator across rounds);
``compress_update`` is the same computation as a pure function whose caller keeps the residual
(the executor keeps it at the site between rounds) and passes a fresh seed per round.

References
----------
.. [1] S. U. Stich, J.-B. Cordonnier and M. Jaggi, "Sparsified SGD with Memory", NeurIPS 2018.
   https://arxiv.org/abs/1809.07599
.. [2] S. P. Karimireddy, Q. Rebjock, S. U. Stich and M. Jaggi, "Error Feedback Fixes SignSGD and
   other Gradient Compression Schemes", ICML 2019. https://arxiv.org/abs/1901.09847
.. [3] D. Alistarh, D. Grubic, J. Li, R. Tomioka and M. Vojnovic, "QSGD: Communication-Efficient
   SGD via Gradient Quantization and Encoding", NeurIPS 2017. https://arxiv.org/abs/1610.02132
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError, MalformedRequestError

COMPRESSIONS = ("none", "topk", "qsgd8")

_LEVELS = 255  # qsgd8: 256 levels, 255 steps between min and max


@dataclass(frozen=True)
class Compressed:
    """A compressed update as sent on the wire: the method and plain arrays only.

    Layout of ``arrays`` per model array: ``none`` one array (the values); ``topk`` two (flat
    indices, values); ``qsgd8`` two (uint8 codes, float64 ``[min, scale]``).
    """

    method: str
    arrays: list[np.ndarray]

    def nbytes(self) -> int:
        """Bytes of the payload (the arrays' buffers, headers excluded)."""
        return sum(int(a.nbytes) for a in self.arrays)


def compress_update(
    update: Sequence[Any],
    method: str,
    residual: list[np.ndarray] | None = None,
    *,
    ratio: float = 0.01,
    seed: int | np.random.Generator = 0,
) -> tuple[Compressed, list[np.ndarray] | None]:
    """Compress one update; the stateless form of ``Compressor.compress``.

    Parameters
    ----------
    update : list of ndarray
        The site's update (a delta or gradients), one array per model array.
    method : {"none", "topk", "qsgd8"}
        The compression (see the module docstring).
    residual : list of ndarray or None, default=None
        ``topk``: what earlier rounds did not send (None = nothing). Ignored by the others.
    ratio : float, default=0.01
        ``topk``: fraction of each array's entries sent, in ``(0, 1]``.
    seed : int or numpy.random.Generator, default=0
        ``qsgd8``: randomness of the rounding. Pass a different seed every round (or one
        Generator kept across rounds): the same seed each round would round the same way.

    Returns
    -------
    compressed : Compressed
        The payload.
    residual : list of ndarray or None
        ``topk``: the new residual, to pass at the next round; None for the other methods.
    """
    _check_method(method, "compress_update")
    arrays = [np.asarray(a) for a in update]
    if method == "none":
        return Compressed("none", [np.ascontiguousarray(a) for a in arrays]), None
    if method == "topk":
        return _topk(arrays, residual, _checked_ratio(ratio))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return Compressed("qsgd8", [p for a in arrays for p in _qsgd8(a, rng)]), None


class Compressor:
    """The uplink compressor of one site; holds the error-feedback residual between rounds.

    Parameters
    ----------
    method : {"none", "topk", "qsgd8"}
        The compression (see the module docstring).
    ratio : float, default=0.01
        ``topk``: fraction of each array's entries sent, in ``(0, 1]``.
    seed : int, default=0
        Seed of the generator of ``qsgd8``'s rounding, drawn from across rounds.

    Examples
    --------
    >>> import numpy as np
    >>> site = Compressor("topk", ratio=0.5)
    >>> sent = site.compress([np.array([3.0, -1.0, 0.5, -4.0])])
    >>> decompress(sent, [np.zeros(4)])[0]
    array([ 3.,  0.,  0., -4.])
    >>> site.residual()[0]
    array([ 0. , -1. ,  0.5,  0. ])
    """

    def __init__(self, method: str, *, ratio: float = 0.01, seed: int = 0) -> None:
        _check_method(method, "Compressor")
        self.method = method
        self.ratio = _checked_ratio(ratio)
        self._rng = np.random.default_rng(seed)
        self._residual: list[np.ndarray] | None = None

    def compress(self, update: Sequence[Any]) -> Compressed:
        """Compress one round's update (``topk`` adds and then updates the residual)."""
        compressed, residual = compress_update(update, self.method, self._residual,
                                               ratio=self.ratio, seed=self._rng)
        self._residual = residual
        return compressed

    def residual(self) -> list[np.ndarray] | None:
        """A copy of the residual (None before the first ``topk`` round and for other methods)."""
        return None if self._residual is None else [r.copy() for r in self._residual]

    def load_residual(self, residual: list[np.ndarray] | None) -> None:
        """Restore a residual returned by ``residual()`` (or None for none)."""
        self._residual = None if residual is None else [np.array(r) for r in residual]


def decompress(compressed: Compressed, like: Sequence[Any]) -> list[np.ndarray]:
    """The update a payload stands for, with the shapes and dtypes of ``like``.

    Parameters
    ----------
    compressed : Compressed
        A payload from ``compress_update`` or ``Compressor.compress``.
    like : list of ndarray
        Arrays with the update's shapes and dtypes (the global model, say).

    Returns
    -------
    list of ndarray
    """
    _check_method(compressed.method, "decompress")
    like = [np.asarray(a) for a in like]
    per = 1 if compressed.method == "none" else 2
    if len(compressed.arrays) != per * len(like):
        raise MalformedRequestError(
            f"A {compressed.method!r} payload for {len(like)} arrays must hold "
            f"{per * len(like)} arrays; got {len(compressed.arrays)}."
        )
    parts = [compressed.arrays[per * i: per * (i + 1)] for i in range(len(like))]
    if compressed.method == "none":
        return [_checked_dense(p[0], a) for p, a in zip(parts, like)]
    if compressed.method == "topk":
        return [_dense_from_topk(p[0], p[1], a) for p, a in zip(parts, like)]
    return [_dense_from_qsgd8(p[0], p[1], a) for p, a in zip(parts, like)]


def _check_method(method: str, where: str) -> None:
    if method not in COMPRESSIONS:
        raise InvalidArgumentError(
            f"The 'method' parameter of {where} must be one of {COMPRESSIONS}. "
            f"Got {method!r} instead."
        )


def _checked_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise InvalidArgumentError(
            f"The 'ratio' parameter of the topk compression must be a float in the range (0, 1]. "
            f"Got {ratio!r} instead."
        )
    return float(ratio)


def _index_dtype(size: int) -> type[np.integer]:
    return np.int32 if size < 2**31 else np.int64


def _topk(
    arrays: list[np.ndarray], residual: list[np.ndarray] | None, ratio: float
) -> tuple[Compressed, list[np.ndarray]]:
    if residual is not None and [r.shape for r in residual] != [a.shape for a in arrays]:
        raise InvalidArgumentError(
            f"The residual has shapes {[r.shape for r in residual]} but the update has "
            f"{[a.shape for a in arrays]}. Pass the residual of this site's previous round, or "
            f"None after the model changed shape."
        )
    payload, new_residual = [], []
    for i, a in enumerate(arrays):
        corrected = (a + residual[i] if residual is not None else a.copy()).ravel()
        k = min(corrected.size, max(1, math.ceil(ratio * corrected.size)))
        if k == corrected.size:
            idx = np.arange(k)
        else:
            idx = np.sort(np.argpartition(np.abs(corrected), corrected.size - k)[-k:])
        payload += [idx.astype(_index_dtype(corrected.size)), corrected[idx]]
        corrected[idx] = 0
        new_residual.append(corrected.reshape(a.shape))
    return Compressed("topk", payload), new_residual


def _qsgd8(a: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    x = a.astype(np.float64).ravel()
    if x.size == 0:
        return [np.zeros(0, np.uint8), np.zeros(2)]
    if not np.isfinite(x).all():
        raise InvalidArgumentError(
            "qsgd8 cannot quantize an update holding inf or nan; check the local training "
            "(learning rate, loss) of this site."
        )
    lo, hi = float(x.min()), float(x.max())
    scale = (hi - lo) / _LEVELS
    if scale == 0:
        return [np.zeros(x.size, np.uint8), np.array([lo, 0.0])]
    position = (x - lo) / scale
    below = np.floor(position)
    up = rng.random(x.size) < position - below
    codes = np.clip(below + up, 0, _LEVELS).astype(np.uint8)
    return [codes, np.array([lo, scale])]


def _checked_dense(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    if values.shape != like.shape:
        raise MalformedRequestError(
            f"A 'none' payload array has shape {values.shape}; the model array has {like.shape}."
        )
    return values.astype(like.dtype, copy=False)


def _dense_from_topk(idx: np.ndarray, values: np.ndarray, like: np.ndarray) -> np.ndarray:
    if idx.ndim != 1 or idx.shape != values.shape or idx.dtype.kind not in "iu" or (
            idx.size and (idx.min() < 0 or idx.max() >= like.size)):
        raise MalformedRequestError(
            f"A 'topk' payload must hold 1-D integer indices in [0, {like.size}) and as many "
            f"values; got indices {idx.dtype}{idx.shape} and values {values.shape}."
        )
    out = np.zeros(like.size, dtype=like.dtype)
    out[idx] = values
    return out.reshape(like.shape)


def _dense_from_qsgd8(codes: np.ndarray, params: np.ndarray, like: np.ndarray) -> np.ndarray:
    if codes.dtype != np.uint8 or codes.shape != (like.size,) or params.shape != (2,):
        raise MalformedRequestError(
            f"A 'qsgd8' payload must hold {like.size} uint8 codes and [min, scale]; got "
            f"{codes.dtype}{codes.shape} and {params.shape}."
        )
    lo, scale = params.astype(np.float64)
    return (lo + codes * scale).astype(like.dtype).reshape(like.shape)
