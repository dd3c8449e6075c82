"""The ``fedla`` command line: ``fedla worker`` runs a worker daemon, ``fedla demo`` a tour."""

from __future__ import annotations

import argparse
import logging
import sys

from fedla.runtime.worker.request_handler import DEFAULT_ALLOWED_MODULES


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedla`` console script."""
    parser = argparse.ArgumentParser(prog="fedla", description=__doc__)
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (DEBUG logs every request at a worker)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run a worker daemon at a data site")
    worker.add_argument("--port", type=int, default=8001, help="port to listen on (0 = any free)")
    worker.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    worker.add_argument("--data-dir", required=True, help="directory READ may load files from")
    worker.add_argument(
        "--allow-module", action="append", default=[], metavar="PKG",
        help="also allow EXEC_UDF to call functions of package PKG (repeatable); "
        f"always allowed: {', '.join(DEFAULT_ALLOWED_MODULES)}. Every public function of PKG "
        "becomes callable by any coordinator that can reach this worker: allow only packages "
        "you trust with your data (e.g. not numpy, whose load/save touch files)",
    )

    demo = commands.add_parser("demo", help="start loopback workers and run a federated example")
    demo.add_argument("--workers", type=int, default=3, help="number of loopback workers")
    demo.add_argument("--rows", type=int, default=300_000, help="rows of the demo matrix")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "worker":
        from fedla.runtime.worker.server import serve

        try:
            serve(
                args.data_dir, host=args.host, port=args.port,
                allowed_modules=DEFAULT_ALLOWED_MODULES + tuple(args.allow_module),
            )
        except OSError as exc:  # bad data dir, port in use: a message, not a traceback
            worker.error(str(exc))
        return 0
    from fedla.demo import run_demo

    return run_demo(workers=args.workers, rows=args.rows)
