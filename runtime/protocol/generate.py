"""Regenerate ``<name>_pb2.py``/``<name>_pb2_grpc.py`` from ``fedla.proto`` and ``paramserv.proto``.

Run ``python -m fedla.runtime.protocol.generate`` (needs the ``dev`` extra: grpcio-tools). The
generated modules are committed so that installs need no code generation.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTOS = ("fedla", "paramserv")


def main() -> int:
    """Run protoc on each proto and fix the generated import to be package-relative."""
    from grpc_tools import protoc

    here = Path(__file__).resolve().parent
    for name in PROTOS:
        status = protoc.main(
            [
                "protoc",
                f"-I{here}",
                f"--python_out={here}",
                f"--pyi_out={here}",
                f"--grpc_python_out={here}",
                str(here / f"{name}.proto"),
            ]
        )
        if status != 0:
            return status
        grpc_module = here / f"{name}_pb2_grpc.py"
        text = grpc_module.read_text()
        grpc_module.write_text(
            text.replace(f"import {name}_pb2 as", f"from . import {name}_pb2 as")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
