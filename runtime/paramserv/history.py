"""What a paramserv run records: per-epoch metrics and server statistics."""

from __future__ import annotations

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


class TrainedModel(list):  # type: ignore[type-arg]
    """The model list paramserv returns, with the run's ``history`` attached.

    It is a plain ``list`` of arrays (SystemDS's model list), so code that expects a list works.
    """

    history: History

    def __init__(self, model: list[Any], history: History) -> None:
        super().__init__(model)
        self.history = history
