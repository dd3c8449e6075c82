"""Parameter-server core, independent of transport: server policies, data partitioning, worker loop.

- ``server``: ``ParameterServer``, a state machine (pull / push / end_epoch -> releases) that
  holds the model; every executor (LOCAL processes today, FEDERATED and Spark later) drives it.
- ``policies``: ``BSP``, ``ASP``, ``SSP``, ``SBP`` behind ``UpdatePolicy``.
- ``aggregation``: the shared math (weighted average, deltas, shape checks), pure functions.
- ``worker``: ``local_steps`` (the pure computation between a pull and a push) and ``run_worker``,
  the worker loop over a ``ServerChannel`` (freq BATCH / EPOCH /
  NBATCHES), and ``WorkerTask``.
- ``partitioning``: the four data partitioning schemes.
- ``session``: ``TrainingSession``, the coordinator's side (validation, checkpoints, progress).
- ``checkpoint``, ``history``, ``messages``, ``errors``.
"""
