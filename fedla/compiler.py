"""Lowering plans to per-site requests plus combine steps at the coordinator, and running them.

``placement`` (its own module) decides where each node's value lives; ``rewrites`` turns a
plan into a cheaper equivalent one. ``evaluate`` walks a plan bottom-up: a
node whose inputs are all local runs in-process on the same kernels the workers run; an
operation on a federated input becomes one EXEC_INST per block at the worker holding it, with
local operands shipped as literals (small) or PUT once per worker (large), named by lineage key.
Aggregations that leave the sites queue a partial per block plus a GET, flush every worker's
batch in parallel, and combine (sum, concatenation, or a reduction's associative combine).
Requests queue until a value is needed at the coordinator, so a plan such as ``X.T @ X`` costs
one round trip per worker. Identical subexpressions share a lineage key and run once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fedla.placement import anchor_input
from fedla.plan import Block, Layout, Node, Partitioning, lineage_key
from fedla.request_batcher import PendingResult, RequestBatcher
from fedla.rewrites import rewrite as rewrite_plans
from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.kernels import run_kernel
from fedla.runtime.kernels.reductions import combine_partials
from fedla.runtime.lineage_cache import MISSING
from fedla.runtime.protocol.codec import INLINE_LIMIT
from fedla.runtime.protocol.requests import Clear, ExecInst, Get, Literal, Operand, Put

if TYPE_CHECKING:
    from fedla.context import Context

_LOGGER = logging.getLogger(__name__)

ROW, COL, LOCAL = Partitioning.ROW, Partitioning.COL, Partitioning.LOCAL


class _Local:
    """A value at the coordinator, with the lineage key of the node that produced it.

    The value may still be on its way: an aggregate whose partials are queued is combined when
    first needed, so independent aggregates of one plan share a single round trip per worker.
    """

    __slots__ = ("key", "_value", "_pending", "_waiting")

    def __init__(self, value: Any, key: str, pending: Callable[[], Any] | None = None) -> None:
        self.key = key
        self._value = value
        self._pending = pending
        self._waiting: list[Callable[[Any], None]] = []

    @property
    def value(self) -> Any:
        """The value, combining queued partials first if need be."""
        if self._pending is not None:
            self._value, self._pending = self._pending(), None
            for callback in self._waiting:
                callback(self._value)
            self._waiting = []
        return self._value

    def when_ready(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(value)`` once the value is known (now, if it is)."""
        if self._pending is None:
            callback(self._value)
        else:
            self._waiting.append(callback)


_Result = _Local | Layout


def evaluate(node: Node, context: Context | None, rewrite: bool = True) -> Any:
    """Compute ``node``: a numpy array, a scipy CSR array, or a scalar."""
    return evaluate_many([node], context, rewrite)[0]


def evaluate_many(nodes: list[Node], context: Context | None, rewrite: bool = True) -> list[Any]:
    """Compute several nodes in one evaluation: subexpressions they share run once.

    With ``rewrite`` the plans are first replaced by cheaper equivalent ones (``rewrites``).
    """
    if rewrite:
        nodes = rewrite_plans(nodes)
    memo: dict[str, bool] = {}
    if not any(_plan_is_federated(node, memo) for node in nodes):
        evaluator = _LocalEvaluator()
        return [evaluator.value(node) for node in nodes]
    if context is None:
        raise InvalidArgumentError("a federated plan needs its Context")
    return _FederatedEvaluation(context).run(nodes)


def _plan_is_federated(node: Node, memo: dict[str, bool]) -> bool:
    """Whether any node of the plan is federated; ``memo`` makes shared subplans count once."""
    if node.key not in memo:
        memo[node.key] = node.federated or any(
            _plan_is_federated(child, memo) for child in node.inputs
        )
    return memo[node.key]


class _LocalEvaluator:
    """Runs a plan without federated inputs in this process."""

    def __init__(self) -> None:
        self._memo: dict[str, Any] = {}

    def value(self, node: Node) -> Any:
        if node.key not in self._memo:
            if node.op == "local":
                self._memo[node.key] = node.value
            else:
                inputs = [self.value(child) for child in node.inputs]
                self._memo[node.key] = _run_node_kernel(node, inputs)
        return self._memo[node.key]


