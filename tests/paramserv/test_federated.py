"""paramserv FEDERATED on three real loopback workers: the same math as LOCAL, where the data is.

References: LOCAL runs of the same seed (bit for bit under BSP), FedAvg rounds written out by
hand in numpy, and test accuracy on scikit-learn's digits.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import fedla as fl
from fedla.algorithms.nn import cnn, ffn
from fedla.algorithms.nn.labels import one_hot
from fedla.local_workers import LocalWorkerPool
from fedla.paramserv import WorkerFailedError
from fedla.runtime.errors import InvalidArgumentError
from tests.paramserv.splits import sorted_by_label
from tests.udfs import LEAST_SQUARES

pytest.importorskip("sklearn")

UTYPES = ["BSP", "ASP", "SSP", "SBP"]
FREQS = ["BATCH", "EPOCH", "NBATCHES"]


def _sizes(n: int, k: int = 3) -> list[int]:
    return [len(part) for part in np.array_split(np.arange(n), k)]


def _accuracy(model, predict, X, y) -> float:
    return float((predict(model, X).argmax(axis=1) == y).mean())


def test_bsp_batch_equals_local_on_a_contiguous_split(ctx, digits):
    X, y, _, _ = digits
    Y = one_hot(y, 10)
    kwargs = dict(upd=ffn.UPD, agg=ffn.AGG, utype="BSP", freq="BATCH", epochs=2, batchsize=64,
                  hyperparams={"optimizer": "adam", "lr": 3e-3}, seed=11, progress=False)
    local = fl.paramserv(ffn.init(64, 10, (32,), seed=0), X, Y, k=3, **kwargs)
    X_fed = ctx.scatter(X, sizes=_sizes(len(X)))
    federated = fl.paramserv(ffn.init(64, 10, (32,), seed=0), X_fed, ctx.scatter(Y, like=X_fed),
                             **kwargs)
    assert len(federated) == len(local)
    for a, b in zip(federated, local):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    history = federated.history
    assert history.sites == [str(b.site) for b in X_fed.node.layout.blocks]
    assert len(history.round_seconds) == history.updates == local.history.updates
    assert all(sites == [0, 1, 2] for sites in history.round_sites[:5])
    model_bytes = sum(a.nbytes for a in ffn.init(64, 10, (32,), seed=0))
    assert history.bytes_down[0] == 3 * model_bytes  # the model to each site once per round
    gradient_bytes = sum(a.nbytes for a in ffn.init(64, 10, (32,), seed=0)[:4])
    assert history.bytes_up[0] == 3 * gradient_bytes  # only gradients come back


@pytest.mark.parametrize("weighting", [True, False])
def test_one_fedavg_round_matches_a_hand_computed_average(ctx, weighting):
    rng = np.random.default_rng(0)
    sizes = [10, 20, 30]
    X = rng.normal(size=(60, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = [np.zeros((3, 1)), np.zeros((1, 1))]
    lr = 0.2
    X_fed = ctx.scatter(X, sizes=sizes)
    trained = fl.paramserv(model, X_fed, ctx.scatter(y, like=X_fed), **LEAST_SQUARES, utype="BSP",
                           freq="EPOCH", epochs=1, batchsize=30, hyperparams={"lr": lr},
                           weighting=weighting, seed=0, progress=False)
    deltas, bounds = [], np.cumsum([0, *sizes])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        Xs, ys = X[lo:hi], y[lo:hi]
        err = Xs @ model[0] + model[1] - ys  # one local step per site (batch >= its rows)
        deltas.append([-lr * Xs.T @ err / len(Xs), -lr * err.mean(axis=0, keepdims=True)])
    weights = np.array(sizes, float) / sum(sizes) if weighting else np.full(3, 1 / 3)
    expected = [m + sum(w * d[i] for w, d in zip(weights, deltas)) for i, m in enumerate(model)]
    for got, want in zip(trained, expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_labels_split_differently_are_realigned_once(ctx, digits):
    X, y, _, _ = digits
    Y = one_hot(y, 10)
    kwargs = dict(upd=ffn.UPD, agg=ffn.AGG, epochs=1, batchsize=64, seed=3, progress=False,
                  hyperparams={"lr": 0.1})
    X_fed = ctx.scatter(X, sizes=_sizes(len(X)))
    aligned = fl.paramserv(ffn.init(64, 10, (16,), seed=0), X_fed, ctx.scatter(Y, like=X_fed),
                           **kwargs)
    misaligned = ctx.scatter(Y, sizes=[100, 1000, len(Y) - 1100])
    realigned = fl.paramserv(ffn.init(64, 10, (16,), seed=0), X_fed, misaligned, **kwargs)
    from_numpy = fl.paramserv(ffn.init(64, 10, (16,), seed=0), X_fed, Y, **kwargs)
    for a, b, c in zip(aligned, realigned, from_numpy):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("freq", FREQS)
@pytest.mark.parametrize("utype", UTYPES)
def test_every_update_strategy_converges(ctx, digits, utype, freq):
    X_train, y_train, X_test, y_test = digits
    X_fed = ctx.scatter(X_train)
    model = fl.paramserv(
        ffn.init(64, 10, (64,), seed=0), X_fed, one_hot(y_train, 10), upd=ffn.UPD,
        agg=ffn.AGG, utype=utype, freq=freq, epochs=6, batchsize=32, nbatches=4, staleness=2,
        num_backup_workers=1, hyperparams={"optimizer": "adam", "lr": 3e-3}, seed=0,
        val_features=X_test, val_labels=one_hot(y_test, 10), progress=False,
    )
    assert model.history.val_accuracy[-1] >= 0.90, model.history.val_accuracy
    assert len(model.history.epoch) == 6


@pytest.mark.parametrize("split", ["iid", "non-iid"])
def test_ffn_reaches_93_percent(ctx, digits, split):
    X_train, y_train, X_test, y_test = digits
    if split == "non-iid":
        X_train, y_train = sorted_by_label(X_train, y_train)
    X_fed = ctx.scatter(X_train)
    model = fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_fed, one_hot(y_train, 10),
                         upd=ffn.UPD, agg=ffn.AGG, freq="NBATCHES", nbatches=2, epochs=20,
                         batchsize=32, hyperparams={"optimizer": "adam", "lr": 3e-3}, seed=0,
                         progress=False)
    assert _accuracy(model, ffn.predict, X_test, y_test) >= 0.93


@pytest.mark.parametrize("split", ["iid", "non-iid"])
def test_cnn_reaches_93_percent(ctx, digits, split):
    X_train, y_train, X_test, y_test = digits
    if split == "non-iid":
        X_train, y_train = sorted_by_label(X_train, y_train)
    X_fed = ctx.scatter(X_train)
    model = fl.paramserv(cnn.init(1, 8, 8, 10, F1=8, F2=16, N3=64, seed=0), X_fed,
                         one_hot(y_train, 10), upd=cnn.UPD, agg=cnn.AGG, epochs=8,
                         batchsize=32, scheme="SHUFFLE", seed=0, progress=False,
                         hyperparams={"optimizer": "adam", "lr": 3e-3, "keep_prob": 0.75,
                                      "C": 1, "Hin": 8, "Win": 8})
    assert _accuracy(model, cnn.predict, X_test, y_test) >= 0.93


@pytest.mark.parametrize("scheme", ["KEEP_DATA_ON_WORKER", "SHUFFLE", "REPLICATE_TO_MAX",
                                    "SUBSAMPLE_TO_MIN", "BALANCE_TO_AVG"])
def test_every_federated_scheme_converges(ctx, digits, scheme):
    X_train, y_train, X_test, y_test = digits
    X_fed = ctx.scatter(X_train, sizes=[300, 500, len(X_train) - 800])
    model = fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_fed, one_hot(y_train, 10),
                         upd=ffn.UPD, agg=ffn.AGG, scheme=scheme, epochs=5, batchsize=32,
                         hyperparams={"optimizer": "adam", "lr": 3e-3}, seed=0, progress=False)
    assert _accuracy(model, ffn.predict, X_test, y_test) >= 0.90
    samples = {"KEEP_DATA_ON_WORKER": len(X_train), "SHUFFLE": len(X_train),
               "REPLICATE_TO_MAX": 3 * (len(X_train) - 800), "SUBSAMPLE_TO_MIN": 900,
               "BALANCE_TO_AVG": len(X_train)}[scheme]
    assert model.history.samples[0] == samples


@pytest.mark.parametrize("balancing", ["NONE", "BASELINE", "CYCLE_MIN", "CYCLE_AVG",
                                       "CYCLE_MAX", "SCALE_BATCH"])
@pytest.mark.parametrize("utype", ["BSP", "ASP"])
def test_balancing_on_a_1_to_5_uneven_split_finishes_and_converges(ctx, digits, balancing,
                                                                   utype):
    X_train, y_train, X_test, y_test = digits
    small = len(X_train) // 11
    X_fed = ctx.scatter(X_train, sizes=[small, 5 * small, len(X_train) - 6 * small])
    model = fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_fed, one_hot(y_train, 10),
                         upd=ffn.UPD, agg=ffn.AGG, utype=utype, balancing=balancing, epochs=8,
                         batchsize=32, hyperparams={"optimizer": "adam", "lr": 1e-2}, seed=0,
                         progress=False)
    assert len(model.history.epoch) == 8
    assert _accuracy(model, ffn.predict, X_test, y_test) >= 0.80  # chance: 0.10
    batches = [-(-n // 32) for n in (small, 5 * small, len(X_train) - 6 * small)]
    per_epoch = {"NONE": sum(batches), "BASELINE": 3 * min(batches),
                 "CYCLE_MIN": 3 * min(batches), "CYCLE_AVG": 3 * round(np.mean(batches)),
                 "CYCLE_MAX": 3 * max(batches), "SCALE_BATCH": 3 * round(np.mean(batches))}
    pushes = sum(len(r) for r in model.history.round_sites)
    assert pushes == 8 * per_epoch[balancing]


def test_invalid_inputs_get_clear_errors(ctx, digits):
    X, y, _, _ = digits
    X_fed = ctx.scatter(X)
    model = ffn.init(64, 10, (8,), seed=0)
    common = dict(upd=ffn.UPD, agg=ffn.AGG, epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="one-hot"):
        fl.paramserv(model, X_fed, y.reshape(-1, 1).astype(float), **common)
    with pytest.raises(InvalidArgumentError, match="one-hot"):
        fl.paramserv(model, X, y.reshape(-1, 1).astype(float), **common)  # LOCAL too
    with pytest.raises(InvalidArgumentError, match="one-hot encoded with 10 columns"):
        fl.paramserv(model, X_fed, one_hot(y % 3, 3), **common)
    Y = one_hot(y, 10)
    with pytest.raises(InvalidArgumentError, match="did you mean 'optimizer'"):
        fl.paramserv(model, X_fed, Y, hyperparams={"optimiser": "adam"}, **common)
    with pytest.raises(InvalidArgumentError, match="'learning_rate'"):
        fl.paramserv(model, X, Y, hyperparams={"learning_rate": 0.1}, **common)
    X_nan = X.copy()
    X_nan[5, 3] = np.nan
    X_nan[7, 1] = np.inf
    with pytest.raises(InvalidArgumentError, match="2 NaN or infinite"):
        fl.paramserv(model, ctx.scatter(X_nan), Y, **common)
    with pytest.raises(InvalidArgumentError, match="NaN or infinite"):
        fl.paramserv(model, X_nan, Y, **common)
    with pytest.raises(InvalidArgumentError, match="--allow-module"):
        fl.paramserv(model, X_fed, Y, upd=_local_gradients, agg=ffn.AGG, epochs=1)
    with pytest.raises(InvalidArgumentError, match="not a computed expression"):
        fl.paramserv(model, X_fed * 2, Y, **common)
    with pytest.raises(InvalidArgumentError, match="'FEDERATED' for federated features"):
        fl.paramserv(model, X_fed, Y, mode="LOCAL", **common)
    with pytest.raises(InvalidArgumentError, match="KEEP_DATA_ON_WORKER"):
        fl.paramserv(model, X_fed, Y, scheme="DISJOINT_RANDOM", **common)
    with pytest.raises(InvalidArgumentError, match="k=2 should be the number of row blocks"):
        fl.paramserv(model, X_fed, Y, k=2, **common)


def _local_gradients(model, hyperparams, X, y):
    return ffn.gradients(model, hyperparams, X, y)


def test_a_site_refusing_the_function_names_the_site(ctx, digits):
    X, y, _, _ = digits
    X_fed = ctx.scatter(X)
    with pytest.raises(WorkerFailedError, match=r"site 127\.0\.0\.1:\d+ .*not a registered"):
        fl.paramserv(ffn.init(64, 10, (8,), seed=0), X_fed, one_hot(y, 10),
                     upd="fedla.algorithms.nn.ffn:predict", agg=ffn.AGG, epochs=1,
                     progress=False)


def _slow_problem(n_per_site: int = 40):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3 * n_per_site, 3))
    X[:, 0] = 1.0  # every batch sleeps "delay": the run lasts long enough to kill a site
    y = X @ np.array([[0.5], [1.0], [-1.0]])
    return X, y


@pytest.mark.parametrize("utype", ["BSP", "ASP"])
def test_killing_a_site_mid_run(utype):
    X, y = _slow_problem()
    with LocalWorkerPool(3, allow_modules=("tests.udfs",)) as pool, \
            fl.Context(workers=pool.addresses) as ctx:
        X_fed = ctx.scatter(X)
        victim = pool.processes[1]
        killer = threading.Timer(1.0, victim.kill)
        killer.start()
        started = time.perf_counter()
        try:
            if utype == "BSP":
                with pytest.raises(WorkerFailedError) as failure:
                    fl.paramserv([np.zeros((3, 1)), np.zeros((1, 1))], X_fed,
                                 ctx.scatter(y, like=X_fed), **LEAST_SQUARES, utype=utype,
                                 epochs=40, batchsize=10, hyperparams={"delay": 0.02, "lr": 0.05},
                                 seed=0, progress=False)
                error = failure.value
                assert error.site == pool.addresses[1]
                assert f"site {pool.addresses[1]}" in str(error) and "round" in str(error)
                assert [a.shape for a in error.model] == [(3, 1), (1, 1)]
            else:
                model = fl.paramserv([np.zeros((3, 1)), np.zeros((1, 1))], X_fed,
                                     ctx.scatter(y, like=X_fed), **LEAST_SQUARES, utype=utype,
                                     epochs=40, batchsize=10,
                                     hyperparams={"delay": 0.02, "lr": 0.05}, seed=0,
                                     progress=False)
                failures = model.history.failures
                assert [f[1] for f in failures] == [1]
                assert len(model.history.epoch) == 40
                late = model.history.round_sites[failures[0][0]:]
                assert late and all(sites == [0] or sites == [2] for sites in late)
        finally:
            killer.cancel()
        assert time.perf_counter() - started < 60


def test_resuming_from_a_checkpoint_continues_the_same_trajectory(ctx, digits, tmp_path):
    X, y, _, _ = digits
    X_fed = ctx.scatter(X)
    Y_fed = ctx.scatter(one_hot(y, 10), like=X_fed)
    kwargs = dict(upd=ffn.UPD, agg=ffn.AGG, freq="EPOCH", batchsize=32, epochs=4, seed=0,
                  hyperparams={"lr": 0.1}, progress=False, checkpoint_dir=tmp_path)
    full = fl.paramserv(ffn.init(64, 10, (), seed=0), X_fed, Y_fed, **kwargs)
    for later in sorted(tmp_path.iterdir())[2:]:  # as if the run had stopped after 2 epochs
        later.unlink()
    resumed = fl.paramserv(ffn.init(64, 10, (), seed=0), X_fed, Y_fed, resume=True, **kwargs)
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a, b)
    assert resumed.history.resumed_from == 2 and len(resumed.history.round_seconds) == 4


def test_history_separates_the_sites_training_time_from_the_round(ctx):
    X, y = _slow_problem(n_per_site=40)
    X_fed = ctx.scatter(X)
    delay = 0.05  # every batch of every site sleeps this long: 4 batches per site and round
    model = fl.paramserv([np.zeros((3, 1)), np.zeros((1, 1))], X_fed, ctx.scatter(y, like=X_fed),
                         **LEAST_SQUARES, freq="EPOCH", epochs=3, batchsize=10,
                         hyperparams={"delay": delay, "lr": 0.05}, seed=0, progress=False)
    history = model.history
    assert len(history.round_compute_seconds) == len(history.round_seconds) == 3
    for compute, total in zip(history.round_compute_seconds, history.round_seconds):
        assert 4 * delay <= compute < 4 * delay + 0.5
        assert compute < total
