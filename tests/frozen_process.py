"""Freeze a worker process with SIGSTOP and wait until every one of its threads has stopped.

``kill`` only queues the stop: each thread stops when it next enters the kernel, and a thread
running on another (virtual) CPU keeps running until that CPU takes the interrupt. A request
sent in that window can still be answered, so a test that freezes a worker and then expects its
calls to hang waits for the stop to complete (Linux's ``/proc``) before it sends one.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

STOP_TIMEOUT_SECONDS = 10.0


def freeze(pid: int) -> None:
    """SIGSTOP ``pid``; return once all its threads are stopped (state ``T``)."""
    os.kill(pid, signal.SIGSTOP)
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():  # no procfs: the stop is queued, which is all POSIX promises
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while not all(_state(stat) == "T" for stat in tasks.glob("*/stat")):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not stop within {STOP_TIMEOUT_SECONDS} s")
        time.sleep(0.01)


def _state(stat: Path) -> str:
    """The one-letter state in ``/proc/PID/task/TID/stat`` ('' if the thread has ended)."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "T"
