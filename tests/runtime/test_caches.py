"""Unit tests of the worker's caches: LRU under a byte budget, single-flight file loads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fedla.runtime.lineage_cache import MISSING, LineageCache
from fedla.runtime.worker.read_cache import ReadCache


def test_lineage_cache_evicts_least_recently_used_first() -> None:
    cache = LineageCache(budget=3 * 800)
    for name in "abc":
        cache.put(name, np.zeros(100))  # 800 bytes each
    assert cache.get("a") is not MISSING  # a is now the most recently used
    cache.put("d", np.zeros(100))
    assert cache.get("b") is MISSING
    assert all(cache.get(name) is not MISSING for name in "acd")
    assert cache.stats()["evictions"] == 1 and cache.stats()["bytes"] == 2400


def test_lineage_cache_skips_values_larger_than_the_budget() -> None:
    cache = LineageCache(budget=100)
    cache.put("big", np.zeros(100))
    assert cache.get("big") is MISSING and cache.stats()["bytes"] == 0


def test_lineage_cache_replacing_a_key_keeps_the_byte_count_right() -> None:
    cache = LineageCache(budget=10_000)
    cache.put("a", np.zeros(100))
    cache.put("a", np.zeros(10))
    assert cache.stats()["bytes"] == 80 and cache.stats()["entries"] == 1


def test_read_cache_loads_once_for_concurrent_readers() -> None:
    cache = ReadCache()
    loads = []

    def slow_reader() -> np.ndarray:
        loads.append(1)
        time.sleep(0.2)
        return np.ones((3, 3))

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.load("fp", slow_reader)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert sorted(reused for _, reused in results) == [False, True, True, True, True]
    assert len({id(loaded) for loaded, _ in results}) == 1


def test_read_cache_does_not_keep_a_failed_load() -> None:
    cache = ReadCache()

    def failing() -> np.ndarray:
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        cache.load("fp", failing)
    loaded, reused = cache.load("fp", lambda: np.zeros(2))
    assert not reused and loaded.value.shape == (2,)


def test_read_cache_frees_a_file_nobody_holds() -> None:
    cache = ReadCache()
    loaded, _ = cache.load("fp", lambda: np.zeros(1000))
    assert cache.stats()["entries"] == 1
    del loaded
    assert cache.stats()["entries"] == 0
    _, reused = cache.load("fp", lambda: np.zeros(1000))
    assert not reused


def test_results_derived_from_put_data_leave_the_cache_with_the_data(tmp_path: Path) -> None:
    """A PUT value's lineage is unique, so once it is CLEARed (and nothing derived from it is
    left) no request can reuse what was computed from it; while it is held, its results stay."""
    from fedla.runtime.protocol.requests import Clear, ExecInst, Literal, Put
    from fedla.runtime.worker.principal import Principal
    from fedla.runtime.worker.request_handler import RequestHandler, WorkerConfig

    handler = RequestHandler(WorkerConfig(tmp_path))
    me = Principal("t")
    x = np.arange(12.0).reshape(3, 4)
    handler.handle(me, [Put("x", x), ExecInst("binary", ("x", Literal(2.0)), "y", {"op": "mul"})])
    handler.handle(me, [Clear(("y",))])  # an intermediate cleared, its input still held
    assert handler.lineage_cache.stats()["entries"] == 1
    (meta,) = handler.handle(me, [ExecInst("binary", ("x", Literal(2.0)), "y", {"op": "mul"})])
    assert meta.reused
    handler.handle(me, [Clear(("x", "y"))])
    assert handler.lineage_cache.stats()["entries"] == 0