def _run_node_kernel(node: Node, inputs: list[Any]) -> Any:
    """Run ``node``'s kernel on values at the coordinator.

    Elementwise kernels need a 2-D block among their operands, so an operation on scalars only
    (``X.sum() / 2``) runs on 1x1 blocks and is unwrapped to a numpy scalar.
    """
    if node.shape == () and node.op in ("binary", "unary", "where"):
        blocks = [np.reshape(value, (1, 1)) for value in inputs]
        return np.asarray(run_kernel(node.op, blocks, dict(node.attrs)))[0, 0]
    return run_kernel(node.op, inputs, dict(node.attrs))


class _FederatedEvaluation:
    """One ``compute()`` of a plan with federated inputs."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.batcher: RequestBatcher = context.batcher
        self._memo: dict[str, _Result] = {}
        self._created: set[tuple[str, str]] = set()  # (address, var) made by this compute

    def run(self, nodes: list[Node]) -> list[Any]:
        # Everything is queued before anything is combined: one round trip per worker for
        # independent results.
        results = [self._local(node) for node in nodes]
        values = [result.value for result in results]
        # Intermediates are dropped with the next batch to each worker: no extra round trip.
        by_address: dict[str, list[str]] = {}
        for address, var in self._created:
            by_address.setdefault(address, []).append(var)
        for address, names in by_address.items():
            self.batcher.defer(address, Clear(tuple(sorted(names))))
        return values

    # ----- dispatch
    def _eval(self, node: Node) -> _Result:
        if node.key in self._memo:
            return self._memo[node.key]
        # Aggregates computed by an earlier compute() of this Context are reused as they are:
        # lineage keys name content, so a key's value never changes.
        remember = node.partitioning is LOCAL and node.op != "local"
        if remember:
            cached = self.context.results.get(node.key)
            if cached is not MISSING:
                self._memo[node.key] = _Local(cached, node.key)
                return self._memo[node.key]
        if node.op == "local":
            result: _Result = _Local(node.value, node.key)
        elif node.op == "federated":
            assert node.layout is not None
            result = node.layout
        elif not any(child.federated for child in node.inputs):
            # Every input is at the coordinator already, e.g. ``X.sum() / 2``.
            result = self._run_here(node)
        else:
            result = getattr(self, f"_lower_{node.op}")(node)
        if remember and isinstance(result, _Local):
            result.when_ready(lambda value: self.context.results.put(node.key, value))
        self._memo[node.key] = result
        return result

    def _run_here(self, node: Node) -> _Local:
        """Run ``node``'s kernel at the coordinator, gathering any federated input."""
        inputs = [self._local(child).value for child in node.inputs]
        return _Local(_run_node_kernel(node, inputs), node.key)

    def _local(self, node: Node) -> _Local:
        """``node``'s value at the coordinator, gathering it if it is federated."""
        result = self._eval(node)
        if isinstance(result, _Local):
            return result
        gathered = self._gather(result, node.key)
        self._memo[node.key] = gathered
        return gathered

    # ----- lowering rules
    def _lower_matmul(self, node: Node) -> _Result:
        left, right = node.inputs
        if left.federated and right.federated:
            a, b = self._eval(left), self._eval(right)
            assert isinstance(a, Layout) and isinstance(b, Layout)
            if a.partitioning is COL and b.partitioning is ROW and _inner_aligned(a, b):
                return self._sum_over_blocks(node, a, b)
            # Not co-located: the right operand must travel (it is usually the small one).
            return self._matmul_one_federated(node, a, self._local(right))
        if left.federated:
            a = self._eval(left)
            assert isinstance(a, Layout)
            return self._matmul_one_federated(node, a, self._local(right))
        b = self._eval(right)
        assert isinstance(b, Layout)
        local = self._local(left)
        if b.partitioning is COL:
            blocks = [
                self._exec_block("matmul", [self._ship(blk.address, local), blk], {},
                                 rows=(0, node.shape[0]), cols=blk.cols, like=blk)
                for blk in b.blocks
            ]
            return Layout(COL, tuple(blocks))
        partials = [
            self._exec_partial("matmul",
                               [self._ship_slice(blk.address, local, None, blk.rows), blk], {})
            for blk in b.blocks
        ]
        return self._combine_sum(node, partials)

    def _matmul_one_federated(self, node: Node, a: Layout, b: _Local) -> _Result:
        if a.partitioning is ROW:
            blocks = [
                self._exec_block("matmul", [blk, self._ship(blk.address, b)], {},
                                 rows=blk.rows, cols=(0, node.shape[1]), like=blk)
                for blk in a.blocks
            ]
            return Layout(ROW, tuple(blocks))
        partials = [
            self._exec_partial("matmul",
                               [blk, self._ship_slice(blk.address, b, blk.cols, None)], {})
            for blk in a.blocks
        ]
        return self._combine_sum(node, partials)

    def _sum_over_blocks(self, node: Node, a: Layout, b: Layout) -> _Local:
        """``A @ B``, A's column blocks co-located with B's row blocks: a sum of local products."""
        partials = [
            self._exec_partial("matmul", [blk_a, blk_b], {})
            for blk_a, blk_b in zip(a.blocks, b.blocks)
        ]
        return self._combine_sum(node, partials)

    def _lower_tsmm(self, node: Node) -> _Result:
        """``t(X) @ X`` as one syrk per block; for column blocks, the blocks of a local result."""
        (x,) = node.inputs
        layout = self._eval(x)
        assert isinstance(layout, Layout)
        if layout.partitioning is ROW:
            partials = [self._exec_partial("tsmm", [blk], {"left": True})
                        for blk in layout.blocks]
            return self._combine_sum(node, partials)
        # Column blocks: t(X) @ X needs every pair of blocks; X travels once.
        local = self._local(x)
        return _Local(run_kernel("tsmm", [local.value], {"left": True}), node.key)

    def _lower_mmchain(self, node: Node) -> _Result:
        """``t(X) @ (w * (X @ v))``: one request per row block, the product never stored."""
        x, *rest = node.inputs
        layout = self._eval(x)
        assert isinstance(layout, Layout) and layout.partitioning is ROW
        operands: list[_Result] = []
        for child in rest:
            result = self._eval(child)
            if isinstance(result, Layout) and not result.aligned_with(layout):
                result = self._local(child)
            operands.append(result)
        partials = []
        for index, blk in enumerate(layout.blocks):
            inputs: list[Any] = [blk]
            for position, operand in enumerate(operands):
                if isinstance(operand, Layout):
                    inputs.append(operand.blocks[index])
                elif position == 0:  # v: the same for every block
                    inputs.append(self._ship(blk.address, operand))
                else:  # w: this block's rows
                    inputs.append(self._ship_slice(blk.address, operand, blk.rows, None))
            partials.append(self._exec_partial("mmchain", inputs, {}))
        return self._combine_sum(node, partials)

    def _lower_fused(self, node: Node) -> _Result:
        return self._elementwise(node)

    def _lower_binary(self, node: Node) -> _Result:
        return self._elementwise(node)

    def _lower_unary(self, node: Node) -> _Result:
        return self._elementwise(node)

    def _lower_where(self, node: Node) -> _Result:
        return self._elementwise(node)

    def _elementwise(self, node: Node) -> _Result:
        if node.partitioning is LOCAL:  # the anchor would be broadcast (see ``placement``)
            return self._run_here(node)
        anchor_node = anchor_input(list(node.inputs))
        anchor = self._eval(anchor_node)
        assert isinstance(anchor, Layout)
        along_rows = anchor.partitioning is ROW
        operand_results = []
        for child in node.inputs:
            result = self._eval(child)
            if isinstance(result, Layout) and not result.aligned_with(anchor):
                result = self._local(child)
            operand_results.append((child, result))
        blocks = []
        for index, blk in enumerate(anchor.blocks):
            inputs: list[Any] = []
            for child, result in operand_results:
                if isinstance(result, Layout):
                    inputs.append(result.blocks[index])
                else:
                    inputs.append(self._ship_aligned(blk, result, child.shape, along_rows))
            if along_rows:
                rows, cols = blk.rows, (0, node.shape[1])
            else:
                rows, cols = (0, node.shape[0]), blk.cols
            blocks.append(self._exec_block(node.op, inputs, dict(node.attrs),
                                           rows=rows, cols=cols, like=blk))
        return Layout(anchor.partitioning, tuple(blocks))

    def _lower_reduce(self, node: Node) -> _Result:
        (child,) = node.inputs
        layout = self._eval(child)
        assert isinstance(layout, Layout)
        attrs = dict(node.attrs)
        axis = attrs["axis"]
        if node.partitioning is not LOCAL:  # reduced along the unpartitioned axis: stays put
            blocks = []
            for blk in layout.blocks:
                rows, cols = (blk.rows, (0, 1)) if axis == 1 else ((0, 1), blk.cols)
                blocks.append(self._exec_block("reduce", [blk], attrs,
                                               rows=rows, cols=cols, like=blk))
            return Layout(layout.partitioning, tuple(blocks))
        partials = []
        for blk in layout.blocks:
            block_attrs = dict(attrs)
            if attrs["reduction"] in ("argmax", "argmin"):
                block_attrs["offset"] = blk.rows[0] if axis == 0 else blk.cols[0]
            partials.append(self._exec_partial("reduce_partial", [blk], block_attrs))
        combine_attrs = {k: v for k, v in attrs.items() if k not in ("reduction", "axis")}

        def combine(values: list[Any]) -> Any:
            return combine_partials(attrs["reduction"], values, **combine_attrs)

        return self._combined_later(node.key, partials, combine)

    def _lower_slice(self, node: Node) -> _Result:
        (child,) = node.inputs
        layout = self._eval(child)
        assert isinstance(layout, Layout)
        rows, cols = node.attr("rows"), node.attr("cols")
        along_rows = layout.partitioning is ROW
        wanted = rows if along_rows else cols
        blocks = []
        for blk in layout.blocks:
            span = blk.rows if along_rows else blk.cols
            lo, hi = max(span[0], wanted[0]), min(span[1], wanted[1])
            if lo >= hi:
                continue
            local = (lo - span[0], hi - span[0])
            attrs = {"rows": local, "cols": cols} if along_rows else {"rows": rows, "cols": local}
            new_span = (lo - wanted[0], hi - wanted[0])
            if along_rows:
                new_rows, new_cols = new_span, (0, cols[1] - cols[0])
            else:
                new_rows, new_cols = (0, rows[1] - rows[0]), new_span
            blocks.append(self._exec_block("slice", [blk], attrs,
                                           rows=new_rows, cols=new_cols, like=blk))
        return Layout(layout.partitioning, tuple(blocks))

    def _lower_transpose(self, node: Node) -> _Result:
        layout = self._eval(node.inputs[0])
        assert isinstance(layout, Layout)
        blocks = [
            self._exec_block("transpose", [blk], {}, rows=blk.cols, cols=blk.rows, like=blk)
            for blk in layout.blocks
        ]
        return Layout(COL if layout.partitioning is ROW else ROW, tuple(blocks))

    def _lower_cbind(self, node: Node) -> _Result:
        return self._bind(node, along=ROW)

    def _lower_rbind(self, node: Node) -> _Result:
        return self._bind(node, along=COL)

    def _bind(self, node: Node, along: Partitioning) -> _Result:
        if node.partitioning is LOCAL:
            return self._run_here(node)
        if node.partitioning is not along:  # blocks of the inputs simply follow each other
            blocks: list[Block] = []
            offset = 0
            for child in node.inputs:
                layout = self._eval(child)
                assert isinstance(layout, Layout)
                for blk in layout.blocks:
                    if along is ROW:  # cbind of column blocks
                        cols = (blk.cols[0] + offset, blk.cols[1] + offset)
                        blocks.append(Block(blk.address, blk.rows, cols, blk.var, blk.key))
                    else:
                        rows = (blk.rows[0] + offset, blk.rows[1] + offset)
                        blocks.append(Block(blk.address, rows, blk.cols, blk.var, blk.key))
                offset += child.shape[1] if along is ROW else child.shape[0]
            return Layout(node.partitioning, tuple(blocks))
        anchor = self._eval(anchor_input(list(node.inputs)))
        assert isinstance(anchor, Layout)
        operand_results = []
        for child in node.inputs:
            result = self._eval(child)
            if isinstance(result, Layout) and not result.aligned_with(anchor):
                result = self._local(child)
            operand_results.append((child, result))
        bound = []
        for index, blk in enumerate(anchor.blocks):
            inputs: list[Any] = []
            for _, result in operand_results:
                if isinstance(result, Layout):
                    inputs.append(result.blocks[index])
                elif along is ROW:
                    inputs.append(self._ship_slice(blk.address, result, blk.rows, None))
                else:
                    inputs.append(self._ship_slice(blk.address, result, None, blk.cols))
            if along is ROW:
                rows, cols = blk.rows, (0, node.shape[1])
            else:
                rows, cols = (0, node.shape[0]), blk.cols
            bound.append(self._exec_block(node.op, inputs, {}, rows=rows, cols=cols,
                                          like=blk))
        return Layout(along, tuple(bound))

    # ----- request building
    def _exec_block(
        self, op: str, inputs: list[Any], attrs: dict[str, Any],
        rows: tuple[int, int], cols: tuple[int, int], like: Block,
    ) -> Block:
        """Queue ``op`` at ``like``'s worker; the result is a block named by its lineage key."""
        var = self._exec(like.address, op, inputs, attrs)
        return Block(like.address, rows, cols, var, var)

    def _exec_partial(self, op: str, inputs: list[Any], attrs: dict[str, Any]) -> PendingResult:
        """Queue ``op`` at the worker of the first federated input and a GET of its result."""
        address = next(item.address for item in inputs if isinstance(item, Block))
        var = self._exec(address, op, inputs, attrs)
        return self.batcher.add(address, Get(var))

    def _exec(self, address: str, op: str, inputs: list[Any], attrs: dict[str, Any]) -> str:
        operands: list[Operand] = []
        keys = []
        for item in inputs:
            if isinstance(item, Block):
                operands.append(item.var)
                keys.append(item.key)
            else:
                operand, key = item
                operands.append(operand)
                keys.append(key)
        var = lineage_key(op, tuple(sorted(attrs.items())), tuple(keys))
        if (address, var) not in self._created:
            self._created.add((address, var))
            self.batcher.add(address, ExecInst(op, tuple(operands), var, attrs))
        return var

    def _ship(self, address: str, local: _Local) -> tuple[Operand, str]:
        """A local value as an EXEC operand: inline if small, else PUT once to this worker."""
        return self._ship_value(address, local.value, local.key)

    def _ship_slice(
        self, address: str, local: _Local, rows: tuple[int, int] | None,
        cols: tuple[int, int] | None,
    ) -> tuple[Operand, str]:
        value = local.value
        if rows is not None:
            value = value[rows[0]:rows[1]]
        if cols is not None:
            value = value[:, cols[0]:cols[1]]
        return self._ship_value(address, value, lineage_key("slice", local.key, rows, cols))

    def _ship_aligned(
        self, blk: Block, local: _Local, shape: tuple[int, ...], along_rows: bool
    ) -> tuple[Operand, str]:
        """The part of a local elementwise operand that meets ``blk`` under broadcasting."""
        if not shape:
            return self._ship_value(blk.address, local.value, local.key)
        nrows, ncols = shape
        if along_rows:
            return self._ship_slice(blk.address, local, blk.rows if nrows > 1 else None, None)
        return self._ship_slice(blk.address, local, None, blk.cols if ncols > 1 else None)

    def _ship_value(self, address: str, value: Any, key: str) -> tuple[Operand, str]:
        nbytes = value.data.nbytes if sp.issparse(value) else np.asarray(value).nbytes
        if np.ndim(value) == 0 or nbytes <= INLINE_LIMIT:
            return Literal(value), key
        if (address, key) not in self._created:
            self._created.add((address, key))
            self.batcher.add(address, Put(key, value))
        return key, key

    # ----- combining at the coordinator
    def _combine_sum(self, node: Node, partials: list[PendingResult]) -> _Local:
        def add(values: list[Any]) -> Any:
            total = functools.reduce(lambda a, b: a + b, values)
            return sp.csr_array(total) if sp.issparse(total) else total

        return self._combined_later(node.key, partials, add)

    def _gather(self, layout: Layout, key: str) -> _Local:
        pending = [self.batcher.add(blk.address, Get(blk.var)) for blk in layout.blocks]
        stack = "rbind" if layout.partitioning is ROW else "cbind"
        return self._combined_later(key, pending, lambda values: run_kernel(stack, values, {}))

    def _combined_later(
        self, key: str, partials: list[PendingResult], combine: Callable[[list[Any]], Any]
    ) -> _Local:
        """A value combined from queued partials when it is first needed."""

        def resolve() -> Any:
            if not all(p.done for p in partials):
                self.batcher.flush()  # sends whatever else is queued, too
            return combine([p.value for p in partials])

        return _Local(None, key, resolve)


def _inner_aligned(a: Layout, b: Layout) -> bool:
    """Whether A's column blocks and B's row blocks cover the same ranges at the same workers."""
    return len(a.blocks) == len(b.blocks) and all(
        x.address == y.address and x.cols == y.rows for x, y in zip(a.blocks, b.blocks)
    )
