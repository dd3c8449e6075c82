"""The ``fedla`` command line: ``fedla worker`` runs a worker daemon, ``fedla demo`` a tour.

``fedla status`` shows workers' state, ``fedla token add`` and ``fedla certs`` make the
credentials a worker checks. Global options (``--log-level``) go before or after the subcommand.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import version
from pathlib import Path

from fedla.runtime.errors import FedlaError
from fedla.runtime.worker.limits import WorkerLimits
from fedla.runtime.worker.request_handler import (
    DEFAULT_ALLOWED_MODULES,
    DEFAULT_TENANT_TIMEOUT_SECONDS,
    WorkerConfig,
)

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]

_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedla`` console script."""
    parser = argparse.ArgumentParser(prog="fedla", description=__doc__)
    parser.add_argument(
        "--log-level", default="INFO", choices=LOG_LEVELS,
        help="logging level (DEBUG logs every request at a worker); also accepted after the "
        "subcommand",
    )
    parser.add_argument("--version", action="version", version=f"fedla {version('fedla')}")
    # the global options again, for every subcommand: `fedla worker ... --log-level DEBUG`;
    # SUPPRESS keeps a value given before the subcommand when none is given after it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS,
                        help="logging level (as before the subcommand)")
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", parents=[common],
                                 help="run a worker daemon at a data site")
    worker.add_argument("--port", type=int, default=8001, help="port to listen on (0 = any free)")
    worker.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    worker.add_argument("--data-dir", help="directory READ may load files from (required)")
    worker.add_argument(
        "--cache-mem", type=_byte_size, default=None, metavar="SIZE",
        help="memory budget of the lineage cache, e.g. 4GB or 512MB "
        "(default: a quarter of RAM, at most 4GB)",
    )
    worker.add_argument(
        "--tenant-timeout", type=float, default=DEFAULT_TENANT_TIMEOUT_SECONDS, metavar="SECONDS",
        help="drop a tenant's variables after it sent nothing for this long (default: 1 day)",
    )
    worker.add_argument(
        "--allow-module", action="append", default=[], metavar="PKG",
        help="also allow EXEC_UDF to call the functions package PKG registers with "
        "@fedla.runtime.udf_registry.remote_function (repeatable; the worker imports PKG); "
        f"always allowed: the registered functions of {', '.join(DEFAULT_ALLOWED_MODULES)}",
    )
    _add_limit_options(worker)
    worker.add_argument(
        "--list-udfs", action="store_true",
        help="print the functions EXEC_UDF may call at this worker (with --allow-module) and exit",
    )
    worker.add_argument(
        "--audit-log", type=Path, default=None, metavar="FILE",
        help="append one JSON line per request to FILE (time, tenant, request, datasets, "
        "bytes out, allowed or refused and why)",
    )

    worker.add_argument(
        "--token-file", metavar="FILE",
        help="tenants' tokens, one 'name: sha256-hex' line each (made by 'fedla token add'); "
        "callers must present one and their tenant is its name",
    )
    worker.add_argument(
        "--operator-token-file", metavar="FILE",
        help="operators' tokens (same format); 'fedla status' with one shows every tenant",
    )
    worker.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate")
    worker.add_argument("--tls-key", metavar="PEM", help="the key of --tls-cert")
    worker.add_argument(
        "--tls-client-ca", metavar="PEM",
        help="require client certificates signed by this CA (mTLS); a certificate's common "
        "name is the caller's tenant",
    )
    worker.add_argument(
        "--parent-pid", type=int, default=None, metavar="PID",
        help="stop when process PID, this worker's parent, is gone (local workers of a "
        "Context pass their coordinator's pid, so they never outlive it)",
    )
    worker.add_argument(
        "--insecure", action="store_true",
        help="allow serving a non-loopback --host without --token-file or --tls-client-ca: "
        "anyone who reaches the port can then act as any tenant",
    )

    status = commands.add_parser("status", parents=[common],
                                 help="show workers' tenants, memory and caches")
    status.add_argument("addresses", nargs="+", metavar="HOST:PORT", help="the workers to ask")
    _add_client_credentials(status)

    token = commands.add_parser("token", parents=[common], help="manage a worker's token file")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    token_add = token_commands.add_parser(
        "add", parents=[common],
        help="make a random token for a tenant, print it once, store its hash",
    )
    token_add.add_argument("name", help="the tenant name the token authenticates")
    token_add.add_argument("--file", required=True, help="token file to append to")

    certs = commands.add_parser(
        "certs", parents=[common],
        help="make a development CA, a server and a client certificate (PEM)",
    )
    certs.add_argument("directory", metavar="DIR", help="where to write the files")
    certs.add_argument(
        "--host", action="append", default=[], metavar="NAME",
        help="a DNS name or IP of the workers (repeatable); localhost and 127.0.0.1 always",
    )
    certs.add_argument(
        "--client", default="fedla-client", metavar="NAME",
        help="common name of the client certificate, i.e. its tenant (default fedla-client)",
    )

    demo = commands.add_parser("demo", parents=[common],
                               help="start loopback workers and run a federated example")
    demo.add_argument("--workers", type=int, default=3, help="number of loopback workers")
    demo.add_argument("--rows", type=int, default=300_000, help="rows of the demo matrix")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "worker":
        return _run_worker(worker, args)
    if args.command == "status":
        from fedla.runtime.protocol.client import ClientTls
        from fedla.worker_status import print_status

        tls = None
        if args.tls_ca or args.tls_cert or args.tls_key:
            tls = ClientTls(args.tls_ca, args.tls_cert, args.tls_key)
        token = args.token or os.environ.get("FEDLA_TOKEN")
        return max(print_status(address, token=token, tls=tls) for address in args.addresses)
    if args.command == "token":
        from fedla.runtime.worker.auth import add_token

        try:
            secret = add_token(args.file, args.name)
        except (FedlaError, OSError) as exc:
            token_add.error(str(exc))
        print(secret)
        print(f"stored the hash of tenant {args.name!r}'s token in {args.file}; the token is "
              "shown only now: give it to the tenant (Context(token=...) or FEDLA_TOKEN)",
              file=sys.stderr)
        return 0
    if args.command == "certs":
        try:
            from fedla.dev_certs import make_dev_certs
        except ImportError:
            certs.error("needs the cryptography package: pip install 'fedla[certs]'")
        try:
            paths = make_dev_certs(args.directory, args.host, client_name=args.client)
        except (OSError, ValueError) as exc:
            certs.error(str(exc))
        for role, path in paths.items():
            print(f"{role:>10}: {path}")
        return 0
    from fedla.demo import run_demo

    return run_demo(workers=args.workers, rows=args.rows)


