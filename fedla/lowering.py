"""Lowering: plan nodes -> ``PhysicalPlan``, without talking to any site.

Every operation on a partitioned value becomes per-site kernel steps plus a coordinator step:
blockwise ops run on aligned blocks where they are; reductions return one partial per block and
``Combine`` folds them; contractions return products that are summed; layout ops cut or relabel
blocks. Operands that are not where they are needed move explicitly: coordinator values by
``Broadcast`` (only the rows or columns a block needs), federated values split differently by
``Repartition`` (only the rows or columns not already at the right site), and federated values
needed whole at the coordinator by ``Gather``.

Stages are scheduled as early as possible: a site step runs in the first stage where its block
inputs exist (same stage, earlier step, is fine) and its coordinator inputs were combined (the
stage after). Independent aggregates therefore share a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedla import ops
from fedla.ops import anchor_input
from fedla.physical_plan import (
    Broadcast,
    Combine,
    Compute,
    CoordinatorStep,
    CoordSlice,
    Gather,
    KernelStep,
    Move,
    PhysicalPlan,
    Repartition,
    Return,
    Stage,
    ValueId,
)
from fedla.plan import Block, Layout, Node, Partitioning, Range, SiteId
from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.lineage import lineage_key

ROW, COL, LOCAL = Partitioning.ROW, Partitioning.COL, Partitioning.LOCAL
BEFORE_ANY_STAGE = -1


@dataclass(frozen=True)
class AtSites:
    """A value whose blocks live at sites, usable from stage ``ready`` on."""

    layout: Layout
    ready: int


@dataclass(frozen=True)
class AtCoordinator:
    """A coordinator value, known after stage ``ready`` (sites can use it from ``ready + 1``)."""

    value: ValueId
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    ready: int


Lowered = AtSites | AtCoordinator


KEPT_PREFIX = "realigned."
"""Names of variables a plan leaves at a site for later plans (realigned federated inputs)."""

RealignmentKey = tuple[str, tuple[tuple[SiteId, Range, Range], ...]]
"""A federated input's lineage key and the blocks (site, rows, cols) it was realigned to."""


def lower(roots: list[Node], namespace: str = "",
          realigned: Mapping[RealignmentKey, Layout] | None = None) -> PhysicalPlan:
    """The physical plan computing every root at the coordinator.

    ``namespace`` prefixes the names of the variables the plan creates at sites, so that plans
    run concurrently by one tenant never name each other's intermediates. ``realigned`` holds
    realignments of federated inputs that earlier plans kept at the sites; a plan that realigns
    a federated input anew keeps the result too (``PhysicalPlan.kept``), so an iterative
    algorithm over labels split differently from its features moves their rows once.
    """
    return _Lowering(namespace, realigned or {}).run(roots)


def lower_alignment(node: Node, anchor: Layout, namespace: str = "",
                    realigned: Mapping[RealignmentKey, Layout] | None = None
                    ) -> tuple[PhysicalPlan, Layout]:
    """The plan that splits federated ``node`` along ``anchor``'s row blocks, and that split.

    Rows already at the right site stay; the plan is empty when ``node`` is split like
    ``anchor`` already (or an earlier plan kept that realignment).
    """
    lowering = _Lowering(namespace, realigned or {})
    where = lowering._aligned_operand(node, anchor, along_rows=True)
    if not isinstance(where, AtSites):
        raise ValueError(f"{node.op} of shape {node.shape} cannot be split along {anchor}")
    return lowering.run([]), where.layout


