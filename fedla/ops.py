"""Every plan operation, defined once by its ``OpSpec``, and the one way to build plan nodes.

An ``OpSpec`` says how an operation infers its result's shape and dtype (checking its operands),
where its result lives given where its inputs live (placement), how it lowers to per-site work
(``blockwise``: the same kernel on aligned blocks; ``reduction``: partials per block plus an
associative combine; ``contraction``: products whose partials are summed; ``layout``: blocks that
move or are cut), and whether it fuses into elementwise chains. ``Matrix``, the rewrites and the
lowering read these specs; no other module knows an operation's name. Adding a blockwise
operation is its kernel in ``fedla.runtime.kernels`` plus one ``OpSpec`` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fedla.plan import Layout, Node, Partitioning
from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from fedla.runtime.kernels import run_kernel
from fedla.runtime.lineage import content_key, lineage_key

ROW, COL, LOCAL = Partitioning.ROW, Partitioning.COL, Partitioning.LOCAL

Shape = tuple[int, ...]
LoweringKind = Literal["blockwise", "reduction", "contraction", "layout"]


@dataclass(frozen=True)
class OpSpec:
    """How one plan operation behaves; see the module docstring."""

    name: str
    lowering: LoweringKind
    infer: Callable[[list[Node], dict[str, Any]], tuple[Shape, np.dtype]]
    place: Callable[[list[Node], dict[str, Any]], Partitioning]  # given a federated input
    fuses: bool = False

    @property
    def kernel(self) -> str:
        """The registered kernel that computes one block (the op's own name)."""
        return self.name


# ----- shape and dtype inference
def kernel_dtype(kernel: str, dtypes: list[np.dtype], attrs: dict[str, Any]) -> np.dtype:
    """Run the real kernel on 1x1 ones of the input dtypes and read the result's dtype.

    Remembered per (kernel, dtypes, attrs): iterative algorithms build the same ops thousands
    of times.
    """
    key = (kernel, tuple(np.dtype(d).str for d in dtypes), repr(sorted(attrs.items())))
    dtype = _KERNEL_DTYPES.get(key)
    if dtype is None:
        samples = [np.ones((1, 1), dtype=d) for d in dtypes]
        with np.errstate(all="ignore"):
            dtype = np.asarray(run_kernel(kernel, samples, attrs)).dtype
        if len(_KERNEL_DTYPES) < _KERNEL_DTYPES_KEPT:
            _KERNEL_DTYPES[key] = dtype
    return dtype


_KERNEL_DTYPES: dict[tuple[str, tuple[str, ...], str], np.dtype] = {}
_KERNEL_DTYPES_KEPT = 4096


def broadcast_shape(op: str, a: Shape, b: Shape) -> Shape:
    """Numpy's broadcast of two 2-D (or scalar ``()``) shapes, or ``ShapeMismatchError``."""
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


def matrix_shape(node: Node, op: str) -> tuple[int, int]:
    """``node``'s (rows, cols), or ``InvalidArgumentError`` for a scalar."""
    if len(node.shape) != 2:
        raise InvalidArgumentError(f"{op} needs a matrix; got a scalar")
    return node.shape  # type: ignore[return-value]


def _infer_elementwise(inputs: list[Node], attrs: dict[str, Any], kernel: str) -> tuple[Shape,
                                                                                       np.dtype]:
    shape: Shape = ()
    for node in inputs:
        shape = broadcast_shape(attrs.get("op", kernel), shape, node.shape)
    if kernel == "where":
        return shape, np.result_type(*[node.dtype for node in inputs[1:]])
    return shape, kernel_dtype(kernel, [node.dtype for node in inputs], attrs)


def _infer_reduce(inputs: list[Node], attrs: dict[str, Any]) -> tuple[Shape, np.dtype]:
    (x,) = inputs
    name, axis = attrs["reduction"], attrs.get("axis")
    rows, cols = matrix_shape(x, name)
    if axis not in (None, 0, 1):
        raise InvalidArgumentError(f"{name}: axis must be None, 0 or 1; got {axis!r}")
    if name in ("argmax", "argmin") and axis is None:
        raise InvalidArgumentError(f"{name}: axis must be 0 or 1; got None")
    shape: Shape = () if axis is None else ((1, cols) if axis == 0 else (rows, 1))
    return shape, kernel_dtype("reduce", [x.dtype], attrs)


def _infer_matmul(inputs: list[Node], attrs: dict[str, Any]) -> tuple[Shape, np.dtype]:
    left, right = inputs
    (n, k1), (k2, m) = matrix_shape(left, "matmul"), matrix_shape(right, "matmul")
    if k1 != k2:
        raise ShapeMismatchError(
            f"matmul: shapes {left.shape} and {right.shape} are not aligned ({k1} != {k2})"
        )
    return (n, m), np.result_type(left.dtype, right.dtype)


def _infer_tsmm(inputs: list[Node], attrs: dict[str, Any]) -> tuple[Shape, np.dtype]:
    _, cols = matrix_shape(inputs[0], "tsmm")
    return (cols, cols), inputs[0].dtype


def _infer_mmchain(inputs: list[Node], attrs: dict[str, Any]) -> tuple[Shape, np.dtype]:
    _, cols = matrix_shape(inputs[0], "mmchain")
    return (cols, 1), np.result_type(*[node.dtype for node in inputs])


def _infer_slice(inputs: list[Node], attrs: dict[str, Any]) -> tuple[Shape, np.dtype]:
    (rows0, rows1), (cols0, cols1) = attrs["rows"], attrs["cols"]
    return (rows1 - rows0, cols1 - cols0), inputs[0].dtype


def _infer_transpose(inputs: list[Node], attrs: dict[str, Any]) -> tuple[Shape, np.dtype]:
    rows, cols = matrix_shape(inputs[0], "transpose")
    return (cols, rows), inputs[0].dtype


def _infer_bind(op: str) -> Callable[[list[Node], dict[str, Any]], tuple[Shape, np.dtype]]:
    keep = 0 if op == "cbind" else 1  # the axis that must agree

    def infer(inputs: list[Node], attrs: dict[str, Any]) -> tuple[Shape, np.dtype]:
        if not inputs:
            raise InvalidArgumentError(f"{op}: needs at least one matrix")
        shapes = [matrix_shape(node, op) for node in inputs]
        if len({shape[keep] for shape in shapes}) != 1:
            raise ShapeMismatchError(
                f"{op}: all inputs need the same number of {'rows' if keep == 0 else 'columns'}; "
                f"got shapes {shapes}"
            )
        total = sum(shape[1 - keep] for shape in shapes)
        shape = (shapes[0][0], total) if op == "cbind" else (total, shapes[0][1])
        return shape, np.result_type(*[node.dtype for node in inputs])

    return infer


# ----- placement
def anchor_input(inputs: list[Node]) -> Node:
    """The federated input whose layout a blockwise result follows: a full-size one if any.

    Among equally large inputs, a computed one wins over a federated input as read or
    scattered: realigning the input moves raw rows once (lowering keeps the realignment), where
    realigning a computed value would move derived rows in every plan.
    """
    federated = [node for node in inputs if node.federated]
    return max(federated, key=lambda node: (node.shape[0] * node.shape[1],
                                            node.op != "federated"))


def is_tsmm(left: Node, right: Node) -> bool:
    """Whether ``left @ right`` is ``t(X) @ X`` for a federated ``X``."""
    return left.op == "transpose" and left.inputs[0].key == right.key and right.federated


def _place_blockwise(inputs: list[Node], attrs: dict[str, Any]) -> Partitioning:
    anchor = anchor_input(inputs)
    axis = 0 if anchor.partitioning is ROW else 1
    length = max(node.shape[axis] for node in inputs if node.shape)
    # A federated operand broadcast along its partitioned axis (a 1-row slice of row blocks plus a
    # full local matrix) has no blocks to follow: such a result is computed at the coordinator.
    return anchor.partitioning if anchor.shape[axis] == length else LOCAL


def _place_reduce(inputs: list[Node], attrs: dict[str, Any]) -> Partitioning:
    kind, axis = inputs[0].partitioning, attrs.get("axis")
    keeps = (kind is ROW and axis == 1) or (kind is COL and axis == 0)
    return kind if keeps else LOCAL


def _place_matmul(inputs: list[Node], attrs: dict[str, Any]) -> Partitioning:
    left, right = inputs
    if is_tsmm(left, right):
        return LOCAL  # t(X) @ X is a small Gram matrix, whichever way X is split
    if left.partitioning is ROW:
        return ROW
    return COL if left.partitioning is LOCAL and right.partitioning is COL else LOCAL


def _place_aggregate(inputs: list[Node], attrs: dict[str, Any]) -> Partitioning:
    return LOCAL


def _place_same(inputs: list[Node], attrs: dict[str, Any]) -> Partitioning:
    return inputs[0].partitioning


def _place_transpose(inputs: list[Node], attrs: dict[str, Any]) -> Partitioning:
    return COL if inputs[0].partitioning is ROW else ROW


def _place_bind(op: str) -> Callable[[list[Node], dict[str, Any]], Partitioning]:
    along = ROW if op == "cbind" else COL  # the partitioning that lets blocks bind in place
    across = COL if op == "cbind" else ROW  # the partitioning that just lists blocks

    def place(inputs: list[Node], attrs: dict[str, Any]) -> Partitioning:
        if all(node.partitioning is along or not node.federated for node in inputs) and \
                anchor_input(inputs).partitioning is along:
            return along
        if all(node.partitioning is across for node in inputs):
            return across
        return LOCAL

    return place


def _elementwise(name: str) -> OpSpec:
    return OpSpec(
        name, "blockwise",
        lambda inputs, attrs: _infer_elementwise(inputs, attrs, name),
        _place_blockwise, fuses=True,
    )


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        _elementwise("binary"),
        _elementwise("unary"),
        _elementwise("where"),
        # ``fused`` is built by the rewrites from fusible chains; its node keeps the chain's
        # shape and dtype, so it never infers anything itself.
        OpSpec("fused", "blockwise", lambda inputs, attrs: ((), np.dtype(float)),
               _place_blockwise),
        OpSpec("reduce", "reduction", _infer_reduce, _place_reduce),
        OpSpec("matmul", "contraction", _infer_matmul, _place_matmul),
        OpSpec("tsmm", "contraction", _infer_tsmm, _place_aggregate),
        OpSpec("mmchain", "contraction", _infer_mmchain, _place_aggregate),
        OpSpec("slice", "layout", _infer_slice, _place_same),
        OpSpec("transpose", "layout", _infer_transpose, _place_transpose),
        OpSpec("cbind", "layout", _infer_bind("cbind"), _place_bind("cbind")),
        OpSpec("rbind", "layout", _infer_bind("rbind"), _place_bind("rbind")),
    )
}


