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
    """An LRU map lineage key -> value, bounded by ``budget`` bytes.

    An entry may carry ``tags`` (a worker tags results derived from a tenant's private data
    with that tenant and with the PUT values they derive from), so that all entries of a tag can
    be dropped at once: when the tenant clears its variables, its scope is dropped, or a PUT
    value is gone, nobody can reuse them and they would only hold memory until evicted.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._values: OrderedDict[str, tuple[Any, int, tuple[str, ...]]] = OrderedDict()
        self._tagged: dict[str, set[str]] = {}
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

    def put(self, key: str, value: Any, tags: tuple[str, ...] = ()) -> None:
        """Keep ``value`` under ``key`` and ``tags``, evicting older values to fit the budget.

        A value larger than the whole budget is not kept (it will be recomputed when needed).
        """
        size = value_nbytes(value)
        if size > self.budget:
            return
        with self._lock:
            self._remove(key)
            self._values[key] = (value, size, tags)
            self._bytes += size
            for tag in tags:
                self._tagged.setdefault(tag, set()).add(key)
            while self._bytes > self.budget:
                self._remove(next(iter(self._values)))
                self.evictions += 1

    def drop_tag(self, tag: str) -> int:
        """Forget every entry put with ``tag`` among its tags; returns how many there were."""
        with self._lock:
            keys = self._tagged.pop(tag, set())
            for key in keys:
                self._remove(key)
        return len(keys)

    def _remove(self, key: str) -> None:
        """Remove ``key`` if held (the caller holds the lock)."""
        entry = self._values.pop(key, None)
        if entry is None:
            return
        _, size, tags = entry
        self._bytes -= size
        for tag in tags:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]

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
