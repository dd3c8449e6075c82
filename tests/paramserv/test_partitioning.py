"""Partitioning schemes and the worker task's batching."""

from __future__ import annotations

import numpy as np
import pytest

from fedla.runtime.paramserv.partitioning import SCHEMES, partition_rows
from fedla.runtime.paramserv.worker import WorkerTask, epoch_seeds


@pytest.mark.parametrize("n,k", [(10, 3), (7, 7), (100, 4)], ids=["10/3", "7/7", "100/4"])
@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s.startswith("DISJOINT")])
def test_disjoint_schemes_cover_every_row_once(scheme, n, k):
    parts = partition_rows(n, k, scheme, seed=1)
    assert len(parts) == k
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_contiguous_and_round_robin_layouts():
    contiguous = partition_rows(7, 2, "DISJOINT_CONTIGUOUS", seed=0)
    assert [p.tolist() for p in contiguous] == [[0, 1, 2, 3], [4, 5, 6]]
    robin = partition_rows(7, 3, "DISJOINT_ROUND_ROBIN", seed=0)
    assert [p.tolist() for p in robin] == [[0, 3, 6], [1, 4], [2, 5]]


def test_random_schemes_depend_on_the_seed_only():
    for scheme in ("DISJOINT_RANDOM", "OVERLAP_RESHUFFLE"):
        a = partition_rows(50, 3, scheme, seed=5)
        b = partition_rows(50, 3, scheme, seed=5)
        c = partition_rows(50, 3, scheme, seed=6)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_overlap_reshuffle_gives_every_worker_all_rows_in_its_own_order():
    parts = partition_rows(30, 3, "OVERLAP_RESHUFFLE", seed=0)
    for p in parts:
        np.testing.assert_array_equal(np.sort(p), np.arange(30))
    assert not np.array_equal(parts[0], parts[1])


def test_unknown_scheme():
    with pytest.raises(ValueError):
        partition_rows(5, 2, "DISJOINT_STRIPED", seed=0)


def task(rows, freq="BATCH", batchsize=4, nbatches=1):
    return WorkerTask(0, np.asarray(rows, dtype=np.int64), freq, batchsize, nbatches, 0, 1, 0)


def test_contiguous_rows_are_batched_as_slices():
    batches = task(range(10, 20)).batches()
    assert batches == [slice(10, 14), slice(14, 18), slice(18, 20)]


def test_scattered_rows_are_batched_as_index_arrays():
    batches = task([5, 1, 9, 3, 7]).batches()
    assert [b.tolist() for b in batches] == [[5, 1, 9, 3], [7]]


@pytest.mark.parametrize("freq,nbatches,pushes", [("BATCH", 1, 3), ("EPOCH", 1, 1),
                                                  ("NBATCHES", 2, 2), ("NBATCHES", 5, 1)])
def test_pushes_per_epoch(freq, nbatches, pushes):
    assert task(range(10), freq, 4, nbatches).pushes_per_epoch() == pushes


def test_step_seeds_differ_per_step_and_repeat_per_arguments():
    seeds = {s for w in range(3) for e in range(3) for s in epoch_seeds(7, w, e, 10)}
    assert len(seeds) == 90
    assert epoch_seeds(7, 1, 2, 10) == epoch_seeds(7, 1, 2, 10)
    assert all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds)


def test_a_step_seed_does_not_depend_on_how_many_are_drawn():
    # a worker whose epoch is cut short (NBATCHES, balancing) must see the same first seeds
    assert epoch_seeds(7, 1, 2, 3) == epoch_seeds(7, 1, 2, 79)[:3]
