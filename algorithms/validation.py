"""Checks every algorithm runs first: parameter constraints, input matrices, labels.

Parameters are validated declaratively, as scikit-learn does: each algorithm lists the
constraints of its parameters (``Interval``, ``Options``, ``bool``, ``None``) and
``validate_params`` reports the first violation in one wording::

    The 'reg' parameter of lm must be a float in the range [0, inf). Got -1.0 instead.

Inputs go through ``as_matrix``: numpy arrays and scipy sparse matrices become local fedla
matrices, fedla matrices (local or federated) pass through, and the caller learns which it got
so per-row outputs can be handed back in the same form.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

import fedla as fl
from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError

_TYPE_NAMES: dict[type, str] = {numbers.Integral: "an int", numbers.Real: "a float"}


@dataclass(frozen=True)
class Interval:
    """Numbers of ``type`` (``numbers.Integral`` or ``numbers.Real``) between two bounds.

    ``left``/``right`` of None mean unbounded; ``closed`` is ``"left"``, ``"right"``,
    ``"both"`` or ``"neither"``. Booleans are never accepted as numbers.
    """

    type: type[numbers.Real]
    left: float | None
    right: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` satisfies this constraint."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.type):
            return False
        value = float(value)
        if math.isnan(value):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        left = "-inf" if self.left is None else f"{self.left}"
        right = "inf" if self.right is None else f"{self.right}"
        lo = "[" if self.closed in ("left", "both") and self.left is not None else "("
        hi = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        return f"{_TYPE_NAMES[self.type]} in the range {lo}{left}, {right}{hi}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values of ``type``."""

    type: type
    options: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` satisfies this constraint."""
        if isinstance(value, (bool, np.bool_)) and self.type is not bool:
            return False
        return isinstance(value, self.type) and value in self.options

    def __str__(self) -> str:
        listed = ", ".join(repr(option) for option in self.options)
        return f"{_TYPE_NAMES.get(self.type, 'a value')} among {{{listed}}}"


Constraint = Interval | Options | type | None


def _accepts(constraint: Constraint, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint is bool:
        return isinstance(value, (bool, np.bool_))
    return constraint.accepts(value)  # type: ignore[union-attr]


def _describe(constraint: Constraint) -> str:
    if constraint is None:
        return "None"
    if constraint is bool:
        return "an instance of 'bool'"
    return str(constraint)


def validate_params(
    algorithm: str, constraints: Mapping[str, Iterable[Constraint]], params: Mapping[str, Any]
) -> None:
    """Raise ``InvalidArgumentError`` for the first parameter that meets none of its constraints.

    Parameters
    ----------
    algorithm : str
        Name used in the message (``"lm"``).
    constraints : mapping of str to list of constraints
        Per parameter name, the constraints of which at least one must hold.
    params : mapping of str to object
        The values passed, by name.
    """
    for name, allowed in constraints.items():
        allowed = list(allowed)
        value = params[name]
        if any(_accepts(constraint, value) for constraint in allowed):
            continue
        described = [_describe(constraint) for constraint in allowed]
        wanted = described[0] if len(described) == 1 else (
            f"{', '.join(described[:-1])} or {described[-1]}"
        )
        raise InvalidArgumentError(
            f"The {name!r} parameter of {algorithm} must be {wanted}. Got {value!r} instead."
        )


def as_matrix(data: Any, name: str, algorithm: str, column: bool = False) -> tuple[fl.Matrix, bool]:
    """Return ``data`` as a fedla matrix, and whether it was given as an array.

    Parameters
    ----------
    data : ndarray, scipy sparse, list or fl.Matrix
        The argument. 1-D arrays are accepted only when ``column`` (labels, responses) and
        become a column.
    name, algorithm : str
        For error messages.
    column : bool, default False
        Whether ``data`` must be a single column.

    Returns
    -------
    matrix : fl.Matrix
    was_array : bool
        True when ``data`` was not a fedla matrix; algorithms then return per-row results
        as arrays too.
    """
    if isinstance(data, fl.Matrix):
        matrix, was_array = data, False
    else:
        if not sp.issparse(data):
            array = np.asarray(data)
            if array.dtype.kind not in "biuf":
                raise InvalidArgumentError(
                    f"The {name!r} argument of {algorithm} must hold numbers; "
                    f"got dtype {array.dtype} instead."
                )
            if array.ndim != 2 and not (column and array.ndim == 1):
                raise ShapeMismatchError(
                    f"The {name!r} argument of {algorithm} must be a 2-D matrix; got an array "
                    f"of shape {array.shape} instead. Reshape it with .reshape(-1, 1) if it holds "
                    "a single feature."
                )
            data = array
        matrix, was_array = fl.matrix(data), True
    if matrix.ndim != 2:
        raise ShapeMismatchError(
            f"The {name!r} argument of {algorithm} must be a matrix; got a scalar instead."
        )
    if column and matrix.shape[1] != 1:
        raise ShapeMismatchError(
            f"The {name!r} argument of {algorithm} must be a single column of shape "
            f"({matrix.shape[0]}, 1); got shape {matrix.shape} instead."
        )
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ShapeMismatchError(
            f"The {name!r} argument of {algorithm} is empty (shape {matrix.shape})."
        )
    return matrix, was_array


def check_same_rows(algorithm: str, X: fl.Matrix, y: fl.Matrix, y_name: str) -> None:
    """Raise ``ShapeMismatchError`` unless ``X`` and ``y`` have the same number of rows."""
    if X.shape[0] != y.shape[0]:
        raise ShapeMismatchError(
            f"The {y_name!r} argument of {algorithm} must have one row per row of 'X' "
            f"({X.shape[0]}); got {y.shape[0]} rows instead."
        )


def check_model_rows(algorithm: str, X: fl.Matrix, B: Any, name: str) -> np.ndarray:
    """Return model ``B`` as a 2-D array with ``ncol(X)`` or ``ncol(X) + 1`` rows (intercept)."""
    B = np.asarray(B.compute() if isinstance(B, fl.Matrix) else B, dtype=np.float64)
    if B.ndim == 1:
        B = B.reshape(-1, 1)
    if B.ndim != 2 or B.shape[0] not in (X.shape[1], X.shape[1] + 1):
        raise ShapeMismatchError(
            f"The {name!r} argument of {algorithm} must have ncol(X)={X.shape[1]} rows, or "
            f"{X.shape[1] + 1} with an intercept; got shape {B.shape} instead."
        )
    return B


def returned_like(result: fl.Matrix, was_array: bool) -> Any:
    """A per-row result as the caller gave the input: computed for arrays, lazy for matrices."""
    return result.compute() if was_array else result
