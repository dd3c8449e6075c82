"""Argument checks of paramserv, one message template (scikit-learn style).

"The 'utype' parameter of paramserv must be one of 'BSP', 'ASP', 'SSP', 'SBP'. Got 'FOO' instead."
Data-dependent checks read like ``n_samples=5 should be >= k=10``.
"""

from __future__ import annotations

import difflib
import importlib
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` upper-cased if it names one of ``choices``."""
    if isinstance(value, str) and value.upper() in choices:
        return value.upper()
    raise InvalidArgumentError(
        f"The {name!r} parameter of paramserv must be one of "
        f"{', '.join(repr(c) for c in choices)}. Got {value!r} instead."
    )


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``."""
    valid = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not valid or not (low <= int(value) and (high is None or int(value) <= high)):
        upper = "inf)" if high is None else f"{high}]"
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be an int in the range [{low}, {upper}. "
            f"Got {value!r} instead."
        )
    return int(value)


def check_seed(value: Any) -> int | None:
    """``None`` or a non-negative int."""
    if value is None:
        return None
    return check_int("seed", value, 0)


def check_hyperparams(value: Any) -> dict[str, Any]:
    """A dict with string keys (a copy)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidArgumentError(
            "The 'hyperparams' parameter of paramserv must be a dict with str keys or None. "
            f"Got {value!r} instead."
        )
    return dict(value)


def check_matrix(name: str, value: Any) -> np.ndarray:
    """A 2-D floating-point numpy array (ints and bools become float64)."""
    if hasattr(value, "compute") or hasattr(value, "tocsr"):
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be an in-memory dense array in mode "
            f"'LOCAL'. Got a {type(value).__name__} instead; pass X.toarray() for sparse data "
            "(federated matrices need mode 'FEDERATED')"
        )
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be a numeric array. Got dtype "
            f"{array.dtype} instead."
        )
    if array.ndim != 2:
        fix = (" Labels must be (n_samples, n_outputs): one-hot encode classes with "
               "fedla.algorithms.nn.labels.one_hot(y), or use y.reshape(-1, 1) for one output."
               if "labels" in name else "")
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be a 2-D array. Got an array of shape "
            f"{array.shape} instead.{fix}"
        )
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return np.ascontiguousarray(array)


def check_data(features: Any, labels: Any, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Features and labels as 2-D float arrays with the same number of rows."""
    X = check_matrix(f"{prefix}features", features)
    y = check_matrix(f"{prefix}labels", labels)
    if X.shape[0] != y.shape[0]:
        raise ShapeMismatchError(
            f"{prefix}features have {X.shape[0]} rows but {prefix}labels have {y.shape[0]}; "
            "they must have one row per sample"
        )
    if X.shape[0] == 0:
        raise InvalidArgumentError(f"{prefix}features must have at least one row; got 0")
    return X, y


def check_path(name: str, value: Any) -> str | None:
    """``None`` or a filesystem path as str."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be a path (str or os.PathLike) or None. "
            f"Got {value!r} instead."
        )
    return os.fspath(value)


def resolve_function(name: str, value: Any) -> tuple[Callable[..., Any], str]:
    """``(function, "module:qualname")`` for a reference string or an importable function.

    Worker processes import functions by reference, so a callable must be a module-level function
    that ``module:qualname`` finds again (no lambdas, closures or bound methods).
    """
    if isinstance(value, str):
        return import_function(name, value), value
    if not callable(value):
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be a 'module:function' reference or a "
            f"function. Got {value!r} instead."
        )
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    ref = f"{module}:{qualname}"
    found: Any = None
    try:
        found = import_function(name, ref) if module and qualname else None
    except InvalidArgumentError:
        pass
    if found is not value:
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be importable by worker processes: a "
            f"module-level function or a 'module:function' reference. Got {value!r} ({ref}) "
            "instead; move it to a module's top level"
        )
    return value, ref


def import_function(name: str, ref: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (the function part may be dotted)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be a 'module:function' reference such "
            f"as 'fedla.algorithms.nn.ffn:gradients'. Got {ref!r} instead."
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgumentError(
            f"paramserv cannot import module {module_name!r} of {name}={ref!r}: {exc}"
        ) from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise InvalidArgumentError(
                f"paramserv: module {module_name!r} has no function {attr!r} ({name}={ref!r})"
            )
        target = getattr(target, part)
    if not callable(target):
        raise InvalidArgumentError(f"paramserv: {name}={ref!r} is not callable")
    return target


def check_hyperparameter_names(params: Mapping[str, Any], upd_ref: str) -> None:
    """Refuse names ``upd``'s model does not read (``HYPERPARAMETERS`` of its module, if any)."""
    module = importlib.import_module(upd_ref.partition(":")[0])
    known = getattr(module, "HYPERPARAMETERS", None)
    if known is None:
        return
    for name in params:
        if name in known or name == "seed":
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InvalidArgumentError(
            f"The 'hyperparams' parameter of paramserv has a name {name!r} that "
            f"{module.__name__} does not read; {hint}its hyperparameters are "
            f"{', '.join(sorted(known))}"
        )


def check_float(name: str, value: Any, low: float, high: float | None = None,
                low_open: bool = False) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if valid else float("nan")
    ok = valid and (number > low if low_open else number >= low) and (
        high is None or number <= high)
    if not ok:
        left = "(" if low_open else "["
        right = "inf)" if high is None else f"{high}]"
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be a float in the range {left}{low}, "
            f"{right}. Got {value!r} instead."
        )
    return number
