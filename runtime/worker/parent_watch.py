"""A worker that exits when the process that started it is gone.

``fedla worker --parent-pid PID`` (what ``LocalWorkerPool`` passes) polls its parent pid: when
the coordinator dies, even by SIGKILL, the worker is re-parented, notices within ``interval``
seconds and stops as on SIGTERM, so no local worker outlives its coordinator.

Linux's ``prctl(PR_SET_PDEATHSIG)`` is not used: it fires when the *thread* that forked the
worker ends, so a Context created in a short-lived thread would lose its workers while the
coordinator lives on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 0.5


def watch_parent(
    parent_pid: int, on_exit: Callable[[], None], interval: float = DEFAULT_INTERVAL_SECONDS
) -> threading.Thread:
    """Call ``on_exit`` once this process's parent is no longer ``parent_pid``.

    Parameters
    ----------
    parent_pid : int
        The pid of the parent to outlive no longer than ``interval``.
    on_exit : callable
        What to do then (the worker sends itself SIGTERM, so it stops gracefully).
    interval : float, default 0.5
        Seconds between two checks.

    Returns
    -------
    threading.Thread
        The daemon thread that watches.
    """

    def watch() -> None:
        stop = threading.Event()
        while os.getppid() == parent_pid:
            stop.wait(interval)
        _LOGGER.warning("parent process %d is gone: stopping", parent_pid)
        on_exit()

    thread = threading.Thread(target=watch, name="fedla-parent-watch", daemon=True)
    thread.start()
    return thread
