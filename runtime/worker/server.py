"""Creating and running a worker daemon (``fedla worker``)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc

from fedla.runtime.protocol.framing import GRPC_OPTIONS
from fedla.runtime.worker.request_handler import (
    DEFAULT_ALLOWED_MODULES,
    RequestHandler,
    WorkerConfig,
)
from fedla.runtime.worker.servicer import WorkerServicer

_LOGGER = logging.getLogger(__name__)

LISTENING_PREFIX = "fedla worker listening on "
"""First line a worker prints; ``Context(local_workers=...)`` reads the port from it."""

SHUTDOWN_GRACE_SECONDS = 5.0


def create_server(
    data_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    max_threads: int | None = None,
    allowed_modules: tuple[str, ...] = DEFAULT_ALLOWED_MODULES,
) -> tuple[grpc.Server, int]:
    """Build a worker server bound to ``host:port`` (0 = a free port); returns it and the port."""
    data_path = Path(data_dir)
    if not data_path.is_dir():
        problem = "is not a directory" if data_path.exists() else "does not exist"
        raise FileNotFoundError(f"data directory {str(data_path)!r} {problem}")
    config = WorkerConfig(data_dir=data_path, allowed_modules=tuple(allowed_modules))
    servicer = WorkerServicer(RequestHandler(config))
    threads = max_threads or min(32, (os.cpu_count() or 1) + 4)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fedla-worker"),
        # Without SO_REUSEPORT off, a second worker on a taken port would bind it too and the
        # kernel would split connections between two workers with different data.
        options=[*GRPC_OPTIONS, ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((servicer.generic_handler(),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpc's message only says "Failed to bind"
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}; is another process using the port?")
    return server, bound


def serve(
    data_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    allowed_modules: tuple[str, ...] = DEFAULT_ALLOWED_MODULES,
) -> None:
    """Run a worker until SIGTERM or SIGINT, then stop after a grace period."""
    server, bound = create_server(data_dir, host, port, allowed_modules=allowed_modules)
    server.start()
    stopped = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        _LOGGER.info("signal %d: stopping (grace %.0f s)", signum, SHUTDOWN_GRACE_SECONDS)
        server.stop(SHUTDOWN_GRACE_SECONDS)
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{LISTENING_PREFIX}{host}:{bound} (data dir {Path(data_dir).resolve()})", flush=True)
    while not stopped.wait(0.5):
        pass
    server.wait_for_termination()
