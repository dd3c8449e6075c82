"""The error <-> status code table, and the modules that must stay free of grpc and protobuf."""

from __future__ import annotations

import ast
from pathlib import Path

import grpc
import pytest

import fedla.runtime
from fedla.runtime.errors import (
    ERROR_CLASSES,
    FedlaError,
    InvalidArgumentError,
    MalformedRequestError,
    ShapeMismatchError,
    UnknownVariableError,
    WorkerInternalError,
    WorkerUnavailableError,
)
from fedla.runtime.protocol.status_codes import error_from_status, status_code

RUNTIME = Path(fedla.runtime.__file__).parent
TRANSPORT_FREE = [
    "errors.py", "lineage.py", "protocol/requests.py", "worker/principal.py",
    "worker/request_handler.py", "worker/variables.py", "worker/tenant_scope.py", "worker/auth.py",
]
"""Modules that in-process sites and Spark tasks use without the wire."""


@pytest.mark.parametrize("module", TRANSPORT_FREE)
def test_transport_free_modules_import_neither_grpc_nor_protobuf(module):
    tree = ast.parse((RUNTIME / module).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [f"{node.module}.{alias.name}" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) for alias in node.names]
    offending = [name for name in imported
                 if name.startswith(("grpc", "google.protobuf")) or "pb2" in name]
    assert not offending, f"{module} imports {offending}"


@pytest.mark.parametrize(
    "cls, code",
    [(InvalidArgumentError, "INVALID_ARGUMENT"), (ShapeMismatchError, "INVALID_ARGUMENT"),
     (MalformedRequestError, "INVALID_ARGUMENT"), (UnknownVariableError, "NOT_FOUND"),
     (ERROR_CLASSES["DataFileNotFoundError"], "NOT_FOUND"),
     (ERROR_CLASSES["UnknownKernelError"], "UNIMPLEMENTED"),
     (ERROR_CLASSES["AccessDeniedError"], "PERMISSION_DENIED"),
     (ERROR_CLASSES["AuthenticationError"], "UNAUTHENTICATED"),
     (ERROR_CLASSES["ResourceLimitError"], "RESOURCE_EXHAUSTED"),
     (ERROR_CLASSES["RequestSkippedError"], "ABORTED"),
     (WorkerUnavailableError, "UNAVAILABLE"), (ERROR_CLASSES["CallCancelledError"], "CANCELLED"),
     (WorkerInternalError, "INTERNAL"), (FedlaError, "INTERNAL")],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_each_error_class_has_its_status_code(cls, code):
    assert status_code(cls("x")).name == code


def test_a_subclass_without_an_entry_takes_its_base_class_code():
    class ColumnMismatchError(ShapeMismatchError):
        pass

    assert status_code(ColumnMismatchError("x")) is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("name", sorted(ERROR_CLASSES))
def test_the_client_rebuilds_every_class_from_a_status(name):
    error = ERROR_CLASSES[name]("what went wrong")
    rebuilt = error_from_status(status_code(error), f"{name}: what went wrong")
    assert type(rebuilt) is type(error)
    assert str(rebuilt) == "what went wrong"


@pytest.mark.parametrize(
    "code, cls",
    [(grpc.StatusCode.NOT_FOUND, UnknownVariableError),
     (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
     (grpc.StatusCode.DEADLINE_EXCEEDED, WorkerUnavailableError),
     (grpc.StatusCode.UNAUTHENTICATED, ERROR_CLASSES["AuthenticationError"]),
     (grpc.StatusCode.UNKNOWN, WorkerInternalError), (None, WorkerInternalError)],
    ids=["not-found", "invalid", "deadline", "unauthenticated", "unknown", "none"],
)
def test_details_without_a_known_class_map_by_code(code, cls):
    error = error_from_status(code, "NoSuchError: something")
    assert type(error) is cls
    assert str(error) == "NoSuchError: something"
