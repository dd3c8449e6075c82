"""Plan nodes and layouts: immutable descriptions of operations and of where data lives.

A ``Node`` holds its operation, inputs, attributes, result shape and dtype, its partitioning and a
lineage key. Leaves are local values (``fl.matrix``, Python scalars) or federated data whose blocks
live at sites, described by a ``Layout``. Nodes are built by ``fedla.ops.build``, which reads the
operation's ``OpSpec``; nothing here talks to a site.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NewType

import numpy as np

SiteId = NewType("SiteId", str)
"""The name of a site: ``host:port`` of a gRPC worker, ``in-process-N`` of an in-process site."""


class Partitioning(enum.Enum):
    """Where a node's value lives."""

    ROW = "ROW"  # row blocks at sites
    COL = "COL"  # column blocks at sites
    LOCAL = "LOCAL"  # at the coordinator


Range = tuple[int, int]


@dataclass(frozen=True)
class Block:
    """One partition of a federated value: which site holds which global ranges under what name.

    ``rows`` and ``cols`` are half-open global ranges; ``key`` is the lineage key of the block's
    content, ``var`` the name of the variable at the site.
    """

    site: SiteId
    rows: Range
    cols: Range
    var: str
    key: str

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of this block."""
        return (self.rows[1] - self.rows[0], self.cols[1] - self.cols[0])

    def span(self, partitioning: Partitioning) -> Range:
        """The block's range along the partitioned axis."""
        return self.rows if partitioning is Partitioning.ROW else self.cols


@dataclass(frozen=True)
class Layout:
    """How a federated value is split: the partitioning and the blocks in global order."""

    partitioning: Partitioning
    blocks: tuple[Block, ...]

    def aligned_with(self, other: Layout) -> bool:
        """Whether both split the partitioned axis identically over the same sites."""
        if self.partitioning != other.partitioning or len(self.blocks) != len(other.blocks):
            return False
        return all(
            a.site == b.site and a.span(self.partitioning) == b.span(other.partitioning)
            for a, b in zip(self.blocks, other.blocks)
        )

    @property
    def sites(self) -> tuple[SiteId, ...]:
        """The sites holding blocks, each once, in block order."""
        return tuple(dict.fromkeys(block.site for block in self.blocks))


@dataclass(frozen=True, eq=False)
class Node:
    """One operation of a plan.

    ``op`` names an ``OpSpec`` in ``fedla.ops`` or a leaf kind (``"local"``, ``"federated"``);
    ``attrs`` are sorted (name, value) pairs; ``shape`` is ``()`` for a scalar. ``layout`` is set
    for federated leaves only: lowering derives the blocks of every other federated node.
    """

    op: str
    inputs: tuple[Node, ...]
    attrs: tuple[tuple[str, Any], ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    partitioning: Partitioning
    key: str
    value: Any = field(default=None, repr=False)
    layout: Layout | None = None

    def attr(self, name: str, default: Any = None) -> Any:
        """The value of attribute ``name``."""
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    @property
    def federated(self) -> bool:
        """Whether the value lives at sites."""
        return self.partitioning is not Partitioning.LOCAL


def unique_nodes(roots: list[Node]) -> Iterator[Node]:
    """Every node of the plans once (plans share subexpressions by key), roots first."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.key not in seen:
            seen.add(node.key)
            yield node
            stack.extend(node.inputs)
