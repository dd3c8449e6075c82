"""Elementwise kernels: ``binary`` (arithmetic, comparison, logic), ``unary`` and ``where``.

Operands broadcast like numpy, restricted to 2-D blocks: each operand has the result's shape, or
is a (1, m) row, an (n, 1) column, a (1, 1) block or a scalar. Results equal numpy on the dense
equivalents, dtype included; numpy's refusals (``bool - bool``, integers to negative powers)
become ``InvalidArgumentError``.

Sparse operands follow one rule: the result stays CSR exactly when no sparse operand is
broadcast and the op maps every implicit zero to zero, checked on the actual values of the other
operand (so ``csr * 2`` and ``csr > 0.5`` stay sparse while ``csr * inf``, ``csr / 0`` and
``csr + 1`` do not). A sparse result is computed on the stored entries only, O(nnz), and drops the
zeros it produces; every other case densifies and computes in the backend's array-API
namespace (``backend.xp``). The array API reads only bool operands in logical functions, so
``and``, ``or``, ``not`` and ``where``'s condition first turn other dtypes into ``x != 0``, which
is how numpy reads them (NaN is True). Under a stricter namespace than numpy
(array-api-strict), ops outside the standard's dtype categories (``bool + bool``, ``sqrt`` of
integers) are refused as invalid arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from fedla.runtime.kernels.backend import Backend
from fedla.runtime.kernels.indexing import block_shape, canonical_csr
from fedla.runtime.kernels.registry import kernel

_BINARY_FUNCS: dict[str, str] = {  # op -> array-API function
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "divide",
    "pow": "pow",
    "minimum": "minimum",
    "maximum": "maximum",
    "mod": "remainder",
    "floordiv": "floor_divide",
    "eq": "equal",
    "ne": "not_equal",
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
    "and": "logical_and",
    "or": "logical_or",
}
BINARY_OPS: tuple[str, ...] = tuple(_BINARY_FUNCS)
_LOGICAL_OPS = ("and", "or", "not")

_UNARY_FUNCS: dict[str, str] = {  # op -> array-API function
    "neg": "negative",
    "abs": "abs",
    "sign": "sign",
    "sqrt": "sqrt",
    "exp": "exp",
    "log": "log",
    "log1p": "log1p",
    "expm1": "expm1",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "tanh": "tanh",
    "round": "round",
    "floor": "floor",
    "ceil": "ceil",
    "square": "square",
    "not": "logical_not",
}
UNARY_OPS: tuple[str, ...] = (*_UNARY_FUNCS, "sigmoid")


def _op_name(kernel_name: str, op: str, known: Sequence[str]) -> str:
    if op not in known:
        raise InvalidArgumentError(
            f"{kernel_name}: unknown op {op!r}; expected one of {', '.join(known)}"
        )
    return op


@contextmanager
def _array_refusals(label: str) -> Iterator[None]:
    """Report the array library refusing a dtype or value (``2 ** -1``) as a bad argument."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{label}: {exc}") from exc


def _operand_shape(x: Any, kernel_name: str) -> tuple[int, ...]:
    """``()`` for a scalar (Python, numpy or 0-d array), ``(n, m)`` for a block."""
    if isinstance(x, (bool, int, float, complex)) or getattr(x, "ndim", None) == 0:
        return ()
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2:
        raise InvalidArgumentError(
            f"{kernel_name}: each operand must be a 2-D block or a scalar; "
            f"got {type(x).__name__} of shape {shape} instead"
        )
    return int(shape[0]), int(shape[1])


