"""The paramserv built-in: train a model list with a parameter server (SystemDS semantics).

STEP 1 checks the arguments, STEP 2 resolves the functions and runs ``upd`` and ``agg`` once on a
first batch here (so a shape or code error surfaces with a plain traceback before any process
starts), STEP 3 restores a checkpoint when resuming, STEP 4 partitions the rows, STEP 5 runs the
executor of ``mode`` and STEP 6 returns the model with its history.
"""

from __future__ import annotations

import dataclasses
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
    check_float,
    check_hyperparameter_names,
    check_hyperparams,
    check_int,
    check_path,
    check_seed,
    resolve_function,
)
from fedla.paramserv.executor import ParamservExecutor
from fedla.paramserv.federated_data import (
    check_finite,
    check_one_hot,
    is_federated,
    is_spark_backed,
    site_partitions,
)
from fedla.paramserv.federated_executor import FederatedExecutor, FederatedOptions
from fedla.paramserv.federated_validation import FederatedValidation
from fedla.paramserv.local_executor import LocalExecutor
from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.aggregation import check_like
from fedla.runtime.paramserv.balancing import BALANCING
from fedla.runtime.paramserv.checkpoint import latest_checkpoint, load_checkpoint
from fedla.runtime.paramserv.compression import COMPRESSIONS
from fedla.runtime.paramserv.history import History, TrainedModel
from fedla.runtime.paramserv.partitioning import SCHEMES, partition_rows
from fedla.runtime.paramserv.policies import UTYPES
from fedla.runtime.paramserv.robust_aggregation import ROBUST_AGGREGATIONS
from fedla.runtime.paramserv.round_combiner import RoundCombiner
from fedla.runtime.paramserv.server_optimizers import SERVER_OPTIMIZERS
from fedla.runtime.paramserv.session import ScoreFn, TrainingPlan, TrainingSession
from fedla.runtime.paramserv.site_training import FEDERATED_SCHEMES, scheme_row_counts
from fedla.runtime.paramserv.worker import FREQUENCIES, epoch_seeds
from fedla.runtime.udf_registry import registered_functions

_LOGGER = logging.getLogger(__name__)

MODES = ("LOCAL", "FEDERATED", "REMOTE_SPARK")
FunctionRef = str | Callable[..., Any]


