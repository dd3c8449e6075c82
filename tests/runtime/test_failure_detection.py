"""A frozen worker is detected by keepalive pings; long work is not cut off; waits can be cut.

Each test starts its own worker process (``fedla worker``) so it may freeze it with SIGSTOP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from fedla.local_workers import LocalWorkerPool
from fedla.runtime.errors import (
    CallCancelledError,
    InvalidArgumentError,
    WorkerUnavailableError,
)
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import ExecUdf, Get, Literal, Put
from tests.frozen_process import freeze

DETECTION_BOUND_SECONDS = 30.0
"""With the default ``keepalive_s`` of 10 s a frozen worker fails a call after about 20 s."""


@pytest.fixture
def worker(tmp_path) -> Iterator[tuple[str, int]]:
    """A worker process that may run ``tests.udfs:sleep`` and ``:factorial``: address and pid."""
    with LocalWorkerPool(1, data_dir=tmp_path, allow_modules=("tests.udfs",)) as pool:
        process = pool.processes[0]
        try:
            yield pool.addresses[0], process.pid
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)


def test_a_frozen_worker_is_detected_and_named(worker):
    address, pid = worker
    client = WorkerClient(address)  # defaults: no deadline, keepalive every 10 s
    try:
        client.execute("t", [Put("x", np.ones(3))])
        freeze(pid)
        start = time.monotonic()
        with pytest.raises(WorkerUnavailableError) as caught:
            client.execute("t", [Get("x"), Get("x")])
        elapsed = time.monotonic() - start
    finally:
        os.kill(pid, signal.SIGCONT)
        client.close()
    message = str(caught.value)
    assert elapsed < DETECTION_BOUND_SECONDS
    assert f"worker {address}" in message
    assert "stopped answering (no keepalive reply within 20 s)" in message
    assert "a batch of 2 requests (GET 'x', GET 'x') was waiting" in message


def test_work_longer_than_the_keepalive_interval_completes(worker, capfd):
    address, _ = worker
    client = WorkerClient(address, keepalive_s=1.0)
    try:
        start = time.monotonic()
        # Sleeping releases the GIL; a huge factorial holds it: the worker answers pings anyway.
        client.execute("t", [
            ExecUdf("tests.udfs:sleep", (Literal(3.5),)),
            ExecUdf("tests.udfs:factorial", (Literal(150_000),), outputs=("f",)),
        ])
        assert time.monotonic() - start > 3.5
        (pong,) = client.execute("t", [Put("y", 1.0)])  # the channel is still good
        assert pong.dtype == "float"
    finally:
        client.close()
    # gRPC core logs (on fd 2) a server that refuses frequent pings; the call would still end,
    # but the channel would be dropped and its pings slowed down.
    assert "too_many_pings" not in capfd.readouterr().err


def test_cancel_all_unblocks_a_waiting_call_from_another_thread(worker):
    address, _ = worker
    client = WorkerClient(address)
    try:
        timer = threading.Timer(0.5, client.cancel_all)
        timer.start()
        start = time.monotonic()
        with pytest.raises(CallCancelledError, match=f"call to worker {address} was cancelled"):
            client.execute_all("t", [ExecUdf("tests.udfs:sleep", (Literal(5.0),))])
        assert time.monotonic() - start < 3.0
        timer.join()
        assert client.cancel_all() == 0  # nothing left in flight
        assert client.execute("t", [Put("z", 2)])[0].dtype == "int"
    finally:
        client.close()


def test_the_deadline_is_an_overall_bound(worker):
    address, _ = worker
    client = WorkerClient(address, timeout=1.0)
    try:
        with pytest.raises(WorkerUnavailableError, match="within the deadline of 1 s"):
            client.execute("t", [ExecUdf("tests.udfs:sleep", (Literal(3.0),))])
    finally:
        client.close()


def test_ctrl_c_interrupts_a_waiting_call_promptly(worker):
    address, _ = worker
    script = textwrap.dedent(f"""
        from fedla.runtime.protocol.client import WorkerClient
        from fedla.runtime.protocol.requests import ExecUdf, Literal
        client = WorkerClient({address!r})
        print("waiting", flush=True)
        try:
            client.execute("t", [ExecUdf("tests.udfs:sleep", (Literal(5.0),))])
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "waiting"
        time.sleep(0.5)  # let the call reach the worker
        start = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=10)
        elapsed = time.monotonic() - start
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert "interrupted" in out
    assert elapsed < 2.0


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"timeout": 0}, "'timeout' of WorkerClient must be None or a number of seconds > 0"),
     ({"keepalive_s": -1.0}, "'keepalive_s' of WorkerClient must be a number of seconds > 0")],
    ids=["timeout", "keepalive"],
)
def test_bad_client_settings_are_refused(kwargs, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        WorkerClient("127.0.0.1:1", **kwargs)
