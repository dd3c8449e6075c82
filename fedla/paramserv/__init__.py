"""The paramserv built-in: user entry point and executors (LOCAL processes, FEDERATED sites).

``paramserv(...)`` checks its arguments and runs an executor over the transport-independent core in
``fedla.runtime.paramserv`` (server, update policies, worker loop, partitioning, checkpoints).
"""

from fedla.paramserv.builtin import paramserv
from fedla.runtime.paramserv.errors import WorkerFailedError
from fedla.runtime.paramserv.history import History, TrainedModel

__all__ = ["History", "TrainedModel", "WorkerFailedError", "paramserv"]
