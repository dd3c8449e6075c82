"""Parameter-server core, independent of transport: server policies, data partitioning, worker loop.

- ``server``: ``ParameterServer``, a state machine (pull / push / end_epoch -> releases) that
  holds the model; every executor (LOCAL processes, FEDERATED site threads, Spark) drives it.
- ``policies``: ``BSP``, ``ASP``, ``SSP``, ``SBP`` behind ``UpdatePolicy``.
- ``aggregation``: the shared math (weighted average, deltas, shape checks), pure functions.
- ``worker``: ``local_steps`` (the pure computation between a pull and a push) and ``run_worker``,
  the worker loop over a ``ServerChannel`` (freq BATCH / EPOCH /
  NBATCHES), and ``WorkerTask``.
- ``partitioning``: the four data partitioning schemes of LOCAL.
- ``balancing``: runtime balancing of uneven partitions (batches per epoch per worker).
- ``site_training``: the site side of FEDERATED (row orders of the federated schemes, ``train``
  with DP/compression/masking, secure-aggregation key set-up), registered remote functions.
- ``round_combiner``: a round's deltas through a robust aggregation and a server optimizer.
- ``session``: ``TrainingSession``, the coordinator's side (validation, checkpoints, progress).
- ``checkpoint``, ``history``, ``messages``, ``errors``.

Federated-learning math, pure functions and small state objects the executors call:

- ``server_optimizers``: FedAvg, FedAvgM, FedAdam, FedYogi, FedAdagrad (``make_server_optimizer``).
- ``robust_aggregation``: mean, median, trimmed mean, (multi-)Krum (``aggregate_updates``).
- ``compression``: uplink compression, top-k with error feedback and 8-bit stochastic rounding.
- ``secure_aggregation``: pairwise masking with dropout recovery (``SecAggSite``,
  ``SecAggCoordinator``), on ``shamir`` secret sharing.
- ``differential_privacy``: clipping, Gaussian noise, the RDP accountant.
"""
