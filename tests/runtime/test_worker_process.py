"""The worker daemon as an operator runs it: ``fedla worker`` / ``python -m fedla worker``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from fedla.runtime.errors import FedlaError
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import ExecUdf, Get, Put, Read
from fedla.runtime.worker.server import LISTENING_PREFIX

START_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
"""Generous for a loaded CI machine; a clean shutdown takes well under a second."""


def _command(launcher: str) -> list[str]:
    if launcher == "module":
        return [sys.executable, "-m", "fedla"]
    script = shutil.which("fedla", path=os.path.dirname(sys.executable)) or shutil.which("fedla")
    if script is None:
        pytest.skip("the fedla console script is not installed")
    return [script]


def _read_line(stream, timeout: float) -> str:
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0] if line else ""


@contextmanager
def worker_process(
    data_dir: Path, *args: str, launcher: str = "module", log_level: str = "INFO"
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a worker on a free port; yield the process and its address; kill it if still up."""
    command = [
        *_command(launcher), "--log-level", log_level, "worker",
        "--port", "0", "--data-dir", str(data_dir), *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        line = _read_line(process.stdout, START_TIMEOUT)
        assert line.startswith(LISTENING_PREFIX), (
            f"no address line within {START_TIMEOUT} s: {line!r}; exit code {process.poll()}"
        )
        address = line[len(LISTENING_PREFIX):].split()[0]
        yield process, address
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _stop(process: subprocess.Popen[str], signum: int) -> tuple[int, float, str]:
    start = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=EXIT_TIMEOUT)
    return process.returncode, time.monotonic() - start, stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("launcher", ["module", "script"], ids=["python-m-fedla", "fedla-script"])
def test_worker_starts_serves_and_stops_cleanly(tmp_path, launcher, signum):
    np.save(tmp_path / "X.npy", np.eye(3))
    with worker_process(tmp_path, launcher=launcher) as (process, address):
        host, port = address.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        client = WorkerClient(address, timeout=30)
        meta, value = client.execute("op", [Read("X", "X.npy"), Get("X")])
        assert meta.shape == (3, 3)
        np.testing.assert_array_equal(value, np.eye(3))
        # The coordinator's channel stays open: the worker must not wait for it to go.
        code, elapsed, stderr = _stop(process, signum)
        client.close()
    assert code == 0, stderr
    assert elapsed < EXIT_TIMEOUT
    assert "Traceback" not in stderr
    assert f"signal {int(signum)}: stopping" in stderr
    assert "tenant op" not in stderr  # requests are logged at DEBUG only


def test_address_line_is_the_first_stdout_line(tmp_path):
    command = [sys.executable, "-m", "fedla", "worker", "--port", "0", "--data-dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _read_line(process.stdout, START_TIMEOUT)
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert line.startswith("fedla worker listening on 127.0.0.1:")
    assert f"(data dir {tmp_path.resolve()})" in line
    assert stdout == ""  # nothing else on stdout: logs go to stderr
    assert process.returncode == 0


def test_debug_logging_logs_each_request(tmp_path):
    args = ("--allow-module", "tests.udfs")
    with worker_process(tmp_path, *args, log_level="DEBUG") as (process, address):
        client = WorkerClient(address, timeout=30)
        client.execute("debug-tenant", [Put("alpha", np.ones(3)), Get("alpha")])
        client.execute_all("debug-tenant", [Get("never-made")])
        (total,) = client.execute("debug-tenant", [ExecUdf("tests.udfs:total", ("alpha",))])
        assert total == 3.0  # --allow-module tests.udfs took effect
        code, _, stderr = _stop(process, signal.SIGTERM)
        client.close()
    assert code == 0
    assert "DEBUG fedla.runtime.worker.request_handler" in stderr
    assert "tenant debug-tenant: request #0 PUT -> 'alpha'" in stderr
    assert "tenant debug-tenant: request #1 GET 'alpha'" in stderr
    assert "tenant debug-tenant: request #0 GET 'never-made'" in stderr
    assert "tenant debug-tenant: request #0 EXEC_UDF 'tests.udfs:total'" in stderr


def test_worker_stops_while_a_client_streams(tmp_path):
    """SIGTERM during traffic: the worker still exits 0 within the grace period."""
    with worker_process(tmp_path) as (process, address):
        client = WorkerClient(address, timeout=30)
        stop = threading.Event()
        errors: list[BaseException] = []

        def traffic() -> None:
            value = np.ones(500_000)
            while not stop.is_set():
                try:
                    client.execute("busy", [Put("x", value), Get("x")])
                except Exception as exc:  # noqa: BLE001 - the worker goes away mid-call
                    errors.append(exc)
                    return

        thread = threading.Thread(target=traffic)
        thread.start()
        time.sleep(0.3)
        code, elapsed, stderr = _stop(process, signal.SIGTERM)
        stop.set()
        thread.join(30)
        client.close()
    assert code == 0, stderr
    assert elapsed < EXIT_TIMEOUT
    assert not thread.is_alive()
    # A call cut off by the shutdown fails as a fedla error, not a raw gRPC one.
    assert all(isinstance(exc, FedlaError) for exc in errors), errors


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedla", *args], capture_output=True, text=True, timeout=60
    )


def test_missing_data_dir_argument_is_a_usage_error():
    result = _run_cli("worker", "--port", "0")
    assert result.returncode == 2
    assert "the following arguments are required: --data-dir" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_data_dir_that_is_not_a_directory(tmp_path, kind):
    path = tmp_path / "nowhere"
    if kind == "file":
        path.write_text("not a directory")
    result = _run_cli("worker", "--port", "0", "--data-dir", str(path))
    assert result.returncode != 0
    assert result.stdout == ""  # never claimed to listen
    problem = "does not exist" if kind == "missing" else "is not a directory"
    assert f"data directory {str(path)!r} {problem}" in result.stderr


def test_port_in_use_is_refused(tmp_path):
    with worker_process(tmp_path) as (process, address):
        port = address.rsplit(":", 1)[1]
        result = _run_cli("worker", "--port", port, "--data-dir", str(tmp_path))
        _stop(process, signal.SIGTERM)
    assert result.returncode != 0
    assert f"cannot bind 127.0.0.1:{port}" in result.stderr
    assert result.stdout == ""


def test_port_held_by_another_program_is_refused(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = _run_cli("worker", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert f"cannot bind 127.0.0.1:{port}" in result.stderr
