"""Regenerate ``fedla_pb2.py``/``fedla_pb2_grpc.py`` from ``fedla.proto``.

Run ``python -m fedla.runtime.protocol.generate`` (needs the ``dev`` extra: grpcio-tools). The
generated modules are committed so that installs need no code generation.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    """Run protoc on fedla.proto and fix the generated import to be package-relative."""
    from grpc_tools import protoc

    here = Path(__file__).resolve().parent
    status = protoc.main(
        [
            "protoc",
            f"-I{here}",
            f"--python_out={here}",
            f"--pyi_out={here}",
            f"--grpc_python_out={here}",
            str(here / "fedla.proto"),
        ]
    )
    if status != 0:
        return status
    grpc_module = here / "fedla_pb2_grpc.py"
    text = grpc_module.read_text()
    grpc_module.write_text(text.replace("import fedla_pb2 as", "from . import fedla_pb2 as"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