def _run_worker(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from fedla.runtime.worker.auth import Authenticator, read_token_file
    from fedla.runtime.worker.server import ServerTls, serve

    allowed = DEFAULT_ALLOWED_MODULES + tuple(args.allow_module)
    if args.list_udfs:
        return _list_udfs(parser, allowed)
    if args.data_dir is None:
        parser.error("the following arguments are required: --data-dir")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key (mTLS runs over TLS)")
    try:
        tokens = read_token_file(args.token_file) if args.token_file else {}
        operators = read_token_file(args.operator_token_file) if args.operator_token_file else {}
    except (FedlaError, OSError) as exc:
        parser.error(str(exc))
    if args.token_file and not tokens:
        parser.error(f"--token-file {args.token_file} holds no tokens; see 'fedla token add'")
    tls = None
    if args.tls_cert:
        tls = ServerTls(Path(args.tls_cert), Path(args.tls_key),
                        Path(args.tls_client_ca) if args.tls_client_ca else None)
    authenticator = Authenticator(tokens, operators, client_certificates=bool(args.tls_client_ca))
    config = WorkerConfig(
        data_dir=Path(args.data_dir),
        allowed_modules=allowed,
        tenant_timeout=args.tenant_timeout,
        audit_log=args.audit_log,
        limits=_limits(args),
    )
    if args.cache_mem is not None:
        config.cache_bytes = args.cache_mem
    try:
        serve(config, host=args.host, port=args.port, authenticator=authenticator, tls=tls,
              insecure=args.insecure, parent_pid=args.parent_pid)
    except (OSError, ImportError, FedlaError) as exc:  # bad data dir, port in use, no
        parser.error(str(exc))  # credentials, --allow-module typo
    return 0


def _add_client_credentials(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="bearer token (default: the FEDLA_TOKEN variable)")
    parser.add_argument("--tls-ca", metavar="PEM", help="CA of the worker's TLS certificate")
    parser.add_argument("--tls-cert", metavar="PEM", help="client certificate (mTLS)")
    parser.add_argument("--tls-key", metavar="PEM", help="the key of --tls-cert")


def _add_limit_options(worker: argparse.ArgumentParser) -> None:
    """The ``WorkerLimits`` options; a request over one gets a ``ResourceLimitError``."""
    d = WorkerLimits(tenant_bytes=0)
    limits = worker.add_argument_group("limits (exceeded -> ResourceLimitError, worker serves on)")
    limits.add_argument("--max-envelope", type=_byte_size, default=d.max_envelope_bytes,
                        metavar="SIZE", help="largest message envelope (default: 64MB)")
    limits.add_argument("--max-buffers", type=int, default=d.max_buffers, metavar="N",
                        help=f"most buffers one message may declare (default: {d.max_buffers})")
    limits.add_argument("--tenant-mem", type=_byte_size, default=None, metavar="SIZE",
                        help="bytes of PUT data one tenant may hold, checked before "
                        "buffers are allocated (default: a quarter of RAM)")
    limits.add_argument("--max-tenant-id", type=int, default=d.max_tenant_id_length,
                        metavar="N", help="longest tenant id in characters "
                        f"(default: {d.max_tenant_id_length})")
    limits.add_argument("--max-tenants", type=int, default=d.max_tenants, metavar="N",
                        help=f"most tenants served at once (default: {d.max_tenants})")
    limits.add_argument("--ticket-ttl", type=float, default=d.ticket_ttl, metavar="SECONDS",
                        help="how long a large reply waits to be fetched "
                        f"(default: {d.ticket_ttl:g})")
    limits.add_argument("--ticket-mem", type=_byte_size, default=d.ticket_bytes, metavar="SIZE",
                        help="bytes of unfetched large replies per tenant (default: 2GB)")
    limits.add_argument("--stream-timeout", type=float, default=d.stream_timeout,
                        metavar="SECONDS", help="end a stream whose next frame takes longer "
                        f"(default: {d.stream_timeout:g})")
    limits.add_argument("--max-streams-per-tenant", type=int, default=d.max_streams_per_tenant,
                        metavar="N", help="calls one tenant may have in flight; each holds a "
                        f"server thread (default: {d.max_streams_per_tenant})")


def _limits(args: argparse.Namespace) -> WorkerLimits:
    limits = WorkerLimits(
        max_envelope_bytes=args.max_envelope, max_buffers=args.max_buffers,
        max_tenant_id_length=args.max_tenant_id, max_tenants=args.max_tenants,
        ticket_ttl=args.ticket_ttl, ticket_bytes=args.ticket_mem,
        stream_timeout=args.stream_timeout, max_streams_per_tenant=args.max_streams_per_tenant,
    )
    if args.tenant_mem is not None:
        limits.tenant_bytes = args.tenant_mem
    return limits


def _list_udfs(parser: argparse.ArgumentParser, packages: tuple[str, ...]) -> int:
    """Print each function EXEC_UDF may call, with its signature and summary; exit code 0."""
    from fedla.runtime.udf_registry import describe_functions, import_packages

    try:
        import_packages(packages)
    except ImportError as exc:
        parser.error(f"--allow-module: {exc}")
    print("\n".join(describe_functions(packages)))
    return 0


def _byte_size(text: str) -> int:
    """Parse sizes like ``4GB``, ``512MB`` or ``1000000`` (binary units)."""
    cleaned = text.strip().upper().replace("IB", "B")
    number = cleaned.rstrip("KMGTB")
    unit = cleaned[len(number):]
    if unit not in _UNITS or not number:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 4GB, 512MB or 1000000)")
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
