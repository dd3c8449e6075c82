"""A FEDERATED site that dies and is restarted rejoins the training (real worker processes).

The sites READ their data from files in their data directory, as a real deployment does, so a
restarted worker can read them again. The reference is the closed-form least-squares solution
the run must still reach, and the history's record of who trained in which round.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fedla as fl
from fedla.runtime.worker.server import LISTENING_PREFIX
from tests.udfs import LEAST_SQUARES

ROWS_PER_SITE = 40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_worker(port: int, data_dir: Path) -> subprocess.Popen[str]:
    """A ``fedla worker`` on ``port``; returns once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fedla", "--log-level", "WARNING", "worker", "--port", str(port),
         "--data-dir", str(data_dir), "--allow-module", "tests.udfs",
         "--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1",
                                                    OPENBLAS_NUM_THREADS="1"))
    line = process.stdout.readline()  # type: ignore[union-attr]
    assert line.startswith(LISTENING_PREFIX), (line, process.poll())
    return process


@pytest.fixture()
def three_sites(tmp_path):
    """Three workers on fixed ports, each with its rows in ``site<i>_X.npy``/``_y.npy``."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3 * ROWS_PER_SITE, 3))
    X[:, 0] = 1.0  # every batch sleeps "delay": the run lasts long enough to kill a site
    y = X @ np.array([[0.5], [1.0], [-1.0]])
    for site in range(3):
        rows = slice(site * ROWS_PER_SITE, (site + 1) * ROWS_PER_SITE)
        np.save(tmp_path / f"site{site}_X.npy", X[rows])
        np.save(tmp_path / f"site{site}_y.npy", y[rows])
    ports = [_free_port() for _ in range(3)]
    processes = [_start_worker(port, tmp_path) for port in ports]
    yield X, y, ports, processes, tmp_path
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()  # type: ignore[union-attr]


def _restart_later(processes, ports, data_dir, victim, kill_at, restart_at):
    """Kill worker ``victim`` after ``kill_at`` s, start it again on its port at ``restart_at``."""
    def run() -> None:
        time.sleep(kill_at)
        processes[victim].kill()
        processes[victim].wait()
        processes[victim].stdout.close()
        time.sleep(restart_at - kill_at)
        processes[victim] = _start_worker(ports[victim], data_dir)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _read_sites(ctx, ports):
    X_fed = ctx.federated([f"127.0.0.1:{p}/site{i}_X.npy" for i, p in enumerate(ports)])
    y_fed = ctx.federated([f"127.0.0.1:{p}/site{i}_y.npy" for i, p in enumerate(ports)])
    return X_fed, y_fed


@pytest.mark.parametrize("utype,options", [("ASP", {}), ("SSP", {"staleness": 1}),
                                           ("BSP", {"fraction": 0.67})],
                         ids=["ASP", "SSP", "BSP-sampled"])
def test_a_restarted_site_rejoins_at_the_next_epoch(three_sites, utype, options):
    X, y, ports, processes, data_dir = three_sites
    epochs = 70
    with fl.Context(workers=[f"127.0.0.1:{p}" for p in ports]) as ctx:
        X_fed, y_fed = _read_sites(ctx, ports)
        restarter = _restart_later(processes, ports, data_dir, victim=1, kill_at=1.0,
                                   restart_at=1.5)
        model = fl.paramserv([np.zeros((3, 1)), np.zeros((1, 1))], X_fed, y_fed, **LEAST_SQUARES,
                             utype=utype, freq="EPOCH", epochs=epochs, batchsize=10,
                             hyperparams={"delay": 0.02, "lr": 0.1}, seed=0, progress=False,
                             **options)
        restarter.join()
    history = model.history
    assert [failure[1] for failure in history.failures] == [1]
    assert len(history.rejoins) == 1 and history.rejoins[0][1] == 1
    lost_round, back_epoch = history.failures[0][0], history.rejoins[0][0]
    assert back_epoch < epochs - 5  # came back with time to spare, so the check below means it
    trained_again = [sites for sites in history.round_sites[lost_round:] if 1 in sites]
    if utype == "BSP":  # one round per epoch, sampling round(0.67 * live sites)
        rounds = history.round_sites
        assert all(len(sites) == 2 for sites in rounds[:lost_round])
        assert all(sites in ([0], [2]) for sites in rounds[lost_round:back_epoch - 1])
        assert all(len(sites) == 2 for sites in rounds[back_epoch - 1:])
        assert trained_again
    else:  # one push per live site and epoch, each its own round
        assert len(trained_again) == epochs - back_epoch + 1
    assert len(history.epoch) == epochs
    np.testing.assert_allclose(X @ model[0] + model[1], y, atol=0.05)


def test_a_site_whose_file_changed_does_not_rejoin(three_sites):
    X, y, ports, processes, data_dir = three_sites
    with fl.Context(workers=[f"127.0.0.1:{p}" for p in ports]) as ctx:
        X_fed, y_fed = _read_sites(ctx, ports)

        def change_the_file() -> None:
            time.sleep(1.2)
            np.save(data_dir / "site1_X.npy", np.load(data_dir / "site1_X.npy") * 2)

        changer = threading.Thread(target=change_the_file, daemon=True)
        changer.start()
        restarter = _restart_later(processes, ports, data_dir, victim=1, kill_at=1.0,
                                   restart_at=1.5)
        model = fl.paramserv([np.zeros((3, 1)), np.zeros((1, 1))], X_fed, y_fed, **LEAST_SQUARES,
                             utype="ASP", freq="EPOCH", epochs=50, batchsize=10,
                             hyperparams={"delay": 0.02, "lr": 0.1}, seed=0, progress=False)
        restarter.join()
        changer.join()
    history = model.history
    assert [failure[1] for failure in history.failures] == [1]
    assert history.rejoins == []
    assert all(1 not in sites for sites in history.round_sites[history.failures[0][0]:])
