"""paramserv's argument errors: each names the argument, shows the value and says what fits.

All of them are raised before any worker process starts.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import fedla as fl
from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from tests.paramserv import toy_functions as toy

TOY = {"upd": f"{toy.REF}:gradients", "agg": f"{toy.REF}:aggregate"}


@pytest.fixture
def problem():
    return toy.problem(n=20)


def call(problem, **overrides):
    X, y, model = problem
    args = {"model": model, "features": X, "labels": y, **TOY, "epochs": 1, "k": 2,
            "batchsize": 4, **overrides}
    return fl.paramserv(**args)


@pytest.mark.parametrize("name,value,choices", [
    ("utype", "FOO", "'BSP', 'ASP', 'SSP', 'SBP'"),
    ("freq", "DAILY", "'BATCH', 'EPOCH', 'NBATCHES'"),
    ("scheme", "STRIPED", "'DISJOINT_CONTIGUOUS', 'DISJOINT_ROUND_ROBIN', 'DISJOINT_RANDOM', "
                          "'OVERLAP_RESHUFFLE'"),
    ("mode", "CLOUD", "'LOCAL', 'FEDERATED', 'REMOTE_SPARK'"),
    ("utype", 3, "'BSP', 'ASP', 'SSP', 'SBP'"),
])
def test_unknown_choices(problem, name, value, choices):
    message = (f"The '{name}' parameter of paramserv must be one of {choices}. "
               f"Got {value!r} instead.")
    with pytest.raises(InvalidArgumentError) as info:
        call(problem, **{name: value})
    assert str(info.value) == message


def test_choices_are_case_insensitive(problem):
    assert len(call(problem, utype="bsp", freq="Batch")) == 2


@pytest.mark.parametrize("name,value,low", [
    ("batchsize", 0, 1), ("epochs", 0, 1), ("k", 0, 1), ("nbatches", -1, 1),
    ("staleness", -1, 0), ("batchsize", 2.5, 1), ("epochs", True, 1),
])
def test_integer_ranges(problem, name, value, low):
    with pytest.raises(InvalidArgumentError, match=rf"The '{name}' parameter of paramserv must "
                                                   rf"be an int in the range \[{low}, inf\). "
                                                   rf"Got {value!r} instead\."):
        call(problem, **{name: value})


def test_federated_mode_needs_federated_features(problem):
    with pytest.raises(InvalidArgumentError, match="'FEDERATED' for federated features"):
        call(problem, mode="FEDERATED")


def test_more_workers_than_rows(problem):
    with pytest.raises(InvalidArgumentError, match="n_samples=20 should be >= k=21"):
        call(problem, k=21)


def test_backup_workers_must_leave_one_worker(problem):
    with pytest.raises(InvalidArgumentError, match="num_backup_workers=2 should be < k=2"):
        call(problem, utype="SBP", num_backup_workers=2)


def test_labels_must_be_2d(problem):
    X, y, model = problem
    with pytest.raises(InvalidArgumentError, match=r"The 'labels' parameter of paramserv must be "
                                                   r"a 2-D array. Got an array of shape \(20,\) "
                                                   r"instead. .*one_hot"):
        call(problem, labels=y.ravel())


def test_rows_must_match(problem):
    X, y, model = problem
    with pytest.raises(ShapeMismatchError, match="features have 20 rows but labels have 19"):
        call(problem, labels=y[:19])


def test_sparse_and_non_numeric_features(problem):
    X, y, model = problem
    with pytest.raises(InvalidArgumentError, match="in-memory dense array.*X.toarray"):
        call(problem, features=sp.csr_matrix(X))
    with pytest.raises(InvalidArgumentError, match="numeric array. Got dtype <U"):
        call(problem, features=np.full(X.shape, "a"))


def test_model_must_be_a_list_of_arrays(problem):
    with pytest.raises(InvalidArgumentError, match="non-empty list of arrays. Got dict"):
        call(problem, model={"W": 1})
    with pytest.raises(InvalidArgumentError, match=r"Got float at model\[1\] instead"):
        call(problem, model=[np.zeros((3, 1)), 0.0])


def test_gradient_shapes_must_match_the_model(problem):
    with pytest.raises(ShapeMismatchError, match=r"gradients returned by upd='tests.paramserv."
                                                 r"toy_functions:wrong_shape_gradients'\[0\] has "
                                                 r"shape \(4, 1\) but model\[0\] has shape "
                                                 r"\(3, 1\)"):
        call(problem, upd=f"{toy.REF}:wrong_shape_gradients")
    with pytest.raises(ShapeMismatchError, match="has 4 arrays but the model has 2"):
        call(problem, upd=f"{toy.REF}:too_many_gradients")


def test_agg_must_return_the_whole_model(problem):
    with pytest.raises(ShapeMismatchError, match="model returned by agg=.* has 1 arrays but the "
                                                 "model has 2"):
        call(problem, agg=f"{toy.REF}:truncating_aggregate")


@pytest.mark.parametrize("ref,match", [
    ("tests.paramserv.toy_functions.gradients", "must be a 'module:function' reference"),
    ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
    (f"{toy.REF}:no_such_function", "has no function 'no_such_function'"),
    (42, "must be a 'module:function' reference or a function. Got 42 instead"),
])
def test_function_references(problem, ref, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call(problem, upd=ref)


def test_lambdas_cannot_reach_worker_processes(problem):
    with pytest.raises(InvalidArgumentError, match="must be importable by worker processes"):
        call(problem, upd=lambda model, hp, X, y: toy.gradients(model, hp, X, y))


def test_validation_needs_a_function_and_both_arrays(problem):
    X, y, model = problem
    with pytest.raises(InvalidArgumentError, match="val_features and val_labels must be given "
                                                   "together"):
        call(problem, val_features=X)
    with pytest.raises(InvalidArgumentError, match="val_features/val_labels have 2/1 columns"):
        call(problem, val_features=X[:, :2], val_labels=y, val=f"{toy.REF}:validate")
    with pytest.raises(InvalidArgumentError, match="no validation function"):
        call(problem, upd=f"{toy.REF}:gradients".replace("toy_functions", "test_arguments"),
             val_features=X, val_labels=y)


def gradients(model, hyperparams, X, y):  # an upd whose module has no validate()
    return toy.gradients(model, hyperparams, X, y)


def test_hyperparams_must_be_a_dict(problem):
    with pytest.raises(InvalidArgumentError, match="'hyperparams' parameter of paramserv must "
                                                   "be a dict"):
        call(problem, hyperparams=[("lr", 0.1)])


def test_resume_needs_a_checkpoint(problem, tmp_path):
    with pytest.raises(InvalidArgumentError, match="resume=True needs checkpoint_dir"):
        call(problem, resume=True)
    with pytest.raises(InvalidArgumentError, match="is not a checkpoint file"):
        call(problem, resume=tmp_path / "missing.npz")


def test_resume_with_another_architecture_is_refused(problem, tmp_path):
    call(problem, checkpoint_dir=tmp_path)
    X, y, model = problem
    with pytest.raises(ShapeMismatchError, match="model in checkpoint"):
        call(problem, model=[np.zeros((3, 2)), np.zeros((1, 2))], labels=np.hstack([y, y]),
             checkpoint_dir=tmp_path, resume=True, epochs=2)
