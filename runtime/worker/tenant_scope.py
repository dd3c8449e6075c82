"""Per-tenant variable namespaces at a worker.

A tenant (one coordinator) sees only its own ``TenantScope``: lookups never fall through to
another tenant, so another tenant's variable name is simply unknown.
"""

from __future__ import annotations

import threading
from typing import Any

from fedla.runtime.errors import InvalidArgumentError, UnknownVariableError

MAX_NAME_LENGTH = 256


class TenantScope:
    """The variables of one tenant."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self._vars: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, var: str) -> Any:
        """Return variable ``var`` or raise ``UnknownVariableError``."""
        with self._lock:
            try:
                return self._vars[var]
            except KeyError:
                raise UnknownVariableError(
                    f"no variable {var!r} in this tenant's scope (never created, or cleared)"
                ) from None

    def put(self, var: str, value: Any) -> None:
        """Bind ``var`` to ``value``, replacing an earlier binding of this tenant."""
        if not var or len(var) > MAX_NAME_LENGTH:
            raise InvalidArgumentError(
                f"variable names must have 1 to {MAX_NAME_LENGTH} characters; got {var!r}"
            )
        with self._lock:
            self._vars[var] = value

    def drop(self, names: list[str]) -> None:
        """Remove ``names``; names that do not exist are ignored so that CLEAR is idempotent."""
        with self._lock:
            for name in names:
                self._vars.pop(name, None)

    def drop_all(self) -> None:
        """Remove every variable of this tenant."""
        with self._lock:
            self._vars.clear()

    def names(self) -> list[str]:
        """Names of the variables, sorted."""
        with self._lock:
            return sorted(self._vars)


class TenantRegistry:
    """All tenant scopes of a worker, created on a tenant's first request."""

    def __init__(self) -> None:
        self._scopes: dict[str, TenantScope] = {}
        self._lock = threading.Lock()

    def scope(self, tenant: str) -> TenantScope:
        """The scope of ``tenant``, created if new."""
        if not tenant:
            raise InvalidArgumentError("the batch names no tenant; every Context sends its id")
        with self._lock:
            scope = self._scopes.get(tenant)
            if scope is None:
                scope = self._scopes[tenant] = TenantScope(tenant)
            return scope

    def tenants(self) -> list[str]:
        """Ids of the tenants seen, sorted."""
        with self._lock:
            return sorted(self._scopes)
