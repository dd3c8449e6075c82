"""Evaluating plans: rewrite, reuse cached aggregates, lower, then run stage by stage.

The executor runs each stage's site programs; the coordinator steps between stages (combine
partials, gather blocks, local kernels) run here. Each evaluation has its own values and its own
variable namespace at the sites, so several threads can share one ``Context``.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fedla import ops
from fedla.lowering import lower, lower_alignment
from fedla.physical_plan import (
    FOLDED,
    Combine,
    Compute,
    CoordinatorStep,
    Gather,
    PhysicalPlan,
    ValueId,
)
from fedla.plan import Layout, Node, Partitioning
from fedla.privacy_check import check_plan
from fedla.rewrites import rewrite as rewrite_plans
from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.kernels import run_kernel
from fedla.runtime.kernels.reductions import combine_partials
from fedla.runtime.lineage_cache import MISSING, LineageCache

if TYPE_CHECKING:
    from fedla.context import Context


def physical_plan(roots: list[Node], context: Context | None, rewrite: bool = True
                  ) -> PhysicalPlan:
    """The physical plan that would compute ``roots`` now (cached aggregates count as known)."""
    if rewrite:
        roots = rewrite_plans(roots)
    realigned = None
    if context is not None:
        context.ensure_open()
        roots = _with_cached_results(roots, context.results)
        realigned = context.realignments()
    return lower(roots, namespace=f"t{uuid.uuid4().hex[:8]}.", realigned=realigned)


def explain(roots: list[Node], context: Context | None, rewrite: bool = True) -> str:
    """The text of ``physical_plan(roots, ...)``, as ``Matrix.explain`` prints it."""
    plan = physical_plan(roots, context, rewrite)
    return plan.describe(context.executor.stage_note if context is not None else None)


def evaluate(roots: list[Node], context: Context | None, rewrite: bool = True) -> list[Any]:
    """Compute every root: numpy arrays, scipy CSR arrays or scalars."""
    plan = physical_plan(roots, context, rewrite)
    values = _run(plan, context)
    return [values[output] for output in plan.outputs]


def realign(node: Node, anchor: Layout, context: Context) -> Layout:
    """Split federated input ``node`` along ``anchor``'s row blocks at the sites; its layout.

    Only rows that are not at the right site move (through the coordinator, subject to the
    privacy check); the result stays at the sites while ``node`` is reachable.
    """
    context.ensure_open()
    plan, layout = lower_alignment(node, anchor, namespace=f"t{uuid.uuid4().hex[:8]}.",
                                   realigned=context.realignments())
    _run(plan, context)
    return layout


def _run(plan: PhysicalPlan, context: Context | None) -> dict[ValueId, Any]:
    values: dict[ValueId, Any] = dict(plan.constants)
    for step in plan.prologue:
        values[_output(step)] = _run_step(step, values)
    if plan.round_trips and context is None:
        raise InvalidArgumentError("a federated plan needs its Context")
    if context is not None:
        check_plan(plan, context.leaf_privacy)  # refuse before any site work
    done = False
    try:
        for stage in plan.stages:
            if stage.sites or stage.broadcasts:
                assert context is not None
                values.update(context.executor.run(stage, values))
            for step in stage.coordinator:
                value = _run_step(step, values)
                if value is None:
                    continue
                values[_output(step)] = value
                key = getattr(step, "node_key", None)
                if key is not None and context is not None:
                    context.results.put(key, value)
        done = True
    finally:
        if context is not None:
            _release(context, plan, done)
    return values


def _release(context: Context, plan: PhysicalPlan, done: bool) -> None:
    """Drop the plan's intermediates; keep its realignments if it ran to the end."""
    context.keep_realignments(plan.kept, done)
    if plan.created:
        context.executor.release(plan.created)


def _output(step: CoordinatorStep) -> ValueId:
    return step.output  # type: ignore[union-attr]


def _run_step(step: CoordinatorStep, values: dict[ValueId, Any]) -> Any:
    if isinstance(step, Combine):
        partials = [values[p] for p in step.partials if values[p] is not FOLDED]
        if step.how == "add":
            total = functools.reduce(lambda a, b: a + b, partials)
            return sp.csr_array(total) if sp.issparse(total) else total
        return combine_partials(step.how, partials, **step.attrs)
    if isinstance(step, Gather):
        blocks = [values[p] for p in step.partials]
        return run_kernel("rbind" if step.axis == 0 else "cbind", blocks, {})
    if isinstance(step, Compute):
        return _compute(step, [values[v] for v in step.inputs])
    return None  # Repartition: its pieces were returned by the stage and are broadcast next


def _compute(step: Compute, inputs: list[Any]) -> Any:
    """Run a kernel at the coordinator.

    Blockwise kernels need a 2-D block among their operands, so an operation on scalars only
    (``X.sum() / 2``) runs on 1x1 blocks and is unwrapped to a numpy scalar.
    """
    if step.shape == () and ops.OPS[step.kernel].lowering == "blockwise":
        blocks = [np.reshape(value, (1, 1)) for value in inputs]
        return np.asarray(run_kernel(step.kernel, blocks, step.attrs))[0, 0]
    return run_kernel(step.kernel, inputs, step.attrs)


def _with_cached_results(roots: list[Node], cache: LineageCache) -> list[Node]:
    """The plans with every aggregate this Context computed before replaced by its value.

    Lineage keys name content, so a key's value never changes.
    """
    memo: dict[str, Node] = {}

    def visit(node: Node) -> Node:
        if node.key in memo:
            return memo[node.key]
        result = node
        if node.partitioning is Partitioning.LOCAL and node.op != "local" and node.inputs:
            cached = cache.get(node.key)
            if cached is not MISSING:
                result = ops.local_leaf(cached, node.key)
        if result is node:
            children = tuple(visit(child) for child in node.inputs)
            if any(new is not old for new, old in zip(children, node.inputs)):
                result = dataclasses.replace(node, inputs=children)
        memo[node.key] = result
        return result

    return [visit(root) for root in roots]
