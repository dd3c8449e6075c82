"""A validation set held at the sites: scored there, only per-site means and counts come back.

Reference: scikit-learn's ``log_loss`` and ``accuracy_score`` of the final model on all the
validation rows together, and the same run validated on the rows in memory. The validation rows
are split unevenly, so an unweighted mean of the sites' values would not match.
"""

from __future__ import annotations

import numpy as np
import pytest

import fedla as fl
from fedla.algorithms.nn import ffn
from fedla.algorithms.nn.labels import one_hot
from fedla.local_workers import LocalWorkerPool
from fedla.paramserv.federated_data import site_partitions
from fedla.paramserv.federated_validation import FederatedValidation
from fedla.runtime.errors import InvalidArgumentError

pytest.importorskip("sklearn")

TRAINING = dict(upd=ffn.UPD, agg=ffn.AGG, utype="BSP", freq="EPOCH", epochs=3, batchsize=32,
                hyperparams={"optimizer": "adam", "lr": 3e-3}, seed=5, progress=False)


@pytest.mark.parametrize("labels", ["federated", "local array"])
def test_a_federated_validation_set_scores_as_all_its_rows_together(ctx, digits, labels):
    from sklearn.metrics import accuracy_score, log_loss

    X_train, y_train, X_test, y_test = digits
    Y_test = one_hot(y_test, 10)
    X_fed = ctx.scatter(X_train)
    Y_fed = ctx.scatter(one_hot(y_train, 10), like=X_fed)
    sizes = [40, 100, len(X_test) - 140]
    X_val = ctx.scatter(X_test, sizes=sizes)
    Y_val = ctx.scatter(Y_test, like=X_val) if labels == "federated" else Y_test

    at_sites = fl.paramserv(ffn.init(64, 10, (32,), seed=0), X_fed, Y_fed, val_features=X_val,
                            val_labels=Y_val, **TRAINING)
    here = fl.paramserv(ffn.init(64, 10, (32,), seed=0), X_fed, Y_fed, val_features=X_test,
                        val_labels=Y_test, **TRAINING)

    probabilities = ffn.predict(list(at_sites), X_test)
    assert at_sites.history.val_loss[-1] == pytest.approx(
        log_loss(y_test, probabilities, labels=range(10)), rel=1e-9)
    assert at_sites.history.val_accuracy[-1] == pytest.approx(
        accuracy_score(y_test, probabilities.argmax(axis=1)), rel=1e-12)
    np.testing.assert_allclose(at_sites.history.val_loss, here.history.val_loss, rtol=1e-12)
    np.testing.assert_allclose(at_sites.history.val_accuracy, here.history.val_accuracy,
                               rtol=1e-12)
    assert len(at_sites.history.val_loss) == 3


def test_a_federated_validation_set_needs_a_val_registered_at_the_sites(ctx, digits):
    X_train, y_train, X_test, y_test = digits
    X_fed = ctx.scatter(X_train)
    X_val = ctx.scatter(X_test)
    with pytest.raises(InvalidArgumentError, match="'val' parameter .* registered at the sites"):
        fl.paramserv(ffn.init(64, 10, (32,), seed=0), X_fed, one_hot(y_train, 10),
                     val_features=X_val, val_labels=one_hot(y_test, 10),
                     val=validate_here, **TRAINING)


def test_a_federated_validation_set_is_checked_like_the_training_data(ctx, digits):
    X_train, y_train, X_test, y_test = digits
    X_fed = ctx.scatter(X_train)
    X_val = ctx.scatter(X_test)
    with pytest.raises(InvalidArgumentError, match="'val_labels' .* one-hot"):
        fl.paramserv(ffn.init(64, 10, (32,), seed=0), X_fed, one_hot(y_train, 10),
                     val_features=X_val, val_labels=0.5 * one_hot(y_test, 10), **TRAINING)
    bad = X_test.copy()
    bad[3, 5] = np.nan
    with pytest.raises(InvalidArgumentError, match="'val_features' .* 1 NaN or infinite"):
        fl.paramserv(ffn.init(64, 10, (32,), seed=0), X_fed, one_hot(y_train, 10),
                     val_features=ctx.scatter(bad), val_labels=one_hot(y_test, 10), **TRAINING)


def test_a_site_that_stopped_answering_is_left_out_of_the_average(tmp_path, digits, caplog):
    from sklearn.metrics import accuracy_score, log_loss

    _, _, X_test, y_test = digits
    model = ffn.init(64, 10, (32,), seed=0)
    sizes = [40, 100, len(X_test) - 140]
    with LocalWorkerPool(3, data_dir=tmp_path) as pool, fl.Context(workers=pool.addresses) as ctx:
        X_val = ctx.scatter(X_test, sizes=sizes)
        partitions, _, _ = site_partitions(X_val, one_hot(y_test, 10),
                                           ("val_features", "val_labels"))
        score = FederatedValidation(ctx, partitions, ffn.VAL)
        pool.processes[2].kill()
        pool.processes[2].wait()
        loss, accuracy = score(model, {})
    answered = slice(0, 140)  # the rows of the first two sites
    probabilities = ffn.predict(model, X_test[answered])
    assert loss == pytest.approx(log_loss(y_test[answered], probabilities, labels=range(10)),
                                 rel=1e-9)
    assert accuracy == pytest.approx(
        accuracy_score(y_test[answered], probabilities.argmax(axis=1)), rel=1e-12)
    assert f"validation leaves out site {pool.addresses[2]}" in caplog.text


def validate_here(model, hyperparams, features, labels):
    """A validation function the sites have not registered."""
    return ffn.validate(model, hyperparams, features, labels)