def spec(op: str) -> OpSpec:
    """The ``OpSpec`` of ``op``."""
    try:
        return OPS[op]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown plan operation {op!r}; known: {', '.join(sorted(OPS))}"
        ) from None


# ----- building nodes
def build(op: str, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> Node:
    """A node for ``op`` on ``inputs``: shape and dtype inferred (and checked), placed and keyed."""
    op_spec = spec(op)
    shape, dtype = op_spec.infer(list(inputs), attrs)
    sorted_attrs = tuple(sorted(attrs.items()))
    key = lineage_key(op, sorted_attrs, tuple(node.key for node in inputs))
    federated = any(node.federated for node in inputs)
    partitioning = op_spec.place(list(inputs), attrs) if federated else LOCAL
    return Node(op, inputs, sorted_attrs, shape, np.dtype(dtype), partitioning, key)


def local_leaf(value: Any, key: str | None = None) -> Node:
    """A leaf holding ``value`` (ndarray, CSR or scalar) at the coordinator."""
    shape = tuple(np.shape(value)) if np.ndim(value) else ()
    dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    return Node("local", (), (), shape, np.dtype(dtype), LOCAL,
                key if key is not None else lineage_key("local", content_key(value)), value=value)


def federated_leaf(layout: Layout, dtype: Any, nnz: int) -> Node:
    """A leaf over blocks already at sites (READ or PUT)."""
    shape = (max(b.rows[1] for b in layout.blocks), max(b.cols[1] for b in layout.blocks))
    key = lineage_key("federated", tuple((b.key, b.rows, b.cols) for b in layout.blocks))
    return Node("federated", (), (("nnz", nnz),), shape, np.dtype(dtype), layout.partitioning, key,
                layout=layout)
