"""``Matrix``: the lazy, numpy-like handle users hold, and the functions that build plan nodes.

Every operation checks shapes at once (so mistakes surface where they are made), infers the
result's dtype by running the real kernel on 1x1 inputs, and returns a new ``Matrix`` over a new
plan node. Nothing is computed until ``.compute()``. Matrices are always 2-D; reductions keep
their reduced axis as length 1 (``X.sum(axis=0)`` has shape ``(1, n)``); full reductions are
scalars.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import numpy as np
import scipy.sparse as sp

from fedla import notebook_display, numpy_protocol, ops
from fedla.plan import Node, Partitioning
from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.lineage import lineage_key

if TYPE_CHECKING:
    from fedla.context import Context

Operand = Any  # Matrix, ndarray, scipy sparse or a Python/numpy scalar


class Matrix:
    """A lazy matrix: local (in this process) or federated (blocks at workers).

    Build with ``fl.matrix(array)``, ``ctx.federated(...)`` or ``ctx.scatter(...)``; combine with
    ``@``, ``.T``, ``+ - * / **``, comparisons, reductions, slicing and the ``fl.*`` functions;
    get a numpy/scipy result with ``.compute()``.
    """

    __hash__ = None  # type: ignore[assignment]  # == builds a comparison, not a bool

    def __init__(self, node: Node, context: Context | None = None) -> None:
        self.node = node
        self.context = context

    # ----- properties
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape: ``(rows, cols)``, or ``()`` for a scalar."""
        return self.node.shape

    @property
    def dtype(self) -> np.dtype:
        """Element type of the result."""
        return self.node.dtype

    @property
    def ndim(self) -> int:
        """2 for matrices, 0 for scalars."""
        return len(self.node.shape)

    @property
    def partitioning(self) -> Partitioning:
        """ROW or COL for federated values, LOCAL otherwise."""
        return self.node.partitioning

    @property
    def nnz(self) -> int:
        """Number of nonzero entries (computed where the data lives)."""
        known = self.node.attr("nnz", -1)
        if known >= 0:
            return int(known)
        return int(self._reduce("nnz", None, True).compute())

    @property
    def T(self) -> Matrix:  # noqa: N802 - numpy's name
        """The transpose."""
        return _build("transpose", (self,), {})

    def compute(self, rewrite: bool = True) -> Any:
        """Evaluate the plan: a numpy array, a scipy CSR array, or a scalar.

        ``rewrite=False`` runs the plan as written, without ``fedla.rewrites``.
        """
        from fedla.evaluation import evaluate

        return evaluate([self.node], self.context, rewrite)[0]

    def to_spark(self, spark: Any) -> Any:
        """The matrix as a Spark DataFrame: columns ``c0 ... c{n-1}`` (double), rows in order.

        A matrix made by ``fl.from_spark`` is written from the blocks cached in the cluster;
        any other is computed first.
        """
        from fedla.spark_export import to_spark

        return to_spark(self.node, self.context, spark)

    def explain(self, rewrite: bool = True) -> None:
        """Print the physical plan: per stage, which site runs what and what crosses the network.

        Like Spark's ``explain()``; ``fl.explain(*matrices)`` returns the same text.
        """
        from fedla.evaluation import explain

        print(explain([self.node], self.context, rewrite))

    def __repr__(self) -> str:
        return (
            f"Matrix(shape={self.shape}, dtype={self.dtype}, "
            f"partitioning={self.partitioning.value}, op={self.node.op!r})"
        )

    # ----- numpy protocols (tables in fedla.numpy_protocol)
    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """Compute the value as a dense ndarray (``np.asarray(X)``).

        The plan's privacy checks apply as for ``compute()``: values a site's privacy level
        keeps there raise ``AccessDeniedError``, before any work.
        """
        if sys._getframe(1).f_globals.get("__name__", "").startswith("scipy.sparse"):
            # scipy.sparse's operators call np.asanyarray on any operand before Python may try
            # the reflected one; numpy's "not an array" answer (a 0-d object array) makes them
            # return NotImplemented, so `csr @ X` reaches Matrix.__rmatmul__ and stays lazy.
            opaque = np.empty((), dtype=object)
            opaque[()] = self
            return opaque
        if copy is False:
            raise ValueError(
                "np.asarray(X, copy=False) cannot return a fedla Matrix without a copy: its "
                "values are computed (and fetched) into a new array. Use copy=None."
            )
        value = self.compute()
        value = value.toarray() if sp.issparse(value) else value
        return np.asarray(value, dtype=dtype)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """Build a lazy matrix for the numpy ufuncs fedla supports (``np.exp(X)``, ``A + X``)."""
        if method != "__call__" or kwargs:
            raise numpy_protocol.unsupported(f"{ufunc.__name__}.{method}" if method != "__call__"
                                             else f"{ufunc.__name__} with {sorted(kwargs)}")
        if ufunc is np.matmul:
            return matmul(*inputs)
        if ufunc in numpy_protocol.BINARY_UFUNCS:
            return _binary(numpy_protocol.BINARY_UFUNCS[ufunc], *inputs)
        if ufunc in numpy_protocol.UNARY_UFUNCS:
            return unary(numpy_protocol.UNARY_UFUNCS[ufunc], *inputs)
        if getattr(ufunc, "__name__", "") == "expit":  # scipy.special.expit
            return unary("sigmoid", *inputs)
        raise numpy_protocol.unsupported(ufunc.__name__)

    def __array_function__(
        self, func: Any, types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Build a lazy matrix for the numpy functions fedla supports (``np.mean(X, axis=0)``)."""
        name = func.__name__
        if func in numpy_protocol.REDUCTIONS and isinstance(args[0], Matrix) and len(args) <= 2:
            reduction = getattr(args[0], numpy_protocol.REDUCTIONS[func])
            return reduction(*args[1:], **kwargs)
        if func is np.transpose and len(args) == 1 and not kwargs:
            return as_matrix(args[0]).T
        if func in (np.hstack, np.vstack, np.concatenate) and len(args) == 1:
            axis = {np.hstack: 1, np.vstack: 0}.get(func, kwargs.pop("axis", 0))
            if not kwargs and axis in (0, 1):
                return (vstack if axis == 0 else hstack)(list(args[0]))
        if func is np.where and len(args) == 3 and not kwargs:
            return where(*args)
        if func in (np.dot, np.matmul) and len(args) == 2 and not kwargs:
            return matmul(*args)
        if func is np.shape:
            return args[0].shape
        if func is np.ndim:
            return args[0].ndim
        raise numpy_protocol.unsupported(name)

    def _repr_html_(self) -> str:
        """Jupyter's view: shape, dtype, partitioning, operation and sites; never the data."""
        return notebook_display.matrix_html(self.node)

    def __float__(self) -> float:
        return float(self.compute())

    def __int__(self) -> int:
        return int(self.compute())

    def __bool__(self) -> bool:
        raise TypeError(
            "the truth value of a fedla Matrix is ambiguous and would need a computation; "
            "call .compute() and test the result"
        )

    # ----- arithmetic
    def __matmul__(self, other: Operand) -> Matrix:
        return matmul(self, other)

    def __rmatmul__(self, other: Operand) -> Matrix:
        return matmul(other, self)

    def __add__(self, other: Operand) -> Matrix:
        return _binary("add", self, other)

    def __radd__(self, other: Operand) -> Matrix:
        return _binary("add", other, self)

    def __sub__(self, other: Operand) -> Matrix:
        return _binary("sub", self, other)

    def __rsub__(self, other: Operand) -> Matrix:
        return _binary("sub", other, self)

    def __mul__(self, other: Operand) -> Matrix:
        return _binary("mul", self, other)

    def __rmul__(self, other: Operand) -> Matrix:
        return _binary("mul", other, self)

    def __truediv__(self, other: Operand) -> Matrix:
        return _binary("div", self, other)

    def __rtruediv__(self, other: Operand) -> Matrix:
        return _binary("div", other, self)

    def __pow__(self, other: Operand) -> Matrix:
        return _binary("pow", self, other)

    def __rpow__(self, other: Operand) -> Matrix:
        return _binary("pow", other, self)

    def __mod__(self, other: Operand) -> Matrix:
        return _binary("mod", self, other)

    def __rmod__(self, other: Operand) -> Matrix:
        return _binary("mod", other, self)

    def __floordiv__(self, other: Operand) -> Matrix:
        return _binary("floordiv", self, other)

    def __rfloordiv__(self, other: Operand) -> Matrix:
        return _binary("floordiv", other, self)

    def __eq__(self, other: Operand) -> Matrix:  # type: ignore[override]
        return _binary("eq", self, other)

    def __ne__(self, other: Operand) -> Matrix:  # type: ignore[override]
        return _binary("ne", self, other)

    def __lt__(self, other: Operand) -> Matrix:
        return _binary("lt", self, other)

    def __le__(self, other: Operand) -> Matrix:
        return _binary("le", self, other)

    def __gt__(self, other: Operand) -> Matrix:
        return _binary("gt", self, other)

    def __ge__(self, other: Operand) -> Matrix:
        return _binary("ge", self, other)

    def __neg__(self) -> Matrix:
        return unary("neg", self)

    def __abs__(self) -> Matrix:
        return unary("abs", self)

    # ----- reductions
    def sum(self, axis: int | None = None, keepdims: bool = True) -> Matrix:
        """Sum of all entries (scalar), columns (``axis=0``, 1 x n) or rows (``axis=1``, m x 1)."""
        return self._reduce("sum", axis, keepdims)

    def mean(self, axis: int | None = None, keepdims: bool = True) -> Matrix:
        """Arithmetic mean, with ``sum``'s axis convention."""
        return self._reduce("mean", axis, keepdims)

    def min(self, axis: int | None = None, keepdims: bool = True) -> Matrix:
        """Minimum, with ``sum``'s axis convention."""
        return self._reduce("min", axis, keepdims)

    def max(self, axis: int | None = None, keepdims: bool = True) -> Matrix:
        """Maximum, with ``sum``'s axis convention."""
        return self._reduce("max", axis, keepdims)

    def var(self, axis: int | None = None, ddof: int = 0, keepdims: bool = True) -> Matrix:
        """Variance (``ddof=1`` for the sample variance SystemDS's ``var`` computes)."""
        return self._reduce("var", axis, keepdims, ddof=ddof)

    def argmax(self, axis: int = 1) -> Matrix:
        """0-based index of the maximum of each row (``axis=1``) or column (``axis=0``)."""
        return self._reduce("argmax", axis, True)

    def argmin(self, axis: int = 1) -> Matrix:
        """0-based index of the minimum of each row (``axis=1``) or column (``axis=0``)."""
        return self._reduce("argmin", axis, True)

    def _reduce(self, name: str, axis: int | None, keepdims: bool, **attrs: Any) -> Matrix:
        if not keepdims:
            raise InvalidArgumentError(
                f"{name}: fedla matrices are always 2-D, so keepdims=False is not supported; "
                "reductions along an axis keep it with length 1"
            )
        return _build("reduce", (self,), {"reduction": name, "axis": axis, **attrs})

    # ----- indexing
    def __getitem__(self, index: Any) -> Matrix:
        rows_index, cols_index = index if isinstance(index, tuple) else (index, slice(None))
        nrows, ncols = self._matrix_shape("slice")
        rows = _range_of(rows_index, nrows, "rows")
        cols = _range_of(cols_index, ncols, "cols")
        return _build("slice", (self,), {"rows": rows, "cols": cols})

    def _matrix_shape(self, op: str) -> tuple[int, int]:
        return ops.matrix_shape(self.node, op)


# ----- constructors
CONTENT_KEY_LIMIT = 64 * 1024**2
"""Local matrices up to this many bytes are keyed by content, larger ones by identity."""


def matrix(data: Any) -> Matrix:
    """A local (embedded) matrix over an ndarray or scipy sparse matrix.

    1-D arrays become column vectors, as in SystemDS. The lineage key hashes the content, so
    equal data wrapped twice shares cached results; above ``CONTENT_KEY_LIMIT`` the key is unique
    per call instead, because hashing (about 0.7 GB/s) would cost more than most work on it.
    """
    if isinstance(data, Matrix):
        return data
    value = _as_value(data)
    if np.ndim(value) == 0:
        return Matrix(ops.local_leaf(value))
    nbytes = value.data.nbytes if sp.issparse(value) else value.nbytes
    key = None if nbytes <= CONTENT_KEY_LIMIT else lineage_key("local", uuid4().hex)
    return Matrix(ops.local_leaf(value, key))


def _as_value(data: Any) -> Any:
    if sp.issparse(data):
        return sp.csr_array(data)
    if isinstance(data, (int, float, bool, np.generic)):
        return data
    array = np.asarray(data)
    if array.dtype.kind not in "biufc":
        raise InvalidArgumentError(f"a matrix needs numeric or bool data; got dtype {array.dtype}")
    if array.ndim == 0:
        return array[()]
    if array.ndim == 1:
        return array.reshape(-1, 1)
    if array.ndim != 2:
        raise InvalidArgumentError(f"a matrix is 2-D; got an array of shape {array.shape}")
    return array


def as_matrix(operand: Operand, context: Context | None = None) -> Matrix:
    """Wrap an ndarray/scipy/scalar operand as a local ``Matrix``; matrices pass through."""
    if isinstance(operand, Matrix):
        return operand
    wrapped = matrix(operand)
    wrapped.context = context
    return wrapped


# ----- operations
def matmul(a: Operand, b: Operand) -> Matrix:
    """Matrix product ``a @ b``."""
    return _build("matmul", _operands(a, b), {})


def _binary(op: str, a: Operand, b: Operand) -> Matrix:
    return _build("binary", _operands(a, b), {"op": op})


def binary(op: str, a: Operand, b: Operand) -> Matrix:
    """Elementwise ``op`` (a name in ``fedla.runtime.kernels.elementwise.BINARY_OPS``)."""
    return _binary(op, a, b)


def unary(op: str, a: Operand) -> Matrix:
    """Elementwise ``op`` (a name in ``fedla.runtime.kernels.elementwise.UNARY_OPS``)."""
    return _build("unary", _operands(a), {"op": op})


def where(cond: Operand, a: Operand, b: Operand) -> Matrix:
    """Entries of ``a`` where ``cond`` is nonzero, else of ``b`` (numpy broadcasting)."""
    return _build("where", _operands(cond, a, b), {})


def hstack(parts: Sequence[Operand]) -> Matrix:
    """Concatenate matrices left to right (SystemDS ``cbind``)."""
    return _build("cbind", _operands(*parts), {})


def vstack(parts: Sequence[Operand]) -> Matrix:
    """Concatenate matrices top to bottom (SystemDS ``rbind``)."""
    return _build("rbind", _operands(*parts), {})


# ----- helpers
def _operands(*operands: Operand) -> tuple[Matrix, ...]:
    contexts = {id(m.context): m.context for m in operands if isinstance(m, Matrix) and m.context}
    if len(contexts) > 1:
        raise InvalidArgumentError(
            "operands belong to different Contexts; a plan runs in one Context (tenant)"
        )
    context = next(iter(contexts.values()), None)
    return tuple(as_matrix(operand, context) for operand in operands)


def _build(op: str, inputs: tuple[Matrix, ...], attrs: dict[str, Any]) -> Matrix:
    node = ops.build(op, tuple(m.node for m in inputs), attrs)
    context = next((m.context for m in inputs if m.context is not None), None)
    return Matrix(node, context)


def _range_of(index: Any, size: int, what: str) -> tuple[int, int]:
    if isinstance(index, (int, np.integer)):
        i = int(index) + (size if index < 0 else 0)
        if not 0 <= i < size:
            raise InvalidArgumentError(f"{what} index {index} is out of range for size {size}")
        return (i, i + 1)
    if isinstance(index, slice):
        start, stop, step = index.indices(size)
        if step != 1:
            raise InvalidArgumentError(f"{what} slices need step 1; got {index.step}")
        if stop <= start:
            raise InvalidArgumentError(f"{what} slice {index} of size {size} is empty")
        return (start, stop)
    raise InvalidArgumentError(
        f"{what} must be indexed by an int or a contiguous slice; got {type(index).__name__}"
    )