def paramserv(
    model: Sequence[Any], features: Any, labels: Any, upd: FunctionRef, agg: FunctionRef,
    mode: str | None = None, utype: str = "BSP", freq: str = "BATCH", epochs: int = 10,
    batchsize: int = 64, k: int | None = None, scheme: str | None = None,
    hyperparams: Mapping[str, Any] | None = None, val_features: Any = None,
    val_labels: Any = None, seed: int | None = None, nbatches: int = 1, staleness: int = 3,
    num_backup_workers: int = 1, checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool | str | os.PathLike[str] = False, val: FunctionRef | None = None,
    progress: bool | None = None, balancing: str = "NONE", weighting: bool = True,
    proximal_mu: float = 0.0, fraction: float = 1.0, server_optimizer: str = "fedavg",
    server_hyperparams: Mapping[str, float] | None = None, aggregation: str = "mean",
    aggregation_params: Mapping[str, Any] | None = None, compression: str = "none",
    compression_ratio: float = 0.01, secure_aggregation: bool = False,
    differential_privacy: Mapping[str, float] | None = None,
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
    mode : {"LOCAL", "FEDERATED", "REMOTE_SPARK"}, optional
        LOCAL: worker processes on this machine. FEDERATED: the local steps run at the sites
        holding the rows (``features`` a row-partitioned federated matrix; each row block is a
        worker; only models and updates travel). REMOTE_SPARK: one Spark job of barrier tasks
        (in-memory data: ``k`` workers sent with the job; a Spark-backed matrix from
        ``fl.from_spark``: one worker per partition, on the rows cached there). Default:
        REMOTE_SPARK for Spark-backed features, FEDERATED for other federated features, else
        LOCAL.
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
        Workers; default the number of cores (at most ``n_samples``). FEDERATED: the number of
        row blocks of ``features``.
    scheme : str, optional
        LOCAL (default ``DISJOINT_CONTIGUOUS``): ``DISJOINT_CONTIGUOUS``,
        ``DISJOINT_ROUND_ROBIN``, ``DISJOINT_RANDOM`` or ``OVERLAP_RESHUFFLE``; see
        ``fedla.runtime.paramserv.partitioning``. FEDERATED and Spark-backed features (default
        ``KEEP_DATA_ON_WORKER``): ``KEEP_DATA_ON_WORKER``, ``SHUFFLE``, ``REPLICATE_TO_MAX``,
        ``SUBSAMPLE_TO_MIN`` or ``BALANCE_TO_AVG``, all within each site (partition); see
        ``fedla.runtime.paramserv.site_training``.
    hyperparams : dict, optional
        Passed to ``upd``, ``agg`` and ``val``; every ``upd`` call also gets ``"seed"``, an int
        derived from (``seed``, worker, epoch, batch), for reproducible dropout and the like.
    val_features, val_labels : arrays or federated matrices, optional
        Validation set, scored by ``val`` after every epoch. A federated ``val_features`` stays
        at its sites (labels federated, or a local array sent there): each site scores its rows
        and returns only its mean loss, accuracy and row count; ``val`` must then be registered
        at the sites (``ffn``'s and ``cnn``'s ``validate`` are).
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
        ``validate(model, hyperparams, features, labels) -> (loss, accuracy)``, means over the
        rows; by default the ``validate`` function of ``upd``'s module, if it has one.
    progress : bool, optional
        tqdm progress bar (one step per round) with the validation loss and accuracy; by
        default only on a terminal or in a notebook.
    balancing : str, default "NONE"
        Runtime balancing of uneven partitions: ``NONE``, ``BASELINE``, ``CYCLE_MIN``,
        ``CYCLE_AVG``, ``CYCLE_MAX`` or ``SCALE_BATCH``; see
        ``fedla.runtime.paramserv.balancing``.
    weighting : bool, default True
        Weigh each worker's update by the rows behind it (FedAvg's ``n_k / n``); False weighs
        workers equally.
    proximal_mu : float, default 0
        FedProx's proximal term for local steps (freq EPOCH / NBATCHES): each gradient gets
        ``proximal_mu * (local - pulled)`` (Li et al., MLSys 2020).
    fraction : float, default 1
        FEDERATED, BSP: the share of the sites sampled for each round (at least one), drawn
        from ``seed`` and the round; the others sit the round out. Sites lost in a sampled run
        are dropped, not fatal, and rejoin when they are back (see ``FederatedExecutor``).
    server_optimizer : str, default "fedavg"
        For model deltas (freq EPOCH / NBATCHES): ``fedavg``, ``fedavgm``, ``fedadam``,
        ``fedyogi`` or ``fedadagrad`` (Reddi et al., ICLR 2021), with ``server_hyperparams``
        (``lr``, ``momentum``, ``beta1``, ``beta2``, ``tau``); see
        ``fedla.runtime.paramserv.server_optimizers``.
    aggregation : str, default "mean"
        How a round's deltas are combined: ``mean`` (weighted, FedAvg), ``median``,
        ``trimmed_mean`` or ``krum``, with ``aggregation_params`` (``trim``, ``byzantine``,
        ``multi``); see ``fedla.runtime.paramserv.robust_aggregation``.
    compression : str, default "none"
        FEDERATED: uplink compression of updates at the sites, ``topk`` (``compression_ratio``
        of the entries, with error feedback) or ``qsgd8`` (8-bit stochastic quantization);
        ``history.bytes_up`` counts the compressed bytes.
    secure_aggregation : bool, default False
        FEDERATED, BSP, deltas: the sites mask their updates pairwise (Bonawitz et al., CCS
        2017) so that the coordinator learns only each round's sum; see
        ``fedla.runtime.paramserv.secure_aggregation``.
    differential_privacy : dict, optional
        FEDERATED: ``{"clip": C, "noise_multiplier": z, "delta": d}``; each site clips its
        update to L2 norm ``C`` and adds Gaussian noise of standard deviation ``z * C``
        (site-level DP); ``history.epsilon`` holds the (epsilon, ``delta``) spent after each
        round by an RDP accountant of the sampled Gaussian mechanism (sampling rate
        ``fraction``).

    Returns
    -------
    TrainedModel
        The trained model list (a ``list``), with ``.history`` (a ``History``: per-epoch
        validation loss and accuracy, times, samples, updates, staleness, SSP clocks).

    Raises
    ------
    InvalidArgumentError, ShapeMismatchError
        A bad argument, or ``upd`` / ``agg`` returning lists that do not fit the model.
    WorkerFailedError
        A worker raised or died (FEDERATED: a site failed; see ``FederatedExecutor``).

    Notes
    -----
    Under BSP and SBP the server averages the updates of a round weighted by their samples
    (SystemDS sums them), so the learning rate means the same for any ``k``. Every epoch ends
    with a barrier over all workers, whatever ``utype``, for validation and checkpoints.

    Examples
    --------
    FedAvg on scikit-learn's digits split over three loopback sites; the rows stay at the
    sites and only models and deltas travel:

    >>> import fedla as fl
    >>> from sklearn.datasets import load_digits
    >>> from fedla.algorithms.nn import ffn
    >>> from fedla.algorithms.nn.labels import one_hot
    >>> X, y = load_digits(return_X_y=True)
    >>> with fl.Context(local_workers=3) as ctx:
    ...     X_fed = ctx.scatter(X / 16)
    ...     model = fl.paramserv(ffn.init(64, 10, (32,), seed=0), X_fed,
    ...                          ctx.scatter(one_hot(y), like=X_fed), upd=ffn.UPD, agg=ffn.AGG,
    ...                          freq="NBATCHES", nbatches=4, epochs=5, batchsize=32,
    ...                          hyperparams={"optimizer": "adam", "lr": 3e-3}, seed=0,
    ...                          progress=False)
    >>> bool((ffn.predict(model, X / 16).argmax(axis=1) == y).mean() > 0.8)
    True
    >>> model.history  # doctest: +ELLIPSIS
    History(epochs=5, rounds=25, seconds=..., bytes_up=4.1 MiB, bytes_down=4.1 MiB, seed=0)
    """
    # STEP 1: arguments
    federated, spark_backed = is_federated(features), is_spark_backed(features)
    mode = check_choice("mode", mode, MODES) if mode is not None else (
        "REMOTE_SPARK" if spark_backed else "FEDERATED" if federated else "LOCAL")
    allowed = (("FEDERATED", "REMOTE_SPARK") if spark_backed else ("FEDERATED",) if federated
               else ("LOCAL", "REMOTE_SPARK"))
    if mode not in allowed:
        kind = ("Spark-backed" if spark_backed else "federated" if federated else "in-memory")
        raise InvalidArgumentError(
            f"The 'mode' parameter of paramserv must be one of {allowed} for {kind} features "
            "('FEDERATED' for federated features, whose rows stay at their sites; "
            "'REMOTE_SPARK' or 'FEDERATED' for Spark-backed ones, from fl.from_spark; 'LOCAL' "
            f"or 'REMOTE_SPARK' for in-memory ones). Got {mode!r} instead."
        )
    at_sites = mode == "FEDERATED" or spark_backed  # training runs where the rows are
    utype = check_choice("utype", utype, UTYPES)
    freq = check_choice("freq", freq, FREQUENCIES)
    schemes = FEDERATED_SCHEMES if at_sites else SCHEMES
    scheme = check_choice("scheme", scheme if scheme is not None else schemes[0], schemes)
    balancing = check_choice("balancing", balancing, BALANCING)
    epochs = check_int("epochs", epochs, 1)
    batchsize = check_int("batchsize", batchsize, 1)
    nbatches = check_int("nbatches", nbatches, 1)
    staleness = check_int("staleness", staleness, 0)
    seed = check_seed(seed)
    if not isinstance(weighting, bool):
        raise InvalidArgumentError(
            f"The 'weighting' parameter of paramserv must be a bool. Got {weighting!r} instead."
        )
    proximal_mu = check_float("proximal_mu", proximal_mu, 0.0)
    fraction = check_float("fraction", fraction, 0.0, 1.0, low_open=True)
    options, combiner = _federated_options(
        mode, utype, freq, fraction, server_optimizer, server_hyperparams, aggregation,
        aggregation_params, compression, compression_ratio, secure_aggregation,
        differential_privacy)
    params = check_hyperparams(hyperparams)
    checkpoint = check_path("checkpoint_dir", checkpoint_dir)
    model = _check_model(model)
    upd_fn, upd_ref = resolve_function("upd", upd)
    agg_fn, agg_ref = resolve_function("agg", agg)
    if mode == "FEDERATED":
        _check_registered(("upd", upd, upd_ref), ("agg", agg, agg_ref))
    check_hyperparameter_names(params, upd_ref)
    labels_kind = getattr(importlib.import_module(upd_ref.partition(":")[0]), "LABELS", None)
    if at_sites:
        partitions, X, y = site_partitions(features, labels)
        executor: ParamservExecutor
        if mode == "FEDERATED":
            executor = FederatedExecutor(
                features.context, partitions, scheme, proximal_mu,
                dataclasses.replace(options, secagg_threshold=max(2, -(-len(partitions) // 2))),
                holds=(X, y))
            unit = "row blocks of the federated features"
        else:
            executor = _spark_partitions_executor(features.context, partitions, scheme, (X, y))
            unit = "Spark partitions holding rows of the features"
        n_rows = X.shape[0]
        workers = len(executor.row_counts())
        if k is not None and check_int("k", k, 1) != workers:
            raise InvalidArgumentError(
                f"k={k} should be the number of {unit} ({workers}) in mode {mode!r} (each "
                "trains as one worker)"
            )
        k = workers
    else:
        executor = _executor(mode)
        X, y = check_data(features, labels)
        n_rows = X.shape[0]
        k = min(os.cpu_count() or 1, n_rows) if k is None else check_int("k", k, 1)
        if k > n_rows:
            raise InvalidArgumentError(f"n_samples={n_rows} should be >= k={k}")
    check_finite("features", X)
    check_finite("labels", y)
    if labels_kind == "one-hot":
        check_one_hot("labels", y, _n_classes(model, upd_ref))
    num_backup_workers = check_int("num_backup_workers", num_backup_workers, 0)
    if utype == "SBP" and num_backup_workers >= k:
        raise InvalidArgumentError(f"num_backup_workers={num_backup_workers} should be < k={k}")
    validate, val_inputs = _validation(val, val_features, val_labels, upd_ref, X, y, labels_kind,
                                       model)

    # STEP 2: functions, checked on a first batch (here when the data is here)
    if at_sites:
        if val_inputs and not is_federated(val_inputs[0]):
            X_val, y_val = val_inputs
            _preflight(model, params, X_val[:batchsize], y_val[:batchsize], upd_fn, agg_fn,
                       upd_ref, agg_ref)
    else:
        _preflight(model, params, X[:batchsize], y[:batchsize], upd_fn, agg_fn, upd_ref,
                   agg_ref)

    # STEP 3: resume
    first_epoch, history, previous = 0, None, None
    if resume is not False and resume is not None:
        model, first_epoch, history, previous = _resume(resume, checkpoint, model, seed)
        seed = previous["seed"] if previous else seed
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    plan = TrainingPlan(utype, freq, epochs, batchsize, k, scheme, nbatches, staleness,
                        num_backup_workers, seed, n_rows, upd_ref, agg_ref, balancing, weighting,
                        proximal_mu)
    if previous:
        _warn_on_changes(previous, plan)
    if first_epoch >= epochs:
        return TrainedModel(model, history or History(seed=seed))

    # STEP 4: partitions and the session
    combine = combiner
    if at_sites:
        partitions = [np.arange(rows, dtype=np.int64) for rows in executor.row_counts()]
        sites = executor.sites
        if isinstance(executor, FederatedExecutor) and options.secure_aggregation:
            combine = executor.secure_combine(combiner or RoundCombiner())
    else:
        partitions = partition_rows(n_rows, k, scheme, seed)
        sites = None
    session = TrainingSession(
        plan, model, agg_fn, params, partitions, validate=validate, first_epoch=first_epoch,
        history=history,
        checkpoint_dir=checkpoint, progress=progress, sites=sites, combine=combine,
    )
    if differential_privacy:
        _account_privacy(session, options, fraction, differential_privacy)
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
    """The executor of an in-memory mode (LOCAL or REMOTE_SPARK)."""
    if mode == "REMOTE_SPARK":
        from fedla.paramserv.spark_executor import RemoteSparkExecutor  # grpc + pyspark: lazily

        return RemoteSparkExecutor()
    return LocalExecutor()


def _spark_partitions_executor(context: Any, partitions: list[Any], scheme: str,
                               holds: tuple[Any, ...]) -> ParamservExecutor:
    """REMOTE_SPARK over a Spark-backed matrix: one worker per partition holding its rows."""
    from fedla.paramserv.spark_executor import RemoteSparkExecutor
    from fedla.paramserv.spark_worker import SparkSite

    by_site: dict[Any, list[Any]] = {}
    for partition in partitions:
        by_site.setdefault(partition.site, []).append(partition)
    blocks = list(by_site.values())
    targets = scheme_row_counts([sum(p.rows[1] - p.rows[0] for p in site) for site in blocks],
                                scheme)
    sites = [SparkSite(context.executor.site_index(site[0].site), worker,
                       tuple(p.features for p in site), tuple(p.labels for p in site), target)
             for worker, (site, target) in enumerate(zip(blocks, targets))]
    return RemoteSparkExecutor(sites=sites, context=context, scheme=scheme, holds=holds)


def _federated_options(
    mode: str, utype: str, freq: str, fraction: float, server_optimizer: str,
    server_hyperparams: Mapping[str, float] | None, aggregation: str,
    aggregation_params: Mapping[str, Any] | None, compression: str, compression_ratio: float,
    secure_aggregation: bool, differential_privacy: Mapping[str, float] | None,
) -> tuple[FederatedOptions, RoundCombiner | None]:
    """Check the federated-learning arguments; the sites' options and the server's combiner."""
    server_optimizer = check_choice("server_optimizer", server_optimizer.lower()
                                    if isinstance(server_optimizer, str) else server_optimizer,
                                    tuple(o.upper() for o in SERVER_OPTIMIZERS)).lower()
    aggregation = check_choice("aggregation", aggregation, tuple(
        a.upper() for a in ROBUST_AGGREGATIONS)).lower()
    compression = check_choice("compression", compression,
                               tuple(c.upper() for c in COMPRESSIONS)).lower()
    compression_ratio = check_float("compression_ratio", compression_ratio, 0.0, 1.0,
                                    low_open=True)
    if not isinstance(secure_aggregation, bool):
        raise InvalidArgumentError(
            "The 'secure_aggregation' parameter of paramserv must be a bool. Got "
            f"{secure_aggregation!r} instead."
        )
    dp = dict(differential_privacy or {})
    unknown = sorted(set(dp) - {"clip", "noise_multiplier", "delta"})
    if unknown:
        raise InvalidArgumentError(
            f"The 'differential_privacy' parameter of paramserv takes 'clip', "
            f"'noise_multiplier' and 'delta'. Got {unknown} instead."
        )
    clip = check_float("differential_privacy['clip']", dp.get("clip", 0.0), 0.0,
                       low_open=bool(dp))
    noise = check_float("differential_privacy['noise_multiplier']",
                        dp.get("noise_multiplier", 0.0), 0.0)
    check_float("differential_privacy['delta']", dp.get("delta", 1e-5), 0.0, 1.0, low_open=True)
    federated_only = {"fraction": fraction < 1, "compression": compression != "none",
                      "secure_aggregation": secure_aggregation, "differential_privacy": bool(dp)}
    for name, used in federated_only.items():
        if used and mode != "FEDERATED":
            raise InvalidArgumentError(
                f"The {name!r} parameter of paramserv applies to mode 'FEDERATED' only (it "
                f"acts at the sites). Got mode {mode!r}."
            )
    deltas_only = {"server_optimizer": server_optimizer != "fedavg" or bool(server_hyperparams),
                   "aggregation": aggregation != "mean", "secure_aggregation": secure_aggregation}
    for name, used in deltas_only.items():
        if used and freq == "BATCH":
            raise InvalidArgumentError(
                f"The {name!r} parameter of paramserv combines model deltas: use freq 'EPOCH' "
                "or 'NBATCHES' (local steps); with freq 'BATCH' the model's agg applies "
                "gradients"
            )
    if (fraction < 1 or secure_aggregation) and utype != "BSP":
        raise InvalidArgumentError(
            f"fraction < 1 and secure_aggregation need utype 'BSP' (rounds of a fixed set of "
            f"sites). Got utype {utype!r}."
        )
    if secure_aggregation and (compression != "none" or aggregation != "mean"):
        raise InvalidArgumentError(
            "secure_aggregation reveals only the sum of a round's updates, so it cannot be "
            "combined with compression or a robust aggregation (they need each update)"
        )
    combiner = None
    if deltas_only["server_optimizer"] or deltas_only["aggregation"]:
        combiner = RoundCombiner(aggregation, aggregation_params, server_optimizer,
                                 server_hyperparams)
    options = FederatedOptions(fraction, clip, noise, compression, compression_ratio,
                               secure_aggregation)
    return options, combiner


def _account_privacy(session: TrainingSession, options: FederatedOptions, fraction: float,
                     differential_privacy: Mapping[str, float]) -> None:
    """Record the (epsilon, delta) spent after every round in ``session.history``."""
    from fedla.runtime.paramserv.differential_privacy import RdpAccountant  # slow import

    delta = float(differential_privacy.get("delta", 1e-5))
    history = session.history
    history.dp_delta = delta
    if options.noise_multiplier <= 0:
        raise InvalidArgumentError(
            "differential_privacy needs noise_multiplier > 0 for a finite epsilon (clipping "
            "alone bounds influence but guarantees no privacy)"
        )
    accountant = RdpAccountant(options.noise_multiplier, fraction)

    def on_round() -> None:
        accountant.step()
        history.epsilon.append(float(accountant.epsilon(delta)[0]))

    session.round_hooks.append(on_round)


def _check_registered(*functions: tuple[str, Any, str]) -> None:
    """FEDERATED runs ``upd``/``agg`` at the sites: only registered remote functions."""
    for name, given, ref in functions:
        if isinstance(given, str) or ref in registered_functions():
            continue
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv in mode 'FEDERATED' must be a remote function "
            f"registered at the sites. Got {ref}, which is not registered. Sites run only "
            "functions their operators allowed: decorate it with "
            "@fedla.runtime.udf_registry.remote_function in a package the sites install, and "
            "have each site's operator start `fedla worker --allow-module PACKAGE` (local "
            "workers: Context(allow_modules=[PACKAGE])); then pass it as 'package.module:name'"
        )


def _n_classes(model: list[Any], upd_ref: str) -> int | None:
    """The classes ``upd``'s model predicts, when its module says (``n_outputs(model)``)."""
    module = importlib.import_module(upd_ref.partition(":")[0])
    n_outputs = getattr(module, "n_outputs", None)
    return int(n_outputs(model)) if callable(n_outputs) else None


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


