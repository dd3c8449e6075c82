"""Shared math of the parameter server: pure functions over lists of arrays.

Updates are combined in the order given (the server passes them sorted by worker id), so a BSP
round gives the same bits whatever order the pushes arrived in.

References
----------
.. [1] B. McMahan, E. Moore, D. Ramage, S. Hampson and B. Agüera y Arcas, "Communication-Efficient
   Learning of Deep Networks from Decentralized Data", AISTATS 2017 (FedAvg: deltas weighted by
   samples). https://arxiv.org/abs/1602.05629
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fedla.runtime.errors import ShapeMismatchError

Arrays = Sequence[Any]


def weighted_average(updates: Sequence[Arrays], weights: Sequence[float]) -> list[Any]:
    """``sum_i (w_i / sum_j w_j) * updates[i]``, elementwise per array, summed in the given order.

    A single update comes back unchanged in value (its weight is exactly 1).
    """
    if not updates:
        raise ValueError("weighted_average needs at least one update")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError(f"weights must sum to a positive number; got {list(weights)}")
    shares = [w / total for w in weights]
    if len(updates) == 1:
        return list(updates[0])
    out = [a * shares[0] for a in updates[0]]
    for arrays, share in zip(updates[1:], shares[1:]):
        out = [acc + a * share for acc, a in zip(out, arrays)]
    return out


def subtract(a: Arrays, b: Arrays) -> list[Any]:
    """``a - b``, per array."""
    return [x - y for x, y in zip(a, b)]


def check_like(arrays: Arrays, reference: Arrays, what: str, fix: str, exact: bool = True) -> None:
    """Raise ``ShapeMismatchError`` unless ``arrays`` match the shapes of ``reference``.

    With ``exact=False``, ``arrays`` may be shorter and match the leading arrays of ``reference``
    (gradients cover the parameters at the head of a model list that also holds optimizer state).
    """
    if not isinstance(arrays, (list, tuple)):
        raise ShapeMismatchError(f"{what} must be a list of arrays; got {type(arrays).__name__}. "
                                 f"{fix}")
    if (len(arrays) != len(reference)) if exact else not 1 <= len(arrays) <= len(reference):
        expected = f"{len(reference)}" if exact else f"between 1 and {len(reference)}"
        raise ShapeMismatchError(
            f"{what} has {len(arrays)} arrays but the model has {len(reference)} "
            f"(expected {expected}). {fix}"
        )
    for i, (a, r) in enumerate(zip(arrays, reference)):
        if getattr(a, "shape", None) != r.shape:
            raise ShapeMismatchError(
                f"{what}[{i}] has shape {getattr(a, 'shape', type(a).__name__)} but model[{i}] has "
                f"shape {r.shape}. {fix}"
            )
