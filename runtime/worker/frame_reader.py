"""Reading a stream's frames with a deadline between them (``fedla worker --stream-timeout``).

gRPC's request iterator blocks a server thread until the client sends the next frame, without
any deadline: a client that sends an envelope and then nothing held a thread forever, and a few
such streams took a worker offline. ``TimedFrames`` pulls the frames in a helper thread and
hands them over through a small queue; the server thread waits at most ``timeout`` seconds for
each, then gives up with a ``ResourceLimitError`` naming the option, so the RPC ends with a typed
status and its thread returns to the pool. The helper thread ends with the RPC (gRPC ends the
iterator when the call finishes).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from fedla.runtime.errors import ResourceLimitError

T = TypeVar("T")

QUEUED_FRAMES = 4
"""Frames read ahead of the consumer; bounds the memory a fast sender can make it hold."""

_HANDOFF_SECONDS = 0.5
"""How often a helper blocked on a full queue checks whether the consumer has stopped."""

_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class TimedFrames(Iterator[T]):
    """The items of ``frames``, each awaited for at most ``timeout`` seconds.

    Raises ``ResourceLimitError`` (naming ``option``) when the next item takes longer, and
    re-raises what the underlying iterator raised (gRPC's error for a cancelled call). Call
    ``close`` when done so that the helper thread stops reading ahead.
    """

    def __init__(
        self, frames: Iterable[T], timeout: float, option: str = "--stream-timeout"
    ) -> None:
        self.timeout = timeout
        self.option = option
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUED_FRAMES)
        self._stopped = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._pump, args=(iter(frames),), name="fedla-frames", daemon=True
        )
        self._thread.start()

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            item = self._queue.get(timeout=self.timeout)
        except queue.Empty:
            self.close()
            raise ResourceLimitError(
                f"the stream sent nothing for {self.timeout:g} s; this worker ends a stream "
                f"whose next frame takes longer (--stream-timeout). Send the whole message "
                "without pausing"
            ) from None
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop reading ahead; the helper thread ends at its next frame or with the RPC."""
        self._done = True
        self._stopped.set()

    def _pump(self, frames: Iterator[T]) -> None:
        try:
            for frame in frames:
                if not self._hand_over(frame):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer to re-raise
            self._hand_over(_Failure(exc))
            return
        self._hand_over(_END)

    def _hand_over(self, item: object) -> bool:
        """Queue ``item`` unless the consumer stopped; False when it did."""
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=_HANDOFF_SECONDS)
                return True
            except queue.Full:
                continue
        return False
