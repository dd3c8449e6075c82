"""Executors: what runs a stage's site programs.

``GrpcExecutor`` sends each site's program as one batch to a ``fedla worker`` daemon;
``InProcessExecutor`` hands it to a ``RequestHandler`` in this process (the same code a worker
runs). Both run all sites of a stage concurrently.
"""

from fedla.executors.base import Executor
from fedla.executors.grpc_executor import GrpcExecutor
from fedla.executors.in_process import InProcessExecutor

__all__ = ["Executor", "GrpcExecutor", "InProcessExecutor"]
