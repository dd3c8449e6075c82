"""Where the worker applies privacy levels to its variables (``fedla.runtime.privacy``).

- ``privacy_of``: the descriptor of an EXEC operand (a literal is public);
- ``check_release``: refuse a GET of a value that may not leave the site (GETs serve Gathers
  and Repartitions too);
- ``udf_privacy``: EXEC_UDF results are opaque unless every input is public, and a UDF whose
  result would come back directly is refused before it runs;
- ``request_datasets``: the datasets a request touches, for the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedla.runtime.errors import AccessDeniedError, FedlaError
from fedla.runtime.privacy import PUBLIC, Privacy, opaque, refusal
from fedla.runtime.protocol.requests import ExecInst, ExecUdf, Get, Literal, Read, Request
from fedla.runtime.worker.tenant_scope import TenantScope
from fedla.runtime.worker.variables import LiteralInput, Variable


def privacy_of(item: Variable | LiteralInput) -> Privacy:
    """The privacy descriptor of an EXEC input."""
    return item.privacy if isinstance(item, Variable) else PUBLIC


def check_release(variable: Variable) -> None:
    """Raise ``AccessDeniedError`` naming the dataset and the rule unless ``variable`` may leave."""
    reason = refusal(variable.privacy)
    if reason is not None:
        raise AccessDeniedError(reason)


def udf_privacy(function: str, inputs: Sequence[Variable | LiteralInput], returned: bool
                ) -> Privacy:
    """The descriptor of EXEC_UDF ``function``'s results over ``inputs``.

    Raises ``AccessDeniedError`` when the result would be ``returned`` to the caller and any
    input is restricted, before the function runs.
    """
    privacy = opaque([privacy_of(item) for item in inputs],
                     f"was computed by EXEC_UDF {function!r}")
    if returned and not privacy.public:
        raise AccessDeniedError(
            f"{refusal(privacy)}; EXEC_UDF results over restricted data cannot be returned "
            "(keep them at the site with outputs=... and aggregate them with kernels)"
        )
    return privacy


def request_datasets(scope: TenantScope, request: Request | FedlaError) -> tuple[str, ...]:
    """The dataset read by ``request`` or the restricted datasets its variables derive from."""
    if isinstance(request, Read):
        return (request.path,)
    names: list[str] = []
    if isinstance(request, Get):
        names = [request.var]
    elif isinstance(request, ExecInst):
        names = [request.output]
    elif isinstance(request, ExecUdf):
        names = [op for op in request.inputs if not isinstance(op, Literal)]
    found: set[str] = set()
    for name in names:
        try:
            found.update(scope.get(name).privacy.datasets)
        except FedlaError:  # unknown variable: the request's own error says so
            continue
    return tuple(sorted(found))
