"""The command line as the README shows it: global options after the subcommand, ``--version``,
``fedla status`` of several workers, refused requests logged at INFO, and local workers that do
not outlive a coordinator killed with SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import fedla as fl
from fedla.runtime.worker.server import LISTENING_PREFIX

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30


def _fedla(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fedla", *args], capture_output=True, text=True,
                          timeout=60)


@contextmanager
def _worker(data_dir: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``fedla worker --port 0 --data-dir D ARGS`` (options after the subcommand)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fedla", "worker", "--port", "0", "--data-dir", str(data_dir),
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(LISTENING_PREFIX), line
        yield process, line[len(LISTENING_PREFIX):].split()[0]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _refuse_a_read(address: str) -> None:
    with fl.Context(workers=[address]) as ctx, pytest.raises(fl.AccessDeniedError):
        ctx.federated([f"{address}/../outside.csv"])


def test_version() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    expected = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE).group(1)
    result = _fedla("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fedla {expected}"


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_log_level_after_the_subcommand_applies(tmp_path: Path, level: str) -> None:
    with _worker(tmp_path, "--log-level", level) as (process, address):
        _refuse_a_read(address)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT)
    refused = [line for line in stderr.splitlines() if "refused request #0 READ" in line]
    if level == "INFO":  # a refusal is logged at INFO, with the request and the reason
        assert len(refused) == 1 and " INFO fedla.runtime.worker.request_handler" in refused[0]
        assert "'../outside.csv'" in refused[0]
    else:
        assert refused == []
        assert " INFO " not in stderr


def test_log_level_before_the_subcommand_still_applies(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fedla", "--log-level", "WARNING", "worker", "--port", "0",
         "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().startswith(LISTENING_PREFIX)  # type: ignore[union-attr]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert "signal 15: stopping" not in stderr  # an INFO line


def test_status_of_several_workers(tmp_path: Path) -> None:
    with _worker(tmp_path) as (_, first), _worker(tmp_path) as (_, second):
        result = _fedla("status", first, second, "--log-level", "WARNING")
        assert result.returncode == 0, result.stderr
        headers = [line for line in result.stdout.splitlines() if line.startswith("worker ")]
        assert len(headers) == 2
        assert headers[0].startswith(f"worker {first}: up ")
        assert headers[1].startswith(f"worker {second}: up ")
        closed = _fedla("status", first, "127.0.0.1:1")
        assert closed.returncode == 1
        assert f"worker {first}:" in closed.stdout
        assert "fedla status:" in closed.stdout and "127.0.0.1:1" in closed.stdout


COORDINATOR = textwrap.dedent("""
    import time
    import fedla as fl
    ctx = fl.Context(local_workers=2)
    print(" ".join(str(p.pid) for p in ctx._pool.processes), flush=True)
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().split(")")[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_workers_exit_when_their_coordinator_is_killed() -> None:
    coordinator = subprocess.Popen([sys.executable, "-c", COORDINATOR], stdout=subprocess.PIPE,
                                   text=True, cwd=ROOT)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(coordinator.stdout.readline()),
                              daemon=True)
    reader.start()
    reader.join(TIMEOUT)
    pids = [int(pid) for pid in line[0].split()]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    coordinator.kill()  # SIGKILL: no atexit, no finalizer, no Context.close
    coordinator.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids)
