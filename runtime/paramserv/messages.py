"""What a worker pushes and what the server releases, independent of how either travels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GRADIENTS = "gradients"
DELTA = "delta"


@dataclass
class Update:
    """One push from a worker.

    Attributes
    ----------
    worker : int
        Worker id, ``0 .. k-1``.
    kind : {"gradients", "delta"}
        Gradients of one batch (freq BATCH: the server runs ``agg`` on them) or the difference
        ``local_model - pulled_model`` after local steps (freq EPOCH / NBATCHES: the server adds
        it).
    arrays : list of arrays
        The gradients (one per leading model array) or the delta (one per model array).
    weight : int
        Samples behind the update; the weights of the server's weighted average.
    version : int
        Version of the model the update was computed from (the server counts applied updates).
    samples : int, optional
        Rows the update was computed on (default ``weight``; differs when updates are weighted
        equally).
    bytes_up, bytes_down : int
        Bytes the update took to the server and the model took to the worker before it.
    seconds : float or None
        How long the worker's local computation took, without transfers (None: not measured).
    """

    worker: int
    kind: str
    arrays: list[Any]
    weight: float
    version: int
    samples: int | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    seconds: float | None = None

    @property
    def rows(self) -> int:
        """Rows behind the update."""
        return int(self.weight) if self.samples is None else self.samples


@dataclass(frozen=True)
class Release:
    """The server lets ``worker`` go on with ``model`` (of ``version``)."""

    worker: int
    model: list[Any]
    version: int
