"""Plan nodes: small, declarative, immutable descriptions of matrix operations.

A node holds its operation, inputs, attributes, result shape and dtype, its partitioning and a
lineage key. Leaves are local values (``fl.matrix``, Python scalars) or federated data whose
blocks live at workers. Nothing here talks to a worker: ``compiler`` turns nodes into requests.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


class Partitioning(enum.Enum):
    """Where a node's value lives."""

    ROW = "ROW"  # row blocks at workers
    COL = "COL"  # column blocks at workers
    BROADCAST = "BROADCAST"  # a local value shipped whole to every worker that needs it
    LOCAL = "LOCAL"  # at the coordinator


@dataclass(frozen=True)
class Block:
    """One partition of a federated value: which worker holds which global ranges under what name.

    ``rows`` and ``cols`` are half-open global ranges; ``key`` is the lineage key of the block's
    content, ``var`` the name of the variable at the worker.
    """

    address: str
    rows: tuple[int, int]
    cols: tuple[int, int]
    var: str
    key: str

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of this block."""
        return (self.rows[1] - self.rows[0], self.cols[1] - self.cols[0])


@dataclass(frozen=True)
class Layout:
    """How a federated value is split: the partitioning and the blocks in global order."""

    partitioning: Partitioning
    blocks: tuple[Block, ...]

    def aligned_with(self, other: Layout) -> bool:
        """Whether both split the partitioned axis identically over the same workers."""
        if self.partitioning != other.partitioning or len(self.blocks) != len(other.blocks):
            return False
        along_rows = self.partitioning is Partitioning.ROW
        return all(
            a.address == b.address and (a.rows == b.rows if along_rows else a.cols == b.cols)
            for a, b in zip(self.blocks, other.blocks)
        )


@dataclass(frozen=True, eq=False)
class Node:
    """One operation of a plan.

    ``op`` names a kernel family or a leaf kind (``"local"``, ``"federated"``); ``attrs`` are
    sorted (name, value) pairs; ``shape`` is ``()`` for a scalar. ``layout`` is set for federated
    leaves only: the compiler derives the blocks of every other federated node.
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
        """Whether the value lives at workers."""
        return self.partitioning in (Partitioning.ROW, Partitioning.COL)


def lineage_key(*parts: Any) -> str:
    """A deterministic 128-bit key of ``parts`` (strings, numbers, tuples, keys of inputs)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def content_key(value: Any) -> str:
    """A lineage key of a local value's content: dtype, shape and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    if sp.issparse(value):
        csr = sp.csr_array(value)
        csr.sum_duplicates()
        digest.update(repr(("csr", csr.shape)).encode())
        for part in (csr.data, csr.indices, csr.indptr):
            _update_array(digest, part)
    elif isinstance(value, np.ndarray):
        _update_array(digest, value)
    else:
        digest.update(repr(("scalar", type(value).__name__, value)).encode())
    return digest.hexdigest()


def _update_array(digest: Any, array: np.ndarray) -> None:
    digest.update(repr((array.dtype.str, array.shape)).encode())
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))  # type: ignore[arg-type]
