"""Creating and running a worker daemon (``fedla worker``)."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.protocol.framing import GRPC_OPTIONS
from fedla.runtime.worker.auth import Authenticator
from fedla.runtime.worker.parent_watch import watch_parent
from fedla.runtime.worker.request_handler import RequestHandler, WorkerConfig
from fedla.runtime.worker.servicer import WorkerServicer

_LOGGER = logging.getLogger(__name__)

LISTENING_PREFIX = "fedla worker listening on "
"""First line a worker prints; ``Context(local_workers=...)`` reads the port from it."""

SHUTDOWN_GRACE_SECONDS = 5.0

MAX_SERVER_THREADS = 128
"""Most threads of a worker's gRPC pool, whatever ``--max-streams-per-tenant`` says."""

KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 500),
    ("grpc.http2.max_ping_strikes", 0),
]
"""Accept the coordinators' keepalive pings (``protocol.client.keepalive_options``).

By default a gRPC server treats pings more often than every 5 minutes while it sends no data (a
long computation) as abuse and drops the connection after two; coordinators ping every few
seconds to notice a frozen worker, so any rate is allowed and no ping counts as a strike.
"""


@dataclass(frozen=True)
class ServerTls:
    """The worker's TLS files (PEM): its certificate and key, and optionally a client CA.

    With ``client_ca`` every client must present a certificate signed by it (mTLS), and the
    certificate's common name is the caller's tenant.
    """

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials for gRPC from the files."""
        client_ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_threads(streams_per_tenant: int, cores: int | None = None) -> int:
    """Threads of a worker's gRPC pool: room for four tenants' whole stream budgets.

    Each ``Call``/``Execute`` holds a thread while it runs and a tenant holds at most
    ``--max-streams-per-tenant`` of them, so with at least four budgets' worth one tenant's
    stalled streams leave threads for the others. At least cores + 4, at most
    ``MAX_SERVER_THREADS``.
    """
    cores = cores or os.cpu_count() or 1
    return min(MAX_SERVER_THREADS, max(cores + 4, 4 * streams_per_tenant))


def create_server(
    config: WorkerConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    max_threads: int | None = None,
    authenticator: Authenticator | None = None,
    tls: ServerTls | None = None,
    insecure: bool = False,
) -> tuple[grpc.Server, int]:
    """Build a worker server bound to ``host:port`` (0 = a free port); returns it and the port.

    Without credentials (no tenant tokens in ``authenticator``, no client CA in ``tls``) the
    worker binds only to a loopback address unless ``insecure``: anyone who can reach it could
    otherwise name any tenant.

    Raises
    ------
    InvalidArgumentError
        ``host`` is not loopback, no credentials are configured and ``insecure`` is False.
    """
    data_path = config.data_dir
    if not data_path.is_dir():
        problem = "is not a directory" if data_path.exists() else "does not exist"
        raise FileNotFoundError(f"data directory {str(data_path)!r} {problem}")
    authenticator = authenticator or Authenticator(
        tokens={}, operator_tokens={}, client_certificates=bool(tls and tls.client_ca)
    )
    if not authenticator.required and not is_loopback(host):
        if not insecure:
            raise InvalidArgumentError(
                f"refusing to serve {host} without credentials: any machine that reaches it "
                "could read and change every tenant's data. Give --token-file FILE (see 'fedla "
                "token add') or --tls-client-ca CA, bind --host 127.0.0.1, or pass --insecure "
                "to serve unauthenticated anyway"
            )
        _LOGGER.warning(
            "INSECURE: serving %s without credentials (--insecure); any machine that reaches "
            "this port can read, change and clear every tenant's data", host,
        )
    servicer = WorkerServicer(RequestHandler(config), authenticator)
    threads = max_threads or server_threads(config.limits.max_streams_per_tenant)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fedla-worker"),
        # Without SO_REUSEPORT off, a second worker on a taken port would bind it too and the
        # kernel would split connections between two workers with different data.
        options=[*GRPC_OPTIONS, *KEEPALIVE_OPTIONS, ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((servicer.generic_handler(),))
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, tls.credentials())
    except RuntimeError:  # grpc's message only says "Failed to bind"
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}; is another process using the port?")
    return server, bound


def serve(
    config: WorkerConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    authenticator: Authenticator | None = None,
    tls: ServerTls | None = None,
    insecure: bool = False,
    parent_pid: int | None = None,
) -> None:
    """Run a worker until SIGTERM or SIGINT, then stop after a grace period.

    While running, tenants idle longer than ``config.tenant_timeout`` lose their scopes.
    Credentials and ``insecure`` are those of ``create_server``. With ``parent_pid`` the worker
    also stops when that process, its parent, is gone (``parent_watch``).
    """
    server, bound = create_server(
        config, host, port, authenticator=authenticator, tls=tls, insecure=insecure
    )
    server.start()
    stopped = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        _LOGGER.info("signal %d: stopping (grace %.0f s)", signum, SHUTDOWN_GRACE_SECONDS)
        server.stop(SHUTDOWN_GRACE_SECONDS)
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if parent_pid is not None:
        watch_parent(parent_pid, lambda: os.kill(os.getpid(), signal.SIGTERM))
    print(f"{LISTENING_PREFIX}{host}:{bound} (data dir {config.data_dir.resolve()})", flush=True)
    while not stopped.wait(0.5):
        for tenant in config.tenants.drop_idle(config.tenant_timeout):
            _LOGGER.info("dropped the scope of an idle tenant (%s...)", tenant[:8])
    server.wait_for_termination()
