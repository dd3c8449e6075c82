"""Data partitioning schemes: which rows each of ``k`` workers trains on.

Partitions are index arrays into the shared features and labels; no data is copied here. They are
computed once per run (as in SystemDS) from the run's seed, so a resumed run gets the same ones.

- ``DISJOINT_CONTIGUOUS``: ``k`` contiguous blocks of (almost) equal size.
- ``DISJOINT_ROUND_ROBIN``: row ``i`` goes to worker ``i mod k``.
- ``DISJOINT_RANDOM``: one random permutation cut into ``k`` blocks.
- ``OVERLAP_RESHUFFLE``: every worker gets all rows, each in its own random order (an epoch then
  processes the data ``k`` times).
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("DISJOINT_CONTIGUOUS", "DISJOINT_ROUND_ROBIN", "DISJOINT_RANDOM", "OVERLAP_RESHUFFLE")


def partition_rows(n_rows: int, k: int, scheme: str, seed: int) -> list[np.ndarray]:
    """Row indices (int64) of each of the ``k`` workers under ``scheme``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    if scheme == "DISJOINT_CONTIGUOUS":
        return np.array_split(np.arange(n_rows, dtype=np.int64), k)
    if scheme == "DISJOINT_ROUND_ROBIN":
        return [np.arange(w, n_rows, k, dtype=np.int64) for w in range(k)]
    if scheme == "DISJOINT_RANDOM":
        return np.array_split(rng.permutation(n_rows).astype(np.int64), k)
    if scheme == "OVERLAP_RESHUFFLE":
        return [rng.permutation(n_rows).astype(np.int64) for _ in range(k)]
    raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")
