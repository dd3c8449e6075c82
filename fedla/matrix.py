"""``Matrix``: the lazy, numpy-like handle users hold, and the functions that build plan nodes.

Every operation checks shapes at once (so mistakes surface where they are made), infers the
result's dtype by running the real kernel on 1x1 inputs, and returns a new ``Matrix`` over a new
plan node. Nothing is computed until ``.compute()``. Matrices are always 2-D; reductions keep
their reduced axis as length 1 (``X.sum(axis=0)`` has shape ``(1, n)``); full reductions are
scalars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import numpy as np
import scipy.sparse as sp

from fedla.placement import placement
from fedla.plan import Node, Partitioning, content_key, lineage_key
from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from fedla.runtime.kernels import run_kernel

if TYPE_CHECKING:
    from fedla.context import Context

Operand = Any  # Matrix, ndarray, scipy sparse or a Python/numpy scalar


class Matrix:
    """A lazy matrix: local (in this process) or federated (blocks at workers).

    Build with ``fl.matrix(array)``, ``ctx.federated(...)`` or ``ctx.scatter(...)``; combine with
    ``@``, ``.T``, ``+ - * / **``, comparisons, reductions, slicing and the ``fl.*`` functions;
    get a numpy/scipy result with ``.compute()``.
    """

    __array_ufunc__ = None  # numpy defers to our reflected operators (ndarray @ Matrix)
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
        rows, cols = self._matrix_shape("transpose")
        return _build("transpose", (self,), {}, (cols, rows), self.dtype)

    def compute(self, rewrite: bool = True) -> Any:
        """Evaluate the plan: a numpy array, a scipy CSR array, or a scalar.

        ``rewrite=False`` runs the plan as written, without ``fedla.rewrites``.
        """
        from fedla.compiler import evaluate

        return evaluate(self.node, self.context, rewrite)

    def __repr__(self) -> str:
        return (
            f"Matrix(shape={self.shape}, dtype={self.dtype}, "
            f"partitioning={self.partitioning.value}, op={self.node.op!r})"
        )

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
        rows, cols = self._matrix_shape(name)
        if not keepdims:
            raise InvalidArgumentError(
                f"{name}: fedla matrices are always 2-D, so keepdims=False is not supported; "
                "reductions along an axis keep it with length 1"
            )
        if axis not in (None, 0, 1):
            raise InvalidArgumentError(f"{name}: axis must be None, 0 or 1; got {axis!r}")
        if name in ("argmax", "argmin") and axis is None:
            raise InvalidArgumentError(f"{name}: axis must be 0 or 1; got None")
        shape: tuple[int, ...] = () if axis is None else ((1, cols) if axis == 0 else (rows, 1))
        all_attrs = {"reduction": name, "axis": axis, **attrs}
        dtype = infer_dtype("reduce", [self.dtype], all_attrs)
        return _build("reduce", (self,), all_attrs, shape, dtype)

    # ----- indexing
    def __getitem__(self, index: Any) -> Matrix:
        rows_index, cols_index = index if isinstance(index, tuple) else (index, slice(None))
        nrows, ncols = self._matrix_shape("slice")
        rows = _range_of(rows_index, nrows, "rows")
        cols = _range_of(cols_index, ncols, "cols")
        shape = (rows[1] - rows[0], cols[1] - cols[0])
        return _build("slice", (self,), {"rows": rows, "cols": cols}, shape, self.dtype)

    def _matrix_shape(self, op: str) -> tuple[int, int]:
        if len(self.shape) != 2:
            raise InvalidArgumentError(f"{op} needs a matrix; got a scalar")
        return self.shape  # type: ignore[return-value]


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
        node = Node("local", (), (), (), np.asarray(value).dtype, Partitioning.LOCAL,
                    content_key(value), value=value)
        return Matrix(node)
    nbytes = value.data.nbytes if sp.issparse(value) else value.nbytes
    key = content_key(value) if nbytes <= CONTENT_KEY_LIMIT else lineage_key("local", uuid4().hex)
    node = Node("local", (), (), value.shape, value.dtype, Partitioning.LOCAL, key, value=value)
    return Matrix(node)


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
    left, right = _operands(a, b)
    (n, k1), (k2, m) = left._matrix_shape("matmul"), right._matrix_shape("matmul")
    if k1 != k2:
        raise ShapeMismatchError(
            f"matmul: shapes {left.shape} and {right.shape} are not aligned ({k1} != {k2})"
        )
    dtype = np.result_type(left.dtype, right.dtype)
    return _build("matmul", (left, right), {}, (n, m), dtype)


def _binary(op: str, a: Operand, b: Operand) -> Matrix:
    left, right = _operands(a, b)
    shape = _broadcast_shape(op, left.shape, right.shape)
    dtype = infer_dtype("binary", [left.dtype, right.dtype], {"op": op})
    return _build("binary", (left, right), {"op": op}, shape, dtype)


def binary(op: str, a: Operand, b: Operand) -> Matrix:
    """Elementwise ``op`` (a name in ``fedla.runtime.kernels.elementwise.BINARY_OPS``)."""
    return _binary(op, a, b)


def unary(op: str, a: Operand) -> Matrix:
    """Elementwise ``op`` (a name in ``fedla.runtime.kernels.elementwise.UNARY_OPS``)."""
    (operand,) = _operands(a)
    dtype = infer_dtype("unary", [operand.dtype], {"op": op})
    return _build("unary", (operand,), {"op": op}, operand.shape, dtype)


def where(cond: Operand, a: Operand, b: Operand) -> Matrix:
    """Entries of ``a`` where ``cond`` is nonzero, else of ``b`` (numpy broadcasting)."""
    c, x, y = _operands(cond, a, b)
    shape = _broadcast_shape("where", _broadcast_shape("where", c.shape, x.shape), y.shape)
    dtype = np.result_type(x.dtype, y.dtype)
    return _build("where", (c, x, y), {}, shape, dtype)


def hstack(parts: Sequence[Operand]) -> Matrix:
    """Concatenate matrices left to right (SystemDS ``cbind``)."""
    return _concat("cbind", parts)


def vstack(parts: Sequence[Operand]) -> Matrix:
    """Concatenate matrices top to bottom (SystemDS ``rbind``)."""
    return _concat("rbind", parts)


def _concat(op: str, parts: Sequence[Operand]) -> Matrix:
    matrices = _operands(*parts)
    if not matrices:
        raise InvalidArgumentError(f"{op}: needs at least one matrix")
    shapes = [m._matrix_shape(op) for m in matrices]
    keep = 0 if op == "cbind" else 1  # the axis that must agree
    if len({shape[keep] for shape in shapes}) != 1:
        raise ShapeMismatchError(
            f"{op}: all inputs need the same number of {'rows' if keep == 0 else 'columns'}; "
            f"got shapes {shapes}"
        )
    total = sum(shape[1 - keep] for shape in shapes)
    shape = (shapes[0][0], total) if op == "cbind" else (total, shapes[0][1])
    dtype = np.result_type(*[m.dtype for m in matrices])
    return _build(op, tuple(matrices), {}, shape, dtype)


# ----- helpers
def _operands(*operands: Operand) -> tuple[Matrix, ...]:
    contexts = {id(m.context): m.context for m in operands if isinstance(m, Matrix) and m.context}
    if len(contexts) > 1:
        raise InvalidArgumentError(
            "operands belong to different Contexts; a plan runs in one Context (tenant)"
        )
    context = next(iter(contexts.values()), None)
    return tuple(as_matrix(operand, context) for operand in operands)


def _build(
    op: str, inputs: tuple[Matrix, ...], attrs: dict[str, Any], shape: tuple[int, ...],
    dtype: np.dtype,
) -> Matrix:
    sorted_attrs = tuple(sorted(attrs.items()))
    key = lineage_key(op, sorted_attrs, tuple(m.node.key for m in inputs))
    partitioning = placement(op, [m.node for m in inputs], attrs)
    node = Node(op, tuple(m.node for m in inputs), sorted_attrs, shape, np.dtype(dtype),
                partitioning, key)
    context = next((m.context for m in inputs if m.context is not None), None)
    return Matrix(node, context)


def _broadcast_shape(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if not a:
        return b
    if not b:
        return a
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ShapeMismatchError(f"{op}: shapes {a} and {b} do not broadcast")
        out.append(max(x, y))
    return tuple(out)


def infer_dtype(kernel: str, dtypes: list[np.dtype], attrs: dict[str, Any]) -> np.dtype:
    """Run the real kernel on 1x1 ones of the input dtypes and read the result's dtype."""
    samples = [np.ones((1, 1), dtype=d) for d in dtypes]
    with np.errstate(all="ignore"):
        result = run_kernel(kernel, samples, attrs)
    return np.asarray(result).dtype


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