def _validation(
    val: FunctionRef | None, val_features: Any, val_labels: Any, upd_ref: str, X: Any, y: Any,
    labels_kind: str | None, model: list[Any],
) -> tuple[ScoreFn | None, tuple[Any, ...]]:
    """How the run scores its validation set after every epoch, and that set.

    In-memory arrays are scored here; a federated ``val_features`` at its sites
    (``FederatedValidation``), by a ``val`` registered there. The set is returned so that the
    caller keeps a federated one (and its sites' variables) alive while training.
    """
    if (val_features is None) != (val_labels is None):
        raise InvalidArgumentError("val_features and val_labels must be given together")
    if val_features is None:
        return None, ()
    val_fn, val_ref = _validation_function(val, upd_ref)
    if is_federated(val_features):
        if is_spark_backed(val_features):
            raise InvalidArgumentError(
                "The 'val_features' parameter of paramserv must be an in-memory array or a "
                "federated matrix of a Context with workers; Spark-backed validation data "
                "(fl.from_spark) is not supported: collect it, or hold it at workers"
            )
        _check_registered(("val", val if val is not None else val_fn, val_ref))
        partitions, X_val, y_val = site_partitions(val_features, val_labels,
                                                   ("val_features", "val_labels"))
        validate: ScoreFn = FederatedValidation(val_features.context, partitions, val_ref)
    else:
        X_val, y_val = check_data(val_features, val_labels, prefix="val_")

        def validate(model: list[Any], hyperparams: Mapping[str, Any]) -> tuple[float, float]:
            return val_fn(model, hyperparams, X_val, y_val)

    if X_val.shape[1] != X.shape[1] or y_val.shape[1] != y.shape[1]:
        raise InvalidArgumentError(
            f"val_features/val_labels have {X_val.shape[1]}/{y_val.shape[1]} columns but "
            f"features/labels have {X.shape[1]}/{y.shape[1]}"
        )
    check_finite("val_features", X_val)
    check_finite("val_labels", y_val)
    if labels_kind == "one-hot":
        check_one_hot("val_labels", y_val, _n_classes(model, upd_ref))
    return validate, (X_val, y_val)


def _validation_function(val: FunctionRef | None, upd_ref: str) -> tuple[Callable[..., Any], str]:
    if val is not None:
        return resolve_function("val", val)
    module = importlib.import_module(upd_ref.partition(":")[0])
    found = getattr(module, "validate", None)
    if not callable(found):
        raise InvalidArgumentError(
            f"val_features were given but there is no validation function: pass "
            f"val='module:function' (validate(model, hyperparams, features, labels) -> (loss, "
            f"accuracy)); upd's module {module.__name__!r} has no 'validate'"
        )
    return found, f"{module.__name__}:validate"


def _preflight(
    model: list[Any], params: dict[str, Any], X: np.ndarray, y: np.ndarray,
    upd: Callable[..., Any], agg: Callable[..., Any], upd_ref: str, agg_ref: str,
) -> None:
    """Run ``upd`` and ``agg`` once on the first rows and check what they return."""
    grads = upd(model, {**params, "seed": epoch_seeds(0, 0, 0, 1)[0]}, X, y)
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
