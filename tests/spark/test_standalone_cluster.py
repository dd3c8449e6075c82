"""A standalone Spark cluster on 127.0.0.1 (a master and one worker, started with pyspark's own
``spark-class`` launcher): lm on Spark-backed data and paramserv REMOTE_SPARK through
``spark://``, run by a separate driver process (``standalone_job.py``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedla.algorithms import lm

pytestmark = pytest.mark.spark

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as reply:
            state = json.load(reply)
    except OSError:
        return 0
    return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")


@pytest.fixture(scope="module")
def master(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``spark://127.0.0.1:PORT`` of a master with one 2-core worker (the ``spark`` fixture
    only makes this skip, with its reason, where Spark cannot start)."""
    logs = tmp_path_factory.mktemp("standalone")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_WORKER_DIR": str(logs / "work")}
    port, ui_port = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    processes = []
    try:
        processes.append(subprocess.Popen(
            [str(spark_class()), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(ui_port)],
            stdout=open(logs / "master.log", "wb"), stderr=subprocess.STDOUT, env=env))
        processes.append(subprocess.Popen(
            [str(spark_class()), "org.apache.spark.deploy.worker.Worker", url, "--host",
             "127.0.0.1", "--cores", "2", "--memory", "2g", "--webui-port", str(free_port())],
            stdout=open(logs / "worker.log", "wb"), stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while alive_workers(ui_port) < 1:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                pytest.fail(f"the standalone cluster did not come up; see the logs in {logs}")
            time.sleep(1)
        yield url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def test_lm_and_remote_spark_through_a_spark_master(master: str) -> None:
    result = subprocess.run([sys.executable, str(Path(__file__).parent / "standalone_job.py"),
                             master], capture_output=True, text=True, timeout=400,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["master"] == master
    X, y = np.array(report["X"]), np.array(report["y"])
    np.testing.assert_allclose(report["beta"], lm(X, y, icpt=1), rtol=1e-8, atol=1e-12)
    assert report["accuracy"][-1] >= 0.9, report["accuracy"]
