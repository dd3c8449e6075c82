"""What a paramserv run records: per-epoch metrics and server statistics."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

CLOCK_LOG_LIMIT = 100_000


@dataclass
class History:
    """Metrics and server statistics of one paramserv run (continued across a resume).

    Attributes
    ----------
    epoch : list of int
        Completed epochs, 1-based.
    val_loss, val_accuracy : list of float
        Validation metrics after each epoch (NaN without validation data).
    epoch_seconds : list of float
        Wall time of each epoch.
    samples : list of int
        Training samples processed in each epoch, summed over workers.
    updates : int
        Model updates the server applied.
    dropped_updates : int
        Late pushes SBP discarded.
    max_staleness : int
        Largest ``server version - update version`` seen at a push (0 under BSP).
    blocked : int
        Pushes after which SSP held the worker back because it was too far ahead.
    max_clock_gap : int
        Largest ``clock - slowest`` over all releases (see ``clock_log``); at most ``staleness``
        under SSP, 0 under BSP.
    clock_log : list of [epoch, worker, clock, slowest]
        One entry per release by the update policy: the worker's clock (pushes this epoch), and
        the smallest clock among the workers still in the epoch at that moment. SSP guarantees
        ``clock - slowest <= staleness``. Only the first ``CLOCK_LOG_LIMIT`` releases are kept.
    seed : int
        The base seed of the run (drawn when none was given).
    resumed_from : int or None
        Epochs restored from a checkpoint, if the run was resumed.
    sites : list of str
        Who worker ``i`` was: a site address (FEDERATED) or ``"process i"`` (LOCAL).
    round_seconds : list of float
        Per model update ("round"): seconds since the previous one.
    bytes_up, bytes_down : list of int
        Per round: bytes of the updates that went into it, and of the models sent to their
        workers before they computed them.
    round_sites : list of list of int
        Per round: the workers whose updates it combined.
    round_compute_seconds : list of float
        Per round: the longest local computation among its updates (a site's local steps,
        without transfers), so ``round_seconds`` minus it is what moving and combining cost.
    failures : list of [round, worker, reason]
        Workers lost during the run (FEDERATED: a site that stopped answering) and when.
    rejoins : list of [epoch, worker]
        Lost workers that came back (FEDERATED: a restarted site), and the epoch (1-based, as in
        ``epoch``) from which they trained again.
    epsilon : list of float
        With differential privacy: the (epsilon, ``delta``) guarantee spent after each round.
    dp_delta : float or None
        The delta of ``epsilon``.
    """

    epoch: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    updates: int = 0
    dropped_updates: int = 0
    max_staleness: int = 0
    blocked: int = 0
    max_clock_gap: int = 0
    clock_log: list[list[int]] = field(default_factory=list)
    seed: int | None = None
    resumed_from: int | None = None
    sites: list[str] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)
    bytes_up: list[int] = field(default_factory=list)
    bytes_down: list[int] = field(default_factory=list)
    round_sites: list[list[int]] = field(default_factory=list)
    round_compute_seconds: list[float] = field(default_factory=list)
    failures: list[list[Any]] = field(default_factory=list)
    rejoins: list[list[int]] = field(default_factory=list)
    epsilon: list[float] = field(default_factory=list)
    dp_delta: float | None = None

    def record_round(self, seconds: float, workers: list[int], up: int, down: int,
                     compute_seconds: float = math.nan) -> None:
        """Append one model update's statistics."""
        self.round_seconds.append(seconds)
        self.round_compute_seconds.append(compute_seconds)
        self.round_sites.append(workers)
        self.bytes_up.append(up)
        self.bytes_down.append(down)

    def __repr__(self) -> str:
        parts = [f"epochs={len(self.epoch)}", f"rounds={len(self.round_seconds)}"]
        if self.val_accuracy and self.val_accuracy[-1] == self.val_accuracy[-1]:
            parts.append(f"val_loss={self.val_loss[-1]:.4g}")
            parts.append(f"val_accuracy={self.val_accuracy[-1]:.4f}")
        if self.epoch_seconds:
            parts.append(f"seconds={sum(self.epoch_seconds):.3g}")
        moved = sum(self.bytes_up) + sum(self.bytes_down)
        if moved:
            parts.append(f"bytes_up={_size(sum(self.bytes_up))}")
            parts.append(f"bytes_down={_size(sum(self.bytes_down))}")
        if self.dropped_updates:
            parts.append(f"dropped_updates={self.dropped_updates}")
        if self.failures:
            parts.append(f"failures={len(self.failures)}")
        if self.rejoins:
            parts.append(f"rejoins={len(self.rejoins)}")
        if self.epsilon:
            parts.append(f"epsilon={self.epsilon[-1]:.3g} (delta={self.dp_delta:g})")
        parts.append(f"seed={self.seed}")
        return f"History({', '.join(parts)})"

    @property
    def samples_per_second(self) -> float:
        """Training throughput over the recorded epochs."""
        seconds = sum(self.epoch_seconds)
        return sum(self.samples) / seconds if seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of ``to_dict``."""
        return cls(**data)


def _size(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if nbytes < 1024:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024  # type: ignore[assignment]
    return f"{nbytes:.1f} GiB"


class TrainedModel(list):  # type: ignore[type-arg]
    """The model list paramserv returns, with the run's ``history`` attached.

    It is a plain ``list`` of arrays (SystemDS's model list), so code that expects a list works.
    """

    history: History

    def __init__(self, model: list[Any], history: History) -> None:
        super().__init__(model)
        self.history = history
