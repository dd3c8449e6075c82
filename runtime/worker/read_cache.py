"""READ reuse at a worker: one in-memory copy per file fingerprint, shared by all tenants.

A loaded file lives as long as some variable (of any tenant, or the lineage of a derived value)
references it: the cache keeps only a weak reference, so Python's reference counting is the
reference count. Concurrent READs of the same file wait for one load; a failed load is not kept.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedla.runtime.lineage_cache import value_nbytes


@dataclass(eq=False)
class LoadedFile:
    """A file's matrix as read, with its fingerprint (path, size, mtime, format options)."""

    fingerprint: str
    value: Any
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.nbytes = value_nbytes(self.value)


class ReadCache:
    """Fingerprint -> loaded file, while anybody still holds it."""

    def __init__(self) -> None:
        self._files: weakref.WeakValueDictionary[str, LoadedFile] = weakref.WeakValueDictionary()
        self._loading: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def load(self, fingerprint: str, reader: Callable[[], Any]) -> tuple[LoadedFile, bool]:
        """The file for ``fingerprint``, loading it with ``reader`` unless held already.

        Returns the file and whether it was reused. A caller arriving while another loads the
        same file waits for that load instead of starting its own.
        """
        while True:
            with self._lock:
                loaded = self._files.get(fingerprint)
                if loaded is not None:
                    self.hits += 1
                    return loaded, True
                pending = self._loading.get(fingerprint)
                if pending is None:
                    pending = self._loading[fingerprint] = threading.Event()
                    break
            pending.wait()  # the other load finished (or failed): look again
        try:
            loaded = LoadedFile(fingerprint, reader())
            with self._lock:
                self._files[fingerprint] = loaded
                self.misses += 1
            return loaded, False
        finally:
            with self._lock:
                del self._loading[fingerprint]
            pending.set()

    def stats(self) -> dict[str, int]:
        """Entries, bytes held, hits and misses."""
        with self._lock:
            files = list(self._files.values())
            return {
                "entries": len(files),
                "bytes": sum(f.nbytes for f in files),
                "hits": self.hits,
                "misses": self.misses,
            }
