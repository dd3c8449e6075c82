"""Values cached by lineage key under a memory budget, least recently used evicted first.

Workers keep EXEC results here; an evicted value is not lost, because the variable that produced
it keeps its lineage (operation, attributes, inputs) and recomputes it on the next use
(``worker.variables.DerivedVariable``). Coordinators keep aggregates here, keyed by plan node,
so a later ``compute()`` of the same expression costs no round trip.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import scipy.sparse as sp

MISSING = object()
"""Returned by ``LineageCache.get`` for a key it does not hold."""


def value_nbytes(value: Any) -> int:
    """Bytes held by an array, CSR matrix or nested partial; 0 for anything else."""
    if sp.issparse(value):
        return int(value.data.nbytes + value.indices.nbytes + value.indptr.nbytes)
    if hasattr(value, "nbytes"):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(value_nbytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(value_nbytes(item) for item in value)
    return 0


class LineageCache:
    """An LRU map lineage key -> value, bounded by ``budget`` bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._values: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: str) -> Any:
        """The value under ``key`` (now most recently used), or ``MISSING``."""
        with self._lock:
            entry = self._values.get(key)
            if entry is None:
                self.misses += 1
                return MISSING
            self._values.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key``, evicting older values to stay within the budget.

        A value larger than the whole budget is not kept (it will be recomputed when needed).
        """
        size = value_nbytes(value)
        if size > self.budget:
            return
        with self._lock:
            previous = self._values.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._values[key] = (value, size)
            self._bytes += size
            while self._bytes > self.budget:
                _, (_, evicted) = self._values.popitem(last=False)
                self._bytes -= evicted
                self.evictions += 1

    def stats(self) -> dict[str, int]:
        """Entries, bytes held, budget, hits, misses and evictions."""
        with self._lock:
            return {
                "entries": len(self._values),
                "bytes": self._bytes,
                "budget": self.budget,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }
