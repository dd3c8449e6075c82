"""Plan rewrites: cheaper plans with the same values, applied before a plan is lowered.

Each rule looks at one node whose inputs were already rewritten and returns a replacement or
``None``. A replacement keeps the node's lineage key (it computes the same value), so results
cached under the key stay valid. The rules, after SystemDS's federated rewrites:

- ``t(X) @ X -> tsmm(X)``: one syrk per block, no transposed copy;
- ``t(X) @ (X @ v) -> mmchain(X, v)`` and ``t(X) @ (w * (X @ v)) -> mmchain(X, v, w)``: one
  request per block instead of three, and ``X @ v`` never becomes a variable;
- ``sum(X * X)`` and ``sum(X ** 2) -> sumsq(X)``;
- ``(X @ A) @ B -> X @ (A @ B)`` when that costs fewer flops (A, B local);
- scalar factors out of aggregates: ``sum(c * X) -> c * sum(X)``, ``mean(X / c) -> mean(X) / c``,
  ``mean(X + c) -> mean(X) + c``: the elementwise pass over X disappears;
- elementwise chains (``(X - m) / s``) fused into one ``fused`` request per block.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

from fedla import ops
from fedla.ops import is_tsmm
from fedla.plan import Node, Partitioning, unique_nodes

Rule = Callable[[Node], "Node | None"]


def rewrite(roots: list[Node]) -> list[Node]:
    """Equivalent plans for ``roots``, with every rule applied bottom-up."""
    return _Rewriter(roots).run()


class _Rewriter:
    def __init__(self, roots: list[Node]) -> None:
        self.roots = roots
        self.consumers: Counter[str] = Counter()
        self._count_consumers()
        self.absorbed = self._absorbed_into_chains()
        self._done: dict[str, Node] = {}
        self.rules: list[Rule] = [
            self._tsmm,
            self._mmchain,
            self._sumsq,
            self._reassociate,
            self._scalar_out_of_aggregate,
            self._fuse,
        ]

    def run(self) -> list[Node]:
        return [self._visit(root) for root in self.roots]

    def _count_consumers(self) -> None:
        for node in unique_nodes(self.roots):
            for child_key in {child.key for child in node.inputs}:
                self.consumers[child_key] += 1

    def _absorbed_into_chains(self) -> set[str]:
        """Keys of elementwise nodes that will be computed inside their only consumer's fusion."""
        return {
            child.key
            for node in unique_nodes(self.roots)
            if _fusible(node)
            for child in node.inputs
            if _fusible(child) and self.consumers[child.key] == 1
            and child.partitioning is node.partitioning
        }

    def _visit(self, node: Node) -> Node:
        if node.key in self._done:
            return self._done[node.key]
        children = tuple(self._visit(child) for child in node.inputs)
        if any(new is not old for new, old in zip(children, node.inputs)):
            node = dataclasses.replace(node, inputs=children)
        for rule in self.rules:
            replacement = rule(node)
            if replacement is not None:
                node = replacement
        self._done[node.key] = node
        return node

    # ----- rules
    def _tsmm(self, node: Node) -> Node | None:
        if node.op != "matmul" or not is_tsmm(*node.inputs):
            return None
        (x,) = node.inputs[1:]
        return _derived(node, "tsmm", (x,), {"left": True})

    def _mmchain(self, node: Node) -> Node | None:
        if node.op != "matmul":
            return None
        left, right = node.inputs
        if left.op != "transpose" or left.inputs[0].partitioning is not Partitioning.ROW:
            return None
        x = left.inputs[0]
        product, weights = _split_weighted(right)
        if product is None or product.op != "matmul" or product.inputs[0].key != x.key:
            return None
        v = product.inputs[1]
        if v.partitioning is not Partitioning.LOCAL or v.shape[1] != 1:
            return None
        if weights is not None and weights.shape != (x.shape[0], 1):
            return None
        if weights is not None and weights.partitioning not in (Partitioning.LOCAL,
                                                                Partitioning.ROW):
            return None
        inputs = (x, v) if weights is None else (x, v, weights)
        return _derived(node, "mmchain", inputs, {})

    def _sumsq(self, node: Node) -> Node | None:
        if node.op != "reduce" or node.attr("reduction") != "sum":
            return None
        (inner,) = node.inputs
        if inner.op != "binary" or self.consumers[inner.key] > 1:
            return None
        a, b = inner.inputs
        squares = (inner.attr("op") == "mul" and a.key == b.key) or (
            inner.attr("op") == "pow" and _scalar_value(b) == 2
        )
        if not squares:
            return None
        attrs = dict(node.attrs, reduction="sumsq")
        return _derived(node, "reduce", (a,), attrs)

    def _reassociate(self, node: Node) -> Node | None:
        if node.op != "matmul":
            return None
        left, b = node.inputs
        if left.op != "matmul" or self.consumers[left.key] > 1:
            return None
        x, a = left.inputs
        if not x.federated or a.federated or b.federated:
            return None
        (n, k), (_, m), (_, p) = x.shape, a.shape, b.shape
        if k * m * p + n * k * p >= n * k * m + n * m * p:
            return None
        return _derived(node, "matmul", (x, ops.build("matmul", (a, b), {})), {})

    def _scalar_out_of_aggregate(self, node: Node) -> Node | None:
        if node.op != "reduce" or node.attr("reduction") not in ("sum", "mean"):
            return None
        (inner,) = node.inputs
        if inner.op != "binary" or self.consumers[inner.key] > 1:
            return None
        op = inner.attr("op")
        a, b = inner.inputs
        linear = {"mul", "div"} | ({"add", "sub"} if node.attr("reduction") == "mean" else set())
        if _is_constant(b) and a.shape and op in linear:  # X op c
            matrix, scalar, scalar_first = a, b, False
        elif _is_constant(a) and b.shape and op in linear & {"mul", "add"}:  # c op X
            matrix, scalar, scalar_first = b, a, True
        else:
            return None
        reduced = ops.build("reduce", (matrix,), dict(node.attrs))
        operands = (scalar, reduced) if scalar_first else (reduced, scalar)
        return _derived(node, "binary", operands, {"op": op})

    def _fuse(self, node: Node) -> Node | None:
        if not _fusible(node) or node.key in self.absorbed:
            return None
        if not any(child.key in self.absorbed for child in node.inputs):
            return None
        leaves: list[Node] = []
        steps: list[dict[str, Any]] = []
        refs: dict[str, list[Any]] = {}  # key -> its reference, so shared parts appear once

        def emit(current: Node) -> list[Any]:
            if current.key in refs:
                return refs[current.key]
            if current is not node and current.key not in self.absorbed:
                leaves.append(current)
                refs[current.key] = ["in", len(leaves) - 1]
            else:
                args = [emit(child) for child in current.inputs]
                steps.append({"kernel": current.op, "attrs": dict(current.attrs), "args": args})
                refs[current.key] = ["step", len(steps) - 1]
            return refs[current.key]

        emit(node)
        return dataclasses.replace(
            node, op="fused", inputs=tuple(leaves), attrs=(("program", steps),)
        )


def _fusible(node: Node) -> bool:
    return node.op in ops.OPS and ops.OPS[node.op].fuses and node.federated


def _split_weighted(node: Node) -> tuple[Node | None, Node | None]:
    """``(X @ v, w)`` for ``w * (X @ v)`` or ``(X @ v) * w``; ``(node, None)`` otherwise."""
    if node.op == "binary" and node.attr("op") == "mul":
        a, b = node.inputs
        if a.op == "matmul":
            return a, b
        if b.op == "matmul":
            return b, a
        return None, None
    return node, None


def _scalar_value(node: Node) -> Any:
    return node.value if node.op == "local" and node.shape == () else None


def _is_constant(node: Node) -> bool:
    """A scalar known at the coordinator (a literal or an aggregate)."""
    return node.shape == () and not node.federated


def _derived(original: Node, op: str, inputs: tuple[Node, ...], attrs: dict[str, Any]) -> Node:
    """A node computing ``original``'s value another way: it keeps the key and placement."""
    return dataclasses.replace(
        original, op=op, inputs=inputs, attrs=tuple(sorted(attrs.items()))
    )