class _Lowering:
    def __init__(self, namespace: str, realigned: Mapping[RealignmentKey, Layout]) -> None:
        self.namespace = namespace
        self.realigned = realigned
        self.kept: list[tuple[RealignmentKey, Layout]] = []
        self.constants: dict[ValueId, Any] = {}
        self.prologue: list[CoordinatorStep] = []
        self.stages: list[Stage] = []
        self.created: dict[SiteId, list[str]] = {}
        self.labels: dict[str, str] = {}
        self._memo: dict[str, Lowered] = {}
        self._gathered: dict[str, AtCoordinator] = {}
        self._created_in: dict[tuple[SiteId, str], int] = {}
        self._names: dict[tuple[Any, ...], str] = {}
        self._value_info: dict[ValueId, tuple[tuple[int, ...], int]] = {}
        self._counter = 0
        self._leaves = 0

    def run(self, roots: list[Node]) -> PhysicalPlan:
        outputs = [self.at_coordinator(root).value for root in roots]
        self._mark_drops()
        return PhysicalPlan(self.constants, self.prologue, self.stages, outputs, self.created,
                            self.labels, self.kept)

    def _mark_drops(self) -> None:
        """Drop each variable the plan made at a site after the last stage that uses it there."""
        last_use: dict[tuple[SiteId, str], int] = {}
        for number, stage in enumerate(self.stages):
            for broadcast in stage.broadcasts:
                last_use[(broadcast.site, broadcast.var)] = number
            for site, program in stage.sites.items():
                for step in program.steps:
                    for var in (*step.args, step.output):
                        last_use[(site, var)] = number
                for ret in program.returns:
                    last_use[(site, ret.var)] = number
        for site, names in self.created.items():
            for var in names:
                number = last_use.get((site, var))
                if number is not None:
                    self.stages[number].drops.setdefault(site, []).append(var)

    # ----- plumbing
    def _new_id(self, prefix: str) -> ValueId:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def stage(self, number: int) -> Stage:
        while len(self.stages) <= number:
            self.stages.append(Stage())
        return self.stages[number]

    def _coordinator_step(self, ready: int, step: CoordinatorStep) -> None:
        if ready == BEFORE_ANY_STAGE:
            self.prologue.append(step)
        else:
            self.stage(ready).coordinator.append(step)

    def _name(self, identity: tuple[Any, ...]) -> str:
        """The variable naming the result of ``identity`` (kernel, attributes, inputs).

        Equal identities get one name, so identical work is queued once; names are short and
        unique to this plan (``namespace`` + a counter) rather than hashes, which would cost more
        to compute than the rest of lowering.
        """
        name = self._names.get(identity)
        if name is None:
            name = self._names[identity] = f"{self.namespace}{len(self._names)}"
        return name

    def _emit(self, stage: int, site: SiteId, kernel: str, args: list[Any],
              attrs: dict[str, Any], node: Node | None = None, name: str | None = None) -> str:
        """Queue ``kernel`` at ``site`` in ``stage``; returns its output variable.

        Equal steps (kernel, attributes, inputs) get one variable, so the same work is queued
        once; a step computing a block of ``node`` stands for its kernel and attributes by the
        node's key, which is cheaper than writing large attributes (fused programs) per block.

        ``args`` are blocks at the site or coordinator slices (broadcast to the site first).
        ``name`` gives the output a name of its own that outlives the plan (it is not among the
        variables the plan drops afterwards).
        """
        names: list[str] = []
        keys: list[str] = []
        for arg in args:
            if isinstance(arg, Block):
                names.append(arg.var)
                keys.append(arg.key)
            else:
                names.append(self._broadcast(stage, site, arg))
                keys.append(arg.key)
        what = node.key if node is not None else repr(sorted(attrs.items()))
        var = name or self._name((kernel, what, tuple(keys)))
        if self._first_use(stage, site, var, keep=name is not None):
            step = KernelStep(kernel, tuple(names), attrs, var)
            self.stage(stage).program(site).steps.append(step)
        return var

    def _broadcast(self, stage: int, site: SiteId, source: CoordSlice) -> str:
        # Per stage: a small value travels inline with the steps of its own stage only.
        var = self._name(("broadcast", source.key, stage))
        if self._first_use(stage, site, var):
            nbytes = self._slice_bytes(source)
            self.stage(stage).broadcasts.append(Broadcast(source, site, var, nbytes))
            self.labels[var] = f"bcast:{source.value}"
        return var

    def _first_use(self, stage: int, site: SiteId, var: str, keep: bool = False) -> bool:
        """Whether ``var`` must be made at ``site`` in ``stage``.

        A variable made in a later stage is made again in this earlier one (the later step is
        then a lineage-cache hit at the site).
        """
        made_in = self._created_in.get((site, var))
        if made_in is not None and made_in <= stage:
            return False
        self._created_in[(site, var)] = stage
        if made_in is None and not keep:
            self.created.setdefault(site, []).append(var)
        return True

    def _return(self, stage: int, site: SiteId, var: str, nbytes: int) -> ValueId:
        partial = self._new_id("p")
        self.stage(stage).program(site).returns.append(Return(var, partial, nbytes))
        return partial

    def _slice_bytes(self, source: CoordSlice) -> int:
        info = self._value_info[source.value]
        shape, itemsize = info
        if not shape:
            return itemsize
        rows = shape[0] if source.rows is None else source.rows[1] - source.rows[0]
        cols = shape[1] if source.cols is None else source.cols[1] - source.cols[0]
        return rows * cols * itemsize

    def _coord(self, value: ValueId, node: Node, ready: int,
               shape: tuple[int, ...] | None = None) -> AtCoordinator:
        shape = node.shape if shape is None else shape
        self._value_info[value] = (shape, node.dtype.itemsize)
        return AtCoordinator(value, node.key, shape, node.dtype, ready)

    # ----- values where they are needed
    def lowered(self, node: Node) -> Lowered:
        if node.key not in self._memo:
            self._memo[node.key] = self._lower(node)
        return self._memo[node.key]

    def at_sites(self, node: Node) -> AtSites:
        result = self.lowered(node)
        if not isinstance(result, AtSites):
            raise InvalidArgumentError(f"internal: {node.op} was expected to stay at the sites")
        return result

    def at_coordinator(self, node: Node) -> AtCoordinator:
        result = self.lowered(node)
        if isinstance(result, AtCoordinator):
            return result
        if node.key not in self._gathered:
            self._gathered[node.key] = self._gather(node, result)
        return self._gathered[node.key]

    def _gather(self, node: Node, where: AtSites) -> AtCoordinator:
        layout = where.layout
        partials = tuple(
            self._return(where.ready, blk.site, blk.var, _dense_bytes(blk.shape, node.dtype))
            for blk in layout.blocks
        )
        output = self._new_id("v")
        axis = 0 if layout.partitioning is ROW else 1
        self.stage(where.ready).coordinator.append(
            Gather(output, partials, axis, _dense_bytes(node.shape, node.dtype))
        )
        return self._coord(output, node, where.ready)

    def _operand_slice(self, value: AtCoordinator, rows: Range | None,
                       cols: Range | None) -> CoordSlice:
        return CoordSlice(value.value, rows, cols, f"{value.key}[{rows}, {cols}]")

    # ----- dispatch
    def _lower(self, node: Node) -> Lowered:
        if node.op == "local":
            value = self._new_id("c")
            self.constants[value] = node.value
            return self._coord(value, node, BEFORE_ANY_STAGE)
        if node.op == "federated":
            assert node.layout is not None
            self._label_leaf(node.layout)
            return AtSites(node.layout, 0)
        if not any(child.federated for child in node.inputs) or not node.federated and \
                ops.spec(node.op).lowering in ("blockwise", "layout"):
            return self._compute_here(node)
        kind = ops.spec(node.op).lowering
        if kind == "blockwise":
            return self._blockwise(node)
        if kind == "reduction":
            return self._reduction(node)
        return getattr(self, f"_lower_{node.op}")(node)

    def _label_leaf(self, layout: Layout) -> None:
        """Name the blocks of the plan's n-th federated input ``F<n>.<block>[rows, cols]``."""
        self._leaves += 1
        for index, blk in enumerate(layout.blocks):
            self.labels.setdefault(blk.var, f"F{self._leaves}.{index}[{blk.rows[0]}:{blk.rows[1]}, "
                                            f"{blk.cols[0]}:{blk.cols[1]}]")

    def _compute_here(self, node: Node) -> AtCoordinator:
        """Run ``node``'s kernel at the coordinator, gathering any federated input."""
        inputs = [self.at_coordinator(child) for child in node.inputs]
        ready = max([BEFORE_ANY_STAGE, *(i.ready for i in inputs)])
        output = self._new_id("v")
        self._coordinator_step(ready, Compute(output, ops.spec(node.op).kernel,
                                              tuple(i.value for i in inputs), dict(node.attrs),
                                              node.shape, node.key))
        return self._coord(output, node, ready)

    # ----- blockwise
    def _blockwise(self, node: Node) -> AtSites:
        anchor = self.at_sites(anchor_input(list(node.inputs)))
        along_rows = anchor.layout.partitioning is ROW
        operands = [self._aligned_operand(child, anchor.layout, along_rows)
                    for child in node.inputs]
        stage = _stage_after(operands, anchor.ready)
        blocks = []
        for index, blk in enumerate(anchor.layout.blocks):
            args = [_operand_for(operand, index, blk, child.shape, along_rows, self)
                    for operand, child in zip(operands, node.inputs)]
            rows, cols = (blk.rows, (0, node.shape[1])) if along_rows else \
                ((0, node.shape[0]), blk.cols)
            var = self._emit(stage, blk.site, ops.spec(node.op).kernel, args, dict(node.attrs),
                             node)
            blocks.append(Block(blk.site, rows, cols, var, var))
        return AtSites(Layout(anchor.layout.partitioning, tuple(blocks)), stage)

    def _aligned_operand(self, child: Node, anchor: Layout, along_rows: bool) -> Lowered:
        """``child`` as an operand of per-block work over ``anchor``: aligned blocks or a value."""
        if not child.federated:
            return self.at_coordinator(child)
        where = self.at_sites(child)
        if where.layout.aligned_with(anchor):
            return where
        axis = 0 if along_rows else 1
        anchor_length = anchor.blocks[-1].span(anchor.partitioning)[1]
        if child.shape[axis] != anchor_length:  # broadcast along the split axis: needed whole
            return self.at_coordinator(child)
        targets = [
            (blk.site, blk.rows, (0, child.shape[1])) if along_rows
            else (blk.site, (0, child.shape[0]), blk.cols)
            for blk in anchor.blocks
        ]
        return self._realign(child, where, targets, anchor.partitioning)

    def _realign(self, node: Node, where: AtSites, targets: list[tuple[SiteId, Range, Range]],
                 partitioning: Partitioning) -> AtSites:
        """``node`` split as ``targets``; only the parts not already at a target's site move."""
        keep = node.op == "federated"
        key: RealignmentKey = (node.key, tuple(targets))
        if keep and key in self.realigned:
            return AtSites(self.realigned[key], where.ready)
        layout = where.layout
        moves: list[Move] = []
        assemblies = []
        for site, rows, cols in targets:
            pieces: list[tuple[Any, list[int]]] = []
            for blk in layout.blocks:
                lo_r, hi_r = max(rows[0], blk.rows[0]), min(rows[1], blk.rows[1])
                lo_c, hi_c = max(cols[0], blk.cols[0]), min(cols[1], blk.cols[1])
                if lo_r >= hi_r or lo_c >= hi_c:
                    continue
                offset = [lo_r - rows[0], lo_c - cols[0]]
                whole = (lo_r, hi_r) == blk.rows and (lo_c, hi_c) == blk.cols
                cut = {"rows": (lo_r - blk.rows[0], hi_r - blk.rows[0]),
                       "cols": (lo_c - blk.cols[0], hi_c - blk.cols[0])}
                if blk.site == site:
                    piece: Any = blk if whole else self._cut(where.ready, blk, cut)
                    pieces.append((piece, offset))
                    continue
                var = blk.var if whole else self._emit(where.ready, blk.site, "slice", [blk], cut)
                nbytes = _dense_bytes((hi_r - lo_r, hi_c - lo_c), node.dtype)
                partial = self._return(where.ready, blk.site, var, nbytes)
                moves.append(Move(blk.site, site, (lo_r, hi_r), (lo_c, hi_c), partial, nbytes))
                self._value_info[partial] = ((hi_r - lo_r, hi_c - lo_c), node.dtype.itemsize)
                source = CoordSlice(partial, key=f"{blk.key}[{cut}]")
                pieces.append((source, offset))
            assemblies.append((site, rows, cols, pieces))
        if moves:
            self.stage(where.ready).coordinator.append(
                Repartition(f"{node.op} {node.shape[0]}x{node.shape[1]}", tuple(moves))
            )
        stage = where.ready + 1 if moves else where.ready
        blocks = []
        for site, rows, cols, pieces in assemblies:
            piece = pieces[0][0]
            if len(pieces) == 1 and isinstance(piece, Block) and (not keep or piece.key in {
                    blk.key for blk in layout.blocks}):
                blocks.append(Block(site, rows, cols, piece.var, piece.key))
                continue
            attrs: dict[str, Any] = {"shape": [rows[1] - rows[0], cols[1] - cols[0]],
                                     "offsets": [offset for _, offset in pieces]}
            kept_as = f"{KEPT_PREFIX}{lineage_key(key, site, rows, cols)}" if keep else None
            var = self._emit(stage, site, "assemble", [piece for piece, _ in pieces], attrs,
                             name=kept_as)
            blocks.append(Block(site, rows, cols, var, var))
        result = Layout(partitioning, tuple(blocks))
        if keep:
            self.kept.append((key, result))
        return AtSites(result, stage)

    def _cut(self, stage: int, blk: Block, attrs: dict[str, Any]) -> Block:
        var = self._emit(stage, blk.site, "slice", [blk], attrs)
        return Block(blk.site, blk.rows, blk.cols, var, var)

    # ----- reductions
    def _reduction(self, node: Node) -> Lowered:
        (child,) = node.inputs
        where = self.at_sites(child)
        attrs = dict(node.attrs)
        axis = attrs["axis"]
        if node.federated:  # reduced along the unsplit axis: one result per block, in place
            blocks = []
            for blk in where.layout.blocks:
                rows, cols = (blk.rows, (0, 1)) if axis == 1 else ((0, 1), blk.cols)
                var = self._emit(where.ready, blk.site, "reduce", [blk], attrs)
                blocks.append(Block(blk.site, rows, cols, var, var))
            return AtSites(Layout(where.layout.partitioning, tuple(blocks)), where.ready)
        partials = []
        for blk in where.layout.blocks:
            block_attrs = dict(attrs)
            if attrs["reduction"] in ("argmax", "argmin"):
                block_attrs["offset"] = blk.rows[0] if axis == 0 else blk.cols[0]
            var = self._emit(where.ready, blk.site, "reduce_partial", [blk], block_attrs)
            partials.append(self._return(where.ready, blk.site, var,
                                         _dense_bytes(node.shape, node.dtype) * 3))
        combine_attrs = {k: v for k, v in attrs.items() if k not in ("reduction", "axis")}
        return self._combine(node, where.ready, partials, attrs["reduction"], combine_attrs)

    def _combine(self, node: Node, ready: int, partials: list[ValueId], how: str,
                 attrs: dict[str, Any]) -> AtCoordinator:
        output = self._new_id("v")
        self.stage(ready).coordinator.append(
            Combine(output, tuple(partials), how, attrs, _dense_bytes(node.shape, node.dtype),
                    node.key)
        )
        return self._coord(output, node, ready)

    def _sum_of_products(self, node: Node, stage: int, work: list[tuple[SiteId, str, list[Any],
                                                                         dict[str, Any]]]
                         ) -> AtCoordinator:
        partials = []
        for site, kernel, args, attrs in work:
            var = self._emit(stage, site, kernel, args, attrs)
            partials.append(self._return(stage, site, var, _dense_bytes(node.shape, node.dtype)))
        return self._combine(node, stage, partials, "add", {})

    # ----- contractions
    def _lower_matmul(self, node: Node) -> Lowered:
        left, right = node.inputs
        if left.federated and right.federated:
            a = self.at_sites(left)
            if a.layout.partitioning is COL and right.partitioning is ROW:
                # A's column blocks meet B's row blocks: B's rows realigned to A's columns.
                b = self._aligned_rows(right, a.layout)
                stage = max(a.ready, b.ready)
                return self._sum_of_products(node, stage, [
                    (blk_a.site, "matmul", [blk_a, blk_b], {})
                    for blk_a, blk_b in zip(a.layout.blocks, b.layout.blocks)
                ])
            return self._matmul_with_local(node, a, self.at_coordinator(right), federated_left=True)
        if left.federated:
            return self._matmul_with_local(node, self.at_sites(left), self.at_coordinator(right),
                                           federated_left=True)
        return self._matmul_with_local(node, self.at_sites(right), self.at_coordinator(left),
                                       federated_left=False)

    def _aligned_rows(self, node: Node, columns_of: Layout) -> AtSites:
        where = self.at_sites(node)
        targets = [(blk.site, blk.cols, (0, node.shape[1])) for blk in columns_of.blocks]
        current = [(blk.site, blk.rows, blk.cols) for blk in where.layout.blocks]
        if where.layout.partitioning is ROW and current == targets:
            return where
        return self._realign(node, where, targets, ROW)

    def _matmul_with_local(self, node: Node, fed: AtSites, local: AtCoordinator,
                           federated_left: bool) -> Lowered:
        layout = fed.layout
        stage = max(fed.ready, local.ready + 1)
        if federated_left and layout.partitioning is ROW:  # X @ B: row blocks of the result
            blocks = []
            for blk in layout.blocks:
                var = self._emit(stage, blk.site, "matmul",
                                 [blk, self._operand_slice(local, None, None)], {})
                blocks.append(Block(blk.site, blk.rows, (0, node.shape[1]), var, var))
            return AtSites(Layout(ROW, tuple(blocks)), stage)
        if not federated_left and layout.partitioning is COL:  # A @ X: column blocks
            blocks = []
            for blk in layout.blocks:
                var = self._emit(stage, blk.site, "matmul",
                                 [self._operand_slice(local, None, None), blk], {})
                blocks.append(Block(blk.site, (0, node.shape[0]), blk.cols, var, var))
            return AtSites(Layout(COL, tuple(blocks)), stage)
        work: list[tuple[SiteId, str, list[Any], dict[str, Any]]]
        if federated_left:  # column blocks of X times the matching rows of B, summed
            work = [(blk.site, "matmul", [blk, self._operand_slice(local, blk.cols, None)], {})
                    for blk in layout.blocks]
        else:  # the matching columns of A times row blocks of X, summed
            work = [(blk.site, "matmul", [self._operand_slice(local, None, blk.rows), blk], {})
                    for blk in layout.blocks]
        return self._sum_of_products(node, stage, work)

    def _lower_tsmm(self, node: Node) -> Lowered:
        (x,) = node.inputs
        where = self.at_sites(x)
        if where.layout.partitioning is COL:
            # Every pair of column blocks meets: realign X to row blocks over the same sites.
            sites = where.layout.sites
            bounds = np.linspace(0, x.shape[0], len(sites) + 1).round().astype(int)
            targets = [(site, (int(lo), int(hi)), (0, x.shape[1]))
                       for site, lo, hi in zip(sites, bounds[:-1], bounds[1:]) if hi > lo]
            where = self._realign(x, where, targets, ROW)
        return self._sum_of_products(node, where.ready, [
            (blk.site, "tsmm", [blk], dict(node.attrs)) for blk in where.layout.blocks
        ])

    def _lower_mmchain(self, node: Node) -> Lowered:
        x, *rest = node.inputs
        where = self.at_sites(x)
        operands = [self._aligned_operand(child, where.layout, along_rows=True)
                    for child in rest]
        stage = _stage_after(operands, where.ready)
        work: list[tuple[SiteId, str, list[Any], dict[str, Any]]] = []
        for index, blk in enumerate(where.layout.blocks):
            args: list[Any] = [blk]
            for position, operand in enumerate(operands):
                if isinstance(operand, AtSites):
                    args.append(operand.layout.blocks[index])
                elif position == 0:  # v: the same for every block
                    args.append(self._operand_slice(operand, None, None))
                else:  # w: this block's rows
                    args.append(self._operand_slice(operand, blk.rows, None))
            work.append((blk.site, "mmchain", args, {}))
        return self._sum_of_products(node, stage, work)

    # ----- layout
    def _lower_slice(self, node: Node) -> Lowered:
        (child,) = node.inputs
        where = self.at_sites(child)
        rows, cols = node.attr("rows"), node.attr("cols")
        partitioning = where.layout.partitioning
        wanted = rows if partitioning is ROW else cols
        blocks = []
        for blk in where.layout.blocks:
            span = blk.span(partitioning)
            lo, hi = max(span[0], wanted[0]), min(span[1], wanted[1])
            if lo >= hi:
                continue
            local = (lo - span[0], hi - span[0])
            if partitioning is ROW:
                attrs = {"rows": local, "cols": cols}
                new_rows, new_cols = (lo - wanted[0], hi - wanted[0]), (0, cols[1] - cols[0])
            else:
                attrs = {"rows": rows, "cols": local}
                new_rows, new_cols = (0, rows[1] - rows[0]), (lo - wanted[0], hi - wanted[0])
            var = self._emit(where.ready, blk.site, "slice", [blk], attrs)
            blocks.append(Block(blk.site, new_rows, new_cols, var, var))
        return AtSites(Layout(partitioning, tuple(blocks)), where.ready)

    def _lower_transpose(self, node: Node) -> Lowered:
        where = self.at_sites(node.inputs[0])
        blocks = []
        for blk in where.layout.blocks:
            var = self._emit(where.ready, blk.site, "transpose", [blk], {})
            blocks.append(Block(blk.site, blk.cols, blk.rows, var, var))
        flipped = COL if where.layout.partitioning is ROW else ROW
        return AtSites(Layout(flipped, tuple(blocks)), where.ready)

    def _lower_cbind(self, node: Node) -> Lowered:
        return self._bind(node, along=ROW)

    def _lower_rbind(self, node: Node) -> Lowered:
        return self._bind(node, along=COL)

    def _bind(self, node: Node, along: Partitioning) -> Lowered:
        if node.partitioning is not along:  # blocks of the inputs simply follow each other
            blocks: list[Block] = []
            offset, ready = 0, 0
            for child in node.inputs:
                where = self.at_sites(child)
                ready = max(ready, where.ready)
                for blk in where.layout.blocks:
                    if along is ROW:  # cbind of column blocks
                        cols = (blk.cols[0] + offset, blk.cols[1] + offset)
                        blocks.append(Block(blk.site, blk.rows, cols, blk.var, blk.key))
                    else:
                        rows = (blk.rows[0] + offset, blk.rows[1] + offset)
                        blocks.append(Block(blk.site, rows, blk.cols, blk.var, blk.key))
                offset += child.shape[1] if along is ROW else child.shape[0]
            return AtSites(Layout(node.partitioning, tuple(blocks)), ready)
        anchor = self.at_sites(anchor_input(list(node.inputs)))
        along_rows = along is ROW
        operands = [self._aligned_operand(child, anchor.layout, along_rows)
                    for child in node.inputs]
        stage = _stage_after(operands, anchor.ready)
        blocks = []
        for index, blk in enumerate(anchor.layout.blocks):
            args: list[Any] = []
            for operand in operands:
                if isinstance(operand, AtSites):
                    args.append(operand.layout.blocks[index])
                elif along_rows:
                    args.append(self._operand_slice(operand, blk.rows, None))
                else:
                    args.append(self._operand_slice(operand, None, blk.cols))
            rows, cols = (blk.rows, (0, node.shape[1])) if along_rows else \
                ((0, node.shape[0]), blk.cols)
            var = self._emit(stage, blk.site, node.op, args, {})
            blocks.append(Block(blk.site, rows, cols, var, var))
        return AtSites(Layout(along, tuple(blocks)), stage)


