"""Placement: where the result of an operation lives, decided from where its inputs live.

ROW or COL means the result stays at the sites, split like its anchor input; LOCAL means it is
combined at the coordinator (an aggregate, or a value that needs cross-block data).
"""

from __future__ import annotations

from typing import Any

from fedla.plan import Node, Partitioning
from fedla.runtime.errors import InvalidArgumentError

ROW, COL, LOCAL = Partitioning.ROW, Partitioning.COL, Partitioning.LOCAL


def placement(op: str, inputs: list[Node], attrs: dict[str, Any]) -> Partitioning:
    """Where the result of ``op`` on ``inputs`` lives: ROW, COL (stays at the sites) or LOCAL."""
    federated = [node for node in inputs if node.federated]
    if not federated:
        return LOCAL
    if op == "matmul":
        left, right = inputs
        if is_tsmm(left, right):
            return LOCAL  # t(X) @ X is a small Gram matrix, whichever way X is split
        if left.partitioning is ROW:
            return ROW
        return COL if left.partitioning is LOCAL and right.partitioning is COL else LOCAL
    if op in ("binary", "unary", "where"):
        anchor = anchor_input(inputs)
        axis = 0 if anchor.partitioning is ROW else 1
        length = max(node.shape[axis] for node in inputs if node.shape)
        # A federated operand broadcast along its partitioned axis (a 1-row slice of row blocks
        # plus a full local matrix) has no blocks to follow: such a result is computed locally.
        return anchor.partitioning if anchor.shape[axis] == length else LOCAL
    if op == "reduce":
        reduce_axis = attrs.get("axis")
        kind = inputs[0].partitioning
        keeps = (kind is ROW and reduce_axis == 1) or (kind is COL and reduce_axis == 0)
        return kind if keeps else LOCAL
    if op == "slice":
        return inputs[0].partitioning
    if op == "transpose":
        return COL if inputs[0].partitioning is ROW else ROW
    if op in ("cbind", "rbind"):
        along = ROW if op == "cbind" else COL  # the partitioning that lets blocks bind in place
        across = COL if op == "cbind" else ROW  # the partitioning that just lists blocks
        if all(node.partitioning is along or not node.federated for node in inputs) and \
                anchor_input(inputs).partitioning is along:
            return along
        if all(node.partitioning is across for node in inputs):
            return across
        return LOCAL
    raise InvalidArgumentError(f"no placement rule for operation {op!r}")


def is_tsmm(left: Node, right: Node) -> bool:
    """Whether ``left @ right`` is ``t(X) @ X`` for a federated ``X``."""
    return left.op == "transpose" and left.inputs[0].key == right.key and right.federated


def anchor_input(inputs: list[Node]) -> Node:
    """The federated input whose layout the result follows: a full-size one if any."""
    federated = [node for node in inputs if node.federated]
    return max(federated, key=lambda node: node.shape[0] * node.shape[1])