def _broadcast_shape(label: str, shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    """Return the shape 2-D numpy broadcasting gives, or raise ``ShapeMismatchError``."""
    blocks = [shape for shape in shapes if shape]
    if not blocks:
        raise InvalidArgumentError(f"{label}: at least one operand must be a 2-D block; got none")
    result = []
    for axis in (0, 1):
        sizes = list(dict.fromkeys(shape[axis] for shape in blocks if shape[axis] != 1))
        if len(sizes) > 1:
            named = [str(shape) if shape else "scalar" for shape in shapes]
            raise ShapeMismatchError(
                f"{label}: shapes {', '.join(named[:-1])} and {named[-1]} do not broadcast "
                f"({' != '.join(map(str, sizes))} along axis {axis}); each operand must have the "
                "result's shape or be a (1, m) row, an (n, 1) column, a (1, 1) block or a scalar"
            )
        result.append(sizes[0] if sizes else 1)
    return result[0], result[1]


def _densify(backend: Backend, x: Any) -> Any:
    return x.toarray() if backend.issparse(x) else x


def _truth(backend: Backend, x: Any) -> Any:
    """``x`` as bool the way numpy's logical functions read it: nonzero (and NaN) is True."""
    if isinstance(x, (bool, int, float, complex)):
        return x != 0
    if backend.xp.isdtype(x.dtype, "bool"):
        return x
    return x != 0


def _logical(backend: Backend, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (``logical_and``/``_or``/``_not``) applied to the truth of its operands."""

    def logical(*operands: Any) -> Any:
        return fn(*(_truth(backend, x) for x in operands))

    return logical


def _zero(x: Any) -> Any:
    return x.dtype.type(0)


# --- stored-entry arithmetic on canonical CSR (``backend.array_module``, see backend.py) --------


def _row_ids(backend: Backend, x: Any) -> Any:
    """Row index of every stored entry of a canonical CSR."""
    am = backend.array_module
    return am.repeat(am.arange(x.shape[0]), am.diff(x.indptr))


def _gather(backend: Backend, x: Any, pattern: Any) -> Any:
    """Values of a dense or scalar operand at the stored entries of CSR ``pattern``, broadcast."""
    if getattr(x, "ndim", 0) == 0:
        return x
    rows = _row_ids(backend, pattern) if x.shape[0] > 1 else 0
    cols = pattern.indices if x.shape[1] > 1 else 0
    return x[rows, cols]


def _union(backend: Backend, a: Any, b: Any) -> tuple[Any, Any, Any]:
    """The entries stored in either canonical CSR, and both operands' values there."""
    am = backend.array_module
    pattern = _ones(backend, a) + _ones(backend, b)  # scipy merges sorted rows; 1 + 1 != 0
    width = pattern.shape[1]
    keys = _row_ids(backend, pattern) * width + pattern.indices  # row-major, hence sorted

    def values_on_pattern(x: Any) -> Any:
        values = am.zeros(pattern.nnz, dtype=x.dtype)
        values[am.searchsorted(keys, _row_ids(backend, x) * width + x.indices)] = x.data
        return values

    return pattern, values_on_pattern(a), values_on_pattern(b)


def _ones(backend: Backend, x: Any) -> Any:
    ones = backend.array_module.ones(x.nnz, dtype=backend.array_module.int8)
    return backend.sparse.csr_array((ones, x.indices, x.indptr), shape=x.shape)


def _stays_sparse(backend: Backend, fill: Any) -> bool:
    """Whether the value at the implicit zeros is zero everywhere (and storable by scipy)."""
    am = backend.array_module
    return not am.any(fill) and am.asarray(fill).dtype != am.float16  # scipy has no float16


def _on_pattern(backend: Backend, pattern: Any, data: Any) -> Any:
    """Build a csr_array of ``data`` at the entries of canonical CSR ``pattern``, minus zeros.

    The op's own zeros (``x > 5`` is mostly False) are dropped; the index arrays are new, so the
    result shares nothing with an input.
    """
    am = backend.array_module
    keep = data != 0
    indptr = am.concatenate((am.zeros(1, dtype=am.intp), am.cumsum(keep)))[pattern.indptr]
    return backend.sparse.csr_array(
        (data[keep], pattern.indices[keep], indptr), shape=pattern.shape
    )


def _sparse_binary(
    backend: Backend, fn: Callable[..., Any], a: Any, b: Any, shape: tuple[int, int]
) -> Any:
    """``fn(a, b)`` as a csr_array computed on stored entries, or None if it cannot stay sparse."""
    a_sparse, b_sparse = backend.issparse(a), backend.issparse(b)
    if (a_sparse and a.shape != shape) or (b_sparse and b.shape != shape):
        return None  # a broadcast sparse row or column would repeat its zeros densely anyway
    # a probe: 0 / 0 here only means "densify" (numpy's errstate; GPU libraries do not warn)
    with np.errstate(all="ignore"):
        fill = fn(_zero(a) if a_sparse else a, _zero(b) if b_sparse else b)
    if not _stays_sparse(backend, fill):
        return None
    if a_sparse and b_sparse:
        pattern, values_a, values_b = _union(backend, canonical_csr(a), canonical_csr(b))
    elif a_sparse:
        pattern = canonical_csr(a)
        values_a, values_b = pattern.data, _gather(backend, b, pattern)
    else:
        pattern = canonical_csr(b)
        values_a, values_b = _gather(backend, a, pattern), pattern.data
    return _on_pattern(backend, pattern, fn(values_a, values_b))


@kernel("binary")
def binary(backend: Backend, a: Any, b: Any, op: str) -> Any:
    """Elementwise ``a <op> b`` with 2-D numpy broadcasting.

    Parameters
    ----------
    backend : Backend
        Array libraries of the operands.
    a, b : ndarray, scipy.sparse CSR or scalar
        Operands; blocks are 2-D, and each has the result's shape or is a (1, m) row, an
        (n, 1) column or (1, 1); at least one is a block.
    op : str
        One of ``BINARY_OPS``: ``add sub mul div pow minimum maximum mod floordiv`` (the array
        API's ``add subtract multiply divide pow minimum maximum remainder floor_divide``),
        the comparisons ``eq ne lt le gt ge`` (bool result) and ``and or`` (nonzero is True;
        bool result).

    Returns
    -------
    ndarray or scipy.sparse.csr_array of the broadcast shape
        A ``csr_array`` when the result keeps the sparse operand's implicit zeros zero (see the
        module docstring): e.g. ``csr * anything finite``, ``csr +- csr``, ``csr / nonzero``,
        ``minimum(csr, csr)``, ``csr ** positive``, ``csr > positive``, ``csr and x``.
        Otherwise dense.

    Raises
    ------
    InvalidArgumentError
        If ``op`` is unknown, an operand is neither a 2-D block nor a scalar, or the array
        library rejects the dtypes or values.
    ShapeMismatchError
        If the shapes do not broadcast.
    """
    fn = getattr(backend.xp, _BINARY_FUNCS[_op_name("binary", op, BINARY_OPS)])
    if op in _LOGICAL_OPS:
        fn = _logical(backend, fn)
    label = f"binary {op!r}"
    shape = _broadcast_shape(label, [_operand_shape(a, "binary"), _operand_shape(b, "binary")])
    with _array_refusals(label):
        if backend.issparse(a) or backend.issparse(b):
            result = _sparse_binary(backend, fn, a, b, shape)
            if result is not None:
                return result
        return fn(_densify(backend, a), _densify(backend, b))


def _sigmoid(backend: Backend, x: Any) -> Any:
    """Logistic ``1 / (1 + exp(-x))``; ``exp`` only ever sees ``-|x|``, so it cannot overflow."""
    xp = backend.xp
    if xp.isdtype(x.dtype, ("bool", "integral")):
        x = xp.astype(x, xp.float64)  # as for exp: integers and bools give float64
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


@kernel("unary")
def unary(backend: Backend, a: Any, op: str) -> Any:
    """Elementwise ``op(a)``.

    Parameters
    ----------
    backend : Backend
        Array libraries of ``a``.
    a : ndarray or scipy.sparse CSR of shape (n, m)
        The block.
    op : str
        One of ``UNARY_OPS``: ``neg abs sign sqrt exp log log1p expm1 sin cos tan tanh round
        floor ceil sigmoid square not``. ``round`` is ``numpy.round`` to 0 decimals, which rounds
        halves to even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2). ``sigmoid`` is ``1 / (1 + exp(-a))``,
        evaluated without overflow for large ``|a|``. ``not`` is ``logical_not`` (bool result).

    Returns
    -------
    ndarray or scipy.sparse.csr_array of shape (n, m)
        A ``csr_array`` for sparse ``a`` when ``op(0) == 0`` (``neg abs sign sqrt log1p expm1
        sin tan tanh round floor ceil square``): ``op`` is applied to the stored entries only.
        Otherwise dense.

    Raises
    ------
    InvalidArgumentError
        If ``op`` is unknown, ``a`` is not a 2-D block, or the array library rejects the
        dtype.
    """
    name = _op_name("unary", op, UNARY_OPS)
    fn: Callable[..., Any]
    if name == "sigmoid":
        fn = partial(_sigmoid, backend)
    else:
        fn = getattr(backend.xp, _UNARY_FUNCS[name])
        if name in _LOGICAL_OPS:
            fn = _logical(backend, fn)
    block_shape(a, "unary")
    with _array_refusals(f"unary {op!r}"):
        if backend.issparse(a):
            with np.errstate(all="ignore"):  # a probe: log(0) here only means "densify"
                fill = fn(_zero(a))
            if _stays_sparse(backend, fill):
                a = canonical_csr(a)
                return _on_pattern(backend, a, fn(a.data))
        return fn(_densify(backend, a))


@kernel("where")
def where(backend: Backend, cond: Any, a: Any, b: Any) -> Any:
    """Elementwise choice ``a if cond else b`` (``numpy.where``) with 2-D broadcasting.

    Parameters
    ----------
    backend : Backend
        Array libraries of the operands.
    cond, a, b : ndarray, scipy.sparse CSR or scalar
        Each has the result's shape or is a (1, m) row, an (n, 1) column, (1, 1) or a scalar;
        at least one is a block. A nonzero (or NaN) ``cond`` picks ``a``.

    Returns
    -------
    ndarray of the broadcast shape
        Always dense; sparse operands are densified.

    Raises
    ------
    InvalidArgumentError
        If an operand is neither a 2-D block nor a scalar.
    ShapeMismatchError
        If the shapes do not broadcast.
    """
    _broadcast_shape("where", [_operand_shape(x, "where") for x in (cond, a, b)])
    xp = backend.xp
    a, b = _densify(backend, a), _densify(backend, b)
    if _operand_shape(a, "where") == _operand_shape(b, "where") == ():
        a = xp.asarray(a)  # the array API takes at most one scalar; numpy's answer is the same
    with _array_refusals("where"):
        return xp.where(_truth(backend, _densify(backend, cond)), a, b)
