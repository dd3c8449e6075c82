"""paramserv LOCAL end to end: every utype x freq, determinism, SSP clocks, SBP drops,
checkpoints and resume, failing and dying workers, schemes, progress bar."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

import fedla as fl
from fedla.algorithms.nn import cnn, ffn
from fedla.algorithms.nn.labels import one_hot
from fedla.paramserv import WorkerFailedError
from tests.paramserv import toy_functions as toy

pytest.importorskip("sklearn")

UTYPES = ["BSP", "ASP", "SSP", "SBP"]
FREQS = ["BATCH", "EPOCH", "NBATCHES"]
TOY = {"upd": f"{toy.REF}:gradients", "agg": f"{toy.REF}:aggregate"}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.2,
                                                        random_state=0)
    return X_train, one_hot(y_train, 10), X_test, one_hot(y_test, 10)


@pytest.fixture
def shared_blocks(monkeypatch):
    """Names of the shared-memory blocks paramserv creates during the test."""
    from fedla.paramserv import local_executor

    names = []
    share = local_executor._share

    def recording_share(array):
        shm, spec = share(array)
        names.append(shm.name)
        return shm, spec

    monkeypatch.setattr(local_executor, "_share", recording_share)
    return names


def released(names):
    """True when none of the named shared-memory blocks exists any more."""
    from multiprocessing.shared_memory import SharedMemory

    for name in names:
        try:
            SharedMemory(name=name).close()
        except FileNotFoundError:
            continue
        return False
    return True


@pytest.mark.parametrize("freq", FREQS)
@pytest.mark.parametrize("utype", UTYPES)
def test_every_update_strategy_converges(digits, utype, freq):
    X_train, Y_train, X_test, Y_test = digits
    k = 3 if utype == "SBP" else 2  # SBP: a round of 2 with 1 backup worker
    model = fl.paramserv(
        ffn.init(64, 10, (64,), seed=0), X_train, Y_train, upd=ffn.UPD, agg=ffn.AGG,
        utype=utype, freq=freq, epochs=6, batchsize=32, k=k, nbatches=4, staleness=2,
        num_backup_workers=1, hyperparams={"optimizer": "adam", "lr": 3e-3}, seed=0,
        val_features=X_test, val_labels=Y_test,
    )
    assert model.history.val_accuracy[-1] >= 0.90, model.history.val_accuracy
    assert len(model.history.epoch) == 6 and model.history.updates > 0


def test_bsp_is_deterministic_given_a_seed(digits):
    X_train, Y_train, _, _ = digits
    X_small, Y_small = X_train[:400], Y_train[:400]
    runs = [
        fl.paramserv(cnn.init(1, 8, 8, 10, F1=4, F2=4, N3=16, seed=1), X_small, Y_small,
                     upd=cnn.UPD, agg=cnn.AGG, utype="BSP", epochs=2, batchsize=16, k=2,
                     scheme="DISJOINT_RANDOM", hyperparams={"optimizer": "adam"}, seed=3)
        for _ in range(2)
    ]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)  # bit for bit, dropout masks included
    other = fl.paramserv(cnn.init(1, 8, 8, 10, F1=4, F2=4, N3=16, seed=1), X_small, Y_small,
                         upd=cnn.UPD, agg=cnn.AGG, epochs=2, batchsize=16, k=2,
                         scheme="DISJOINT_RANDOM", hyperparams={"optimizer": "adam"}, seed=4)
    assert not np.array_equal(other[0], runs[0][0])


def test_ssp_bounds_the_recorded_clocks():
    X, y, model = toy.problem(n=80, marker=1)  # worker 1's rows are slow
    result = fl.paramserv(model, X, y, upd=f"{toy.REF}:slow_gradients", agg=TOY["agg"],
                          utype="SSP", staleness=1, epochs=2, batchsize=2, k=2,
                          hyperparams={"delay": 0.01, "lr": 0.05}, seed=0)
    log = result.history.clock_log
    assert {entry[0] for entry in log} == {0, 1}  # epochs
    assert max(clock - slowest for _, _, clock, slowest in log) == 1
    assert result.history.max_clock_gap == 1 and result.history.blocked > 0
    asp = fl.paramserv(model, X, y, upd=f"{toy.REF}:slow_gradients", agg=TOY["agg"],
                       utype="ASP", epochs=1, batchsize=2, k=2,
                       hyperparams={"delay": 0.01, "lr": 0.05}, seed=0)
    assert max(clock - slowest for _, _, clock, slowest in asp.history.clock_log) > 5


def test_sbp_drops_the_stragglers_updates():
    X, y, model = toy.problem(n=120, marker=1, marked_from=2 / 3)  # worker 2 of 3 is slow
    result = fl.paramserv(model, X, y, upd=f"{toy.REF}:slow_gradients", agg=TOY["agg"],
                          utype="SBP", num_backup_workers=1, epochs=1, batchsize=4, k=3,
                          hyperparams={"delay": 0.08, "fast_delay": 0.03}, seed=0)
    assert result.history.dropped_updates > 0
    assert result.history.updates < 30


@pytest.mark.parametrize("scheme", ["DISJOINT_CONTIGUOUS", "DISJOINT_ROUND_ROBIN",
                                    "DISJOINT_RANDOM", "OVERLAP_RESHUFFLE"])
def test_schemes_fit_a_linear_model(scheme):
    X, y, model = toy.problem(n=200)
    result = fl.paramserv(model, X, y, **TOY, scheme=scheme, epochs=5, batchsize=8, k=2,
                          hyperparams={"lr": 0.1}, seed=0, val_features=X, val_labels=y,
                          val=f"{toy.REF}:validate")
    np.testing.assert_allclose(result[0].ravel(), [1, 2, 3], atol=0.02)
    np.testing.assert_allclose(result[1], 0.5, atol=0.02)
    samples = 200 * (2 if scheme == "OVERLAP_RESHUFFLE" else 1)
    assert result.history.samples == [samples] * 5


def test_resume_continues_the_same_trajectory(digits, tmp_path):
    X_train, Y_train, X_test, Y_test = digits
    args = dict(upd=ffn.UPD, agg=ffn.AGG, utype="BSP", batchsize=32, k=2,
                scheme="DISJOINT_RANDOM", hyperparams={"optimizer": "adam"}, seed=5,
                val_features=X_test, val_labels=Y_test)
    init = ffn.init(64, 10, (32,), seed=0)
    full = fl.paramserv(init, X_train, Y_train, epochs=4, checkpoint_dir=tmp_path / "full",
                        **args)
    assert sorted(os.listdir(tmp_path / "full")) == [f"paramserv-epoch-000{e}.npz"
                                                      for e in (1, 2, 3, 4)]
    first = fl.paramserv(init, X_train, Y_train, epochs=2, checkpoint_dir=tmp_path / "cut",
                         **args)
    resumed = fl.paramserv(init, X_train, Y_train, epochs=4, checkpoint_dir=tmp_path / "cut",
                           resume=True, **args)
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a, b)
    assert resumed.history.epoch == [1, 2, 3, 4] and resumed.history.resumed_from == 2
    assert resumed.history.val_loss == full.history.val_loss
    assert first.history.val_loss == full.history.val_loss[:2]
    again = fl.paramserv(init, X_train, Y_train, epochs=4,
                         resume=tmp_path / "full" / "paramserv-epoch-0004.npz", **args)
    for a, b in zip(full, again):  # nothing left to do: the checkpoint's model comes back
        np.testing.assert_array_equal(a, b)


def test_resume_with_changed_settings_warns(tmp_path):
    X, y, model = toy.problem(n=40)
    fl.paramserv(model, X, y, **TOY, epochs=1, batchsize=8, k=2, seed=0,
                 checkpoint_dir=tmp_path)
    with pytest.warns(UserWarning, match="batchsize 8 -> 4"):
        fl.paramserv(model, X, y, **TOY, epochs=2, batchsize=4, k=2, seed=0,
                     checkpoint_dir=tmp_path, resume=True)


def test_resume_without_a_checkpoint_starts_afresh(tmp_path):
    X, y, model = toy.problem(n=40)
    result = fl.paramserv(model, X, y, **TOY, epochs=1, batchsize=8, k=2, seed=0,
                          checkpoint_dir=tmp_path / "empty", resume=True)
    assert result.history.epoch == [1] and result.history.resumed_from is None


def test_an_exception_in_a_worker_is_raised_with_its_traceback(shared_blocks):
    X, y, model = toy.problem(n=40, marker=-1)
    with pytest.raises(WorkerFailedError, match=r"worker 1 .* failed in epoch 1: ValueError: "
                                                 r"this batch is poisoned") as info:
        fl.paramserv(model, X, y, upd=f"{toy.REF}:failing_gradients", agg=TOY["agg"],
                     epochs=2, batchsize=4, k=2, seed=0)
    assert isinstance(info.value.__cause__, ValueError)
    assert "failing_gradients" in str(info.value.__cause__.__cause__)  # the remote traceback
    assert len(shared_blocks) == 2 and released(shared_blocks)


@pytest.mark.skipif(sys.platform == "win32", reason="os._exit semantics")
def test_a_dying_worker_fails_the_run_clearly(shared_blocks):
    X, y, model = toy.problem(n=40, marker=-1)
    with pytest.raises(WorkerFailedError, match=r"worker 1 \(pid \d+\) died \(exit code 3\)"):
        fl.paramserv(model, X, y, upd=f"{toy.REF}:dying_gradients", agg=TOY["agg"],
                     epochs=2, batchsize=4, k=2, seed=0)
    assert len(shared_blocks) == 2 and released(shared_blocks)


def test_callables_are_accepted_and_history_is_complete():
    X, y, model = toy.problem(n=48)
    result = fl.paramserv(model, X, y, upd=toy.gradients, agg=toy.aggregate, epochs=3,
                          batchsize=8, k=2, seed=0)
    assert isinstance(result, list) and len(result) == 2
    history = result.history
    assert history.epoch == [1, 2, 3] and all(math.isnan(v) for v in history.val_loss)
    assert history.samples == [48] * 3 and history.updates == 9 and history.seed == 0
    assert history.samples_per_second > 0
    assert history.to_dict()["updates"] == 9


def test_progress_bar_shows_validation_metrics(capsys):
    X, y, model = toy.problem(n=32)
    fl.paramserv(model, X, y, **TOY, epochs=2, batchsize=8, k=2, seed=0, val_features=X,
                 val_labels=y, val=f"{toy.REF}:validate", progress=True)
    err = capsys.readouterr().err
    assert "paramserv BSP/BATCH k=2" in err and "val_loss" in err and "val_acc" in err