def _stage_after(operands: list[Lowered], ready: int) -> int:
    """The first stage in which every operand can be used at a site."""
    stage = ready
    for operand in operands:
        stage = max(stage, operand.ready if isinstance(operand, AtSites) else operand.ready + 1)
    return stage


def _operand_for(operand: Lowered, index: int, blk: Block, shape: tuple[int, ...],
                 along_rows: bool, lowering: _Lowering) -> Any:
    """The argument of block ``index``'s step: its aligned block, or the part of a value it meets.

    Under broadcasting, a coordinator operand with as many rows (columns) as the whole result is
    cut to the block's rows (columns); a single row, column or scalar goes whole.
    """
    if isinstance(operand, AtSites):
        return operand.layout.blocks[index]
    if not shape:
        return lowering._operand_slice(operand, None, None)
    nrows, ncols = shape
    if along_rows:
        return lowering._operand_slice(operand, blk.rows if nrows > 1 else None, None)
    return lowering._operand_slice(operand, None, blk.cols if ncols > 1 else None)


def _dense_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize


def slice_value(value: Any, rows: Range | None, cols: Range | None) -> Any:
    """The part ``[rows, cols]`` of a coordinator value (ndarray, CSR or scalar)."""
    if np.ndim(value) == 0:
        return value
    if rows is not None:
        value = value[rows[0]:rows[1]]
    if cols is not None:
        value = value[:, cols[0]:cols[1]]
    return sp.csr_array(value) if sp.issparse(value) else value
