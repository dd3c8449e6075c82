"""The paramserv built-in: train a model list with a parameter server (SystemDS semantics).

STEP 1 checks the arguments, STEP 2 resolves the functions and runs ``upd`` and ``agg`` once on a
first batch here (so a shape or code error surfaces with a plain traceback before any process
starts), STEP 3 restores a checkpoint when resuming, STEP 4 partitions the rows, STEP 5 runs the
executor of ``mode`` and STEP 6 returns the model with its history.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedla.paramserv.arguments import (
    check_choice,
    check_data,
    check_hyperparams,
    check_int,
    check_path,
    check_seed,
    resolve_function,
)
from fedla.paramserv.executor import ParamservExecutor
from fedla.paramserv.local_executor import LocalExecutor
from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.aggregation import check_like
from fedla.runtime.paramserv.checkpoint import latest_checkpoint, load_checkpoint
from fedla.runtime.paramserv.errors import ModeNotAvailableError
from fedla.runtime.paramserv.history import History, TrainedModel
from fedla.runtime.paramserv.partitioning import SCHEMES, partition_rows
from fedla.runtime.paramserv.policies import UTYPES
from fedla.runtime.paramserv.session import TrainingPlan, TrainingSession
from fedla.runtime.paramserv.worker import FREQUENCIES, step_seed

_LOGGER = logging.getLogger(__name__)

MODES = ("LOCAL", "FEDERATED", "REMOTE_SPARK")
FunctionRef = str | Callable[..., Any]


def paramserv(
    model: Sequence[Any], features: Any, labels: Any, upd: FunctionRef, agg: FunctionRef,
    mode: str = "LOCAL", utype: str = "BSP", freq: str = "BATCH", epochs: int = 10,
    batchsize: int = 64, k: int | None = None, scheme: str = "DISJOINT_CONTIGUOUS",
    hyperparams: Mapping[str, Any] | None = None, val_features: Any = None,
    val_labels: Any = None, seed: int | None = None, nbatches: int = 1, staleness: int = 3,
    num_backup_workers: int = 1, checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool | str | os.PathLike[str] = False, val: FunctionRef | None = None,
    progress: bool | None = None,
) -> TrainedModel:
    """Train a model list with a parameter server and data-parallel workers.

    Workers hold partitions of the rows; each computes ``upd`` on its batches and pushes gradients
    (or, with local steps, model deltas) to the server, which applies them with ``agg`` under the
    update strategy ``utype``.

    Parameters
    ----------
    model : list of arrays
        The initial model list (SystemDS's ``list(W1, b1, ...)``), e.g. from ``ffn.init``.
    features : array of shape (n_samples, n_features)
    labels : array of shape (n_samples, n_outputs)
        2-D; one-hot for classifiers.
    upd : str or callable
        ``gradients(model, hyperparams, features, labels) -> list of gradients``, one per leading
        model array (trailing arrays, e.g. optimizer state, may have none), as
        ``"module:function"`` or a module-level function.
    agg : str or callable
        ``aggregate(model, hyperparams, gradients) -> model``, the model update.
    mode : {"LOCAL", "FEDERATED", "REMOTE_SPARK"}, default "LOCAL"
        Only LOCAL (processes on this machine) is available yet.
    utype : {"BSP", "ASP", "SSP", "SBP"}, default "BSP"
        Bulk synchronous (barrier per round, averaged update), asynchronous (apply on arrival),
        stale synchronous (asynchronous, but no worker runs more than ``staleness`` pushes ahead
        of the slowest) or synchronous with ``num_backup_workers`` backup workers (a round closes
        with the first ``k - num_backup_workers`` pushes; late pushes are dropped).
    freq : {"BATCH", "EPOCH", "NBATCHES"}, default "BATCH"
        Push gradients after every batch, or take local steps (``agg`` at the worker) over the
        whole partition / ``nbatches`` batches and push the model delta (model averaging, FedAvg).
    epochs : int, default 10
    batchsize : int, default 64
        Rows per batch and worker.
    k : int, optional
        Workers; default the number of cores (at most ``n_samples``).
    scheme : str, default "DISJOINT_CONTIGUOUS"
        ``DISJOINT_CONTIGUOUS``, ``DISJOINT_ROUND_ROBIN``, ``DISJOINT_RANDOM`` or
        ``OVERLAP_RESHUFFLE``; see ``fedla.runtime.paramserv.partitioning``.
    hyperparams : dict, optional
        Passed to ``upd``, ``agg`` and ``val``; every ``upd`` call also gets ``"seed"``, an int
        derived from (``seed``, worker, epoch, batch), for reproducible dropout and the like.
    val_features, val_labels : arrays, optional
        Validation set, scored by ``val`` after every epoch.
    seed : int, optional
        Seeds partitions and the per-batch seeds; with ``utype="BSP"`` the result is then
        bit-for-bit reproducible. Drawn at random when None (and recorded in the history).
    nbatches : int, default 1
        Batches between pushes for ``freq="NBATCHES"``.
    staleness : int, default 3
        SSP's bound ``s`` on how many pushes a worker may be ahead of the slowest.
    num_backup_workers : int, default 1
        SBP's ``b``; must be < ``k``.
    checkpoint_dir : path, optional
        Write ``paramserv-epoch-NNNN.npz`` (model and run state) after every epoch.
    resume : bool or path, default False
        True: continue from the latest checkpoint in ``checkpoint_dir`` (start afresh if there is
        none); a path: continue from that checkpoint. ``model`` must match its shapes; ``epochs``
        counts from the start of the original run.
    val : str or callable, optional
        ``validate(model, hyperparams, features, labels) -> (loss, accuracy)``; by default the
        ``validate`` function of ``upd``'s module, if it has one.
    progress : bool, optional
        tqdm progress bar with the validation loss and accuracy; by default only on a terminal.

    Returns
    -------
    TrainedModel
        The trained model list (a ``list``), with ``.history`` (a ``History``: per-epoch
        validation loss and accuracy, times, samples, updates, staleness, SSP clocks).

    Raises
    ------
    InvalidArgumentError, ShapeMismatchError
        A bad argument, or ``upd`` / ``agg`` returning lists that do not fit the model.
    ModeNotAvailableError
        ``mode`` other than LOCAL.
    WorkerFailedError
        A worker raised or died.

    Notes
    -----
    Under BSP and SBP the server averages the updates of a round weighted by their samples
    (SystemDS sums them), so the learning rate means the same for any ``k``. Every epoch ends
    with a barrier over all workers, whatever ``utype``, for validation and checkpoints.

    Examples
    --------
    >>> from fedla.algorithms.nn import ffn
    >>> model = fl.paramserv(ffn.init(64, 10), X, Y, upd="fedla.algorithms.nn.ffn:gradients",
    ...                      agg="fedla.algorithms.nn.ffn:aggregate", utype="SSP", staleness=2,
    ...                      epochs=5, k=2, hyperparams={"optimizer": "adam"}, seed=0)
    >>> model.history.val_accuracy
    """
    # STEP 1: arguments
    mode = check_choice("mode", mode, MODES)
    utype = check_choice("utype", utype, UTYPES)
    freq = check_choice("freq", freq, FREQUENCIES)
    scheme = check_choice("scheme", scheme, SCHEMES)
    epochs = check_int("epochs", epochs, 1)
    batchsize = check_int("batchsize", batchsize, 1)
    nbatches = check_int("nbatches", nbatches, 1)
    staleness = check_int("staleness", staleness, 0)
    seed = check_seed(seed)
    params = check_hyperparams(hyperparams)
    checkpoint = check_path("checkpoint_dir", checkpoint_dir)
    executor = _executor(mode)
    model = _check_model(model)
    X, y = check_data(features, labels)
    n_rows = X.shape[0]
    k = min(os.cpu_count() or 1, n_rows) if k is None else check_int("k", k, 1)
    if k > n_rows:
        raise InvalidArgumentError(f"n_samples={n_rows} should be >= k={k}")
    num_backup_workers = check_int("num_backup_workers", num_backup_workers, 0)
    if utype == "SBP" and num_backup_workers >= k:
        raise InvalidArgumentError(f"num_backup_workers={num_backup_workers} should be < k={k}")
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    if (val_features is None) != (val_labels is None):
        raise InvalidArgumentError("val_features and val_labels must be given together")
    if val_features is not None:
        X_val, y_val = check_data(val_features, val_labels, prefix="val_")
        if X_val.shape[1] != X.shape[1] or y_val.shape[1] != y.shape[1]:
            raise InvalidArgumentError(
                f"val_features/val_labels have {X_val.shape[1]}/{y_val.shape[1]} columns but "
                f"features/labels have {X.shape[1]}/{y.shape[1]}"
            )

    # STEP 2: functions, checked on a first batch
    upd_fn, upd_ref = resolve_function("upd", upd)
    agg_fn, agg_ref = resolve_function("agg", agg)
    val_fn = _validation_function(val, upd_ref) if X_val is not None else None
    _preflight(model, params, X[:batchsize], y[:batchsize], upd_fn, agg_fn, upd_ref, agg_ref)

    # STEP 3: resume
    first_epoch, history, previous = 0, None, None
    if resume is not False and resume is not None:
        model, first_epoch, history, previous = _resume(resume, checkpoint, model, seed)
        seed = previous["seed"] if previous else seed
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    plan = TrainingPlan(utype, freq, epochs, batchsize, k, scheme, nbatches, staleness,
                        num_backup_workers, seed, n_rows, upd_ref, agg_ref)
    if previous:
        _warn_on_changes(previous, plan)
    if first_epoch >= epochs:
        return TrainedModel(model, history or History(seed=seed))

    # STEP 4: partitions and the session
    partitions = partition_rows(n_rows, k, scheme, seed)
    session = TrainingSession(
        plan, model, agg_fn, params, partitions, validate=val_fn, val_features=X_val,
        val_labels=y_val, first_epoch=first_epoch, history=history,
        checkpoint_dir=checkpoint, progress=progress,
    )
    if history is not None:
        history.resumed_from = first_epoch

    # STEP 5: run
    try:
        executor.run(session, X, y, upd_ref, agg_ref, params)
    finally:
        session.close()

    # STEP 6: result
    return TrainedModel(session.model, session.history)


def _executor(mode: str) -> ParamservExecutor:
    if mode == "LOCAL":
        return LocalExecutor()
    if mode == "REMOTE_SPARK":
        from fedla.paramserv.spark_executor import RemoteSparkExecutor  # grpc + pyspark: lazily

        return RemoteSparkExecutor()
    raise ModeNotAvailableError(
        f"paramserv mode={mode!r} is not available yet: FEDERATED/REMOTE_SPARK executors are "
        "not available yet (they come with their own issues); use mode='LOCAL'"
    )


def _check_model(model: Any) -> list[Any]:
    if not isinstance(model, (list, tuple)) or not model:
        raise InvalidArgumentError(
            "The 'model' parameter of paramserv must be a non-empty list of arrays. Got "
            f"{type(model).__name__} instead."
        )
    arrays = []
    for i, a in enumerate(model):
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            raise InvalidArgumentError(
                f"The 'model' parameter of paramserv must be a list of arrays. Got "
                f"{type(a).__name__} at model[{i}] instead."
            )
        arrays.append(a)
    return arrays


def _validation_function(val: FunctionRef | None, upd_ref: str) -> Callable[..., Any]:
    if val is not None:
        return resolve_function("val", val)[0]
    module = importlib.import_module(upd_ref.partition(":")[0])
    found = getattr(module, "validate", None)
    if not callable(found):
        raise InvalidArgumentError(
            f"val_features were given but there is no validation function: pass "
            f"val='module:function' (validate(model, hyperparams, features, labels) -> (loss, "
            f"accuracy)); upd's module {module.__name__!r} has no 'validate'"
        )
    return found


def _preflight(
    model: list[Any], params: dict[str, Any], X: np.ndarray, y: np.ndarray,
    upd: Callable[..., Any], agg: Callable[..., Any], upd_ref: str, agg_ref: str,
) -> None:
    """Run ``upd`` and ``agg`` once on the first rows and check what they return."""
    grads = upd(model, {**params, "seed": step_seed(0, 0, 0, 0)}, X, y)
    check_like(grads, model, f"the gradients returned by upd={upd_ref!r}",
               "upd must return one gradient per leading model array, in model order",
               exact=False)
    updated = agg(model, params, list(grads))
    check_like(updated, model, f"the model returned by agg={agg_ref!r}",
               "agg must return the model list with every array's shape unchanged")


def _resume(
    resume: bool | str | os.PathLike[str], checkpoint_dir: str | None, model: list[Any],
    seed: int | None,
) -> tuple[list[Any], int, History | None, dict[str, Any] | None]:
    """Model, epochs done, history and plan (as a dict) of the checkpoint to resume from."""
    if resume is True:
        if checkpoint_dir is None:
            raise InvalidArgumentError(
                "resume=True needs checkpoint_dir (the directory to resume from); or pass the "
                "checkpoint file as resume=path"
            )
        path = latest_checkpoint(checkpoint_dir)
        if path is None:
            _LOGGER.info("paramserv: no checkpoint in %s; starting at epoch 1", checkpoint_dir)
            return model, 0, None, None
    else:
        path = Path(check_path("resume", resume) or "")
        if not path.is_file():
            raise InvalidArgumentError(f"resume={os.fspath(path)!r} is not a checkpoint file")
    epochs_done, restored, state = load_checkpoint(path)
    check_like(restored, model, f"the model in checkpoint {path}",
               "resume with a model of the same architecture")
    restored = [r.astype(m.dtype, copy=False) for r, m in zip(restored, model)]
    history = History.from_dict(state["history"])
    plan_seed = state["plan"]["seed"]
    if seed is not None and seed != plan_seed:
        warnings.warn(
            f"paramserv: resuming with the checkpoint's seed={plan_seed}, not seed={seed}, to "
            "continue its trajectory", UserWarning, stacklevel=3,
        )
    _LOGGER.info("paramserv: resuming from %s after %d epochs", path, epochs_done)
    history.seed = plan_seed
    return restored, epochs_done, history, state["plan"]


def _warn_on_changes(before: dict[str, Any], plan: TrainingPlan) -> None:
    now = plan.to_dict()
    keys = ("utype", "freq", "batchsize", "k", "scheme", "nbatches", "staleness",
            "num_backup_workers", "n_rows")
    changed = [f"{key} {before[key]!r} -> {now[key]!r}" for key in keys if before.get(key)
               != now[key]]
    if changed:
        warnings.warn(
            f"paramserv: resuming with different settings ({', '.join(changed)}); training "
            "continues, but not on the trajectory of the original run", UserWarning, stacklevel=3,
        )
