"""Which numpy functions a ``Matrix`` answers lazily, and what to say for the others.

``Matrix`` implements numpy's dispatch protocols (NEP 13 ``__array_ufunc__``, NEP 18
``__array_function__``) from these tables: a ufunc or function listed here builds the same lazy
plan node as the fedla operation named next to it, so ``np.exp(X)``, ``ndarray + X`` or
``np.mean(X, axis=0)`` stay lazy (and federated); anything else raises a ``TypeError`` that
names the fedla equivalents and ``np.asarray(X)``, never a result computed by surprise.
Reductions keep the reduced axis, as every fedla reduction does (``np.sum(X, axis=0)`` is
``1 x n``).

This module holds data only, so ``fedla.matrix`` can read it without an import cycle.
"""

from __future__ import annotations

import numpy as np

BINARY_UFUNCS: dict[np.ufunc, str] = {
    np.add: "add",
    np.subtract: "sub",
    np.multiply: "mul",
    np.true_divide: "div",
    np.power: "pow",
    np.remainder: "mod",
    np.floor_divide: "floordiv",
    np.maximum: "maximum",
    np.minimum: "minimum",
    np.equal: "eq",
    np.not_equal: "ne",
    np.less: "lt",
    np.less_equal: "le",
    np.greater: "gt",
    np.greater_equal: "ge",
    np.logical_and: "and",
    np.logical_or: "or",
}
"""numpy ufunc of two operands -> fedla binary op (``fedla.runtime.kernels.elementwise``)."""

UNARY_UFUNCS: dict[np.ufunc, str] = {
    np.negative: "neg",
    np.absolute: "abs",
    np.sign: "sign",
    np.sqrt: "sqrt",
    np.exp: "exp",
    np.log: "log",
    np.log1p: "log1p",
    np.expm1: "expm1",
    np.sin: "sin",
    np.cos: "cos",
    np.tan: "tan",
    np.tanh: "tanh",
    np.rint: "round",
    np.floor: "floor",
    np.ceil: "ceil",
    np.square: "square",
    np.logical_not: "not",
}
"""numpy ufunc of one operand -> fedla unary op."""

REDUCTIONS: dict[object, str] = {
    np.sum: "sum",
    np.mean: "mean",
    np.min: "min",
    np.max: "max",
    np.amin: "min",
    np.amax: "max",
    np.var: "var",
    np.argmax: "argmax",
    np.argmin: "argmin",
}
"""numpy function -> ``Matrix`` reduction method of the same name."""

FEDLA_EQUIVALENTS = (
    "fedla matrices support @, .T, + - * / ** % //, comparisons, .sum/.mean/.min/.max/.var, "
    ".argmax/.argmin, [rows, cols] slicing, fl.exp/log/sqrt/abs/sign/round/sigmoid/maximum/"
    "minimum/where/hstack/vstack and the numpy ufuncs and functions that map onto them"
)


def unsupported(name: str) -> TypeError:
    """The error for a numpy function or ufunc call a ``Matrix`` cannot answer lazily."""
    return TypeError(
        f"numpy.{name} is not supported on a fedla Matrix: {FEDLA_EQUIVALENTS}. To run numpy "
        "on the values, compute them first with X.compute() or np.asarray(X)."
    )
