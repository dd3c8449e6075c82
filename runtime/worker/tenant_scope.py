"""Per-tenant variable namespaces at a worker.

A tenant (one coordinator) sees only its own ``TenantScope``: lookups never fall through to
another tenant, so another tenant's variable name is simply unknown. Scopes that stay idle longer
than the worker's tenant timeout are dropped, so a coordinator that crashed cannot hold memory
forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fedla.runtime.errors import InvalidArgumentError, ResourceLimitError, UnknownVariableError
from fedla.runtime.lineage_cache import value_nbytes
from fedla.runtime.worker.limits import WorkerLimits
from fedla.runtime.worker.variables import DerivedVariable, PinnedVariable, Variable

MAX_NAME_LENGTH = 256

MAX_PRODUCED_KEYS = 65_536
"""Cache keys a scope remembers producing; past this it forgets them all (reuse is then
reported as False until the tenant produces them again, never as True wrongly)."""


class TenantScope:
    """The variables of one tenant."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self._vars: dict[str, Variable] = {}
        self._produced: set[str] = set()
        self._lock = threading.Lock()
        self.last_used = time.monotonic()
        self.in_flight = 0  # batches of this tenant running now (guarded by the registry)

    def get(self, var: str) -> Variable:
        """Return variable ``var`` or raise ``UnknownVariableError``."""
        with self._lock:
            try:
                return self._vars[var]
            except KeyError:
                raise UnknownVariableError(
                    f"no variable {var!r} in this tenant's scope (never created, cleared, or "
                    "dropped after the tenant stayed idle past the worker's --tenant-timeout)"
                ) from None

    def put(self, var: str, variable: Variable) -> None:
        """Bind ``var`` to ``variable``, replacing an earlier binding of this tenant."""
        if not var or len(var) > MAX_NAME_LENGTH:
            raise InvalidArgumentError(
                f"variable names must have 1 to {MAX_NAME_LENGTH} characters; got {var!r}"
            )
        with self._lock:
            self._vars[var] = variable

    def own_reuse(self, key: str, reused: bool) -> bool:
        """The ``reused`` flag to report for cache entry ``key``: never another tenant's work.

        READ and lineage caches are shared by tenants; that an entry was there already may only
        be reported when this tenant produced it itself (read the file or ran the computation
        before), else a tenant could learn what another one read or computed. Records ``key``
        as produced by this tenant.
        """
        with self._lock:
            produced_before = key in self._produced
            if len(self._produced) >= MAX_PRODUCED_KEYS:
                self._produced.clear()
            self._produced.add(key)
        return reused and produced_before

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

    def held_bytes(self) -> int:
        """Bytes of the values this tenant pins (PUT data and files; cached results not counted)."""
        with self._lock:
            variables = list(self._vars.values())
        return sum(value_nbytes(v.value()) for v in variables if not isinstance(v, DerivedVariable))


    def pinned_bytes(self) -> int:
        """Bytes of the values this tenant sent or made: PUT data, EXEC_UDF results.

        These count against its ``--tenant-mem`` quota; shared files and cached results do not.
        """
        with self._lock:
            variables = list(self._vars.values())
        return sum(value_nbytes(v.value()) for v in variables if isinstance(v, PinnedVariable))


class TenantRegistry:
    """All tenant scopes of a worker, created on a tenant's first request.

    ``on_drop`` callbacks run with the tenant id of each scope dropped for idleness (the
    request handler forgets that tenant's cached results there).
    """

    def __init__(self, limits: WorkerLimits | None = None) -> None:
        self._scopes: dict[str, TenantScope] = {}
        self._lock = threading.RLock()
        self.limits = limits or WorkerLimits()
        self.on_drop: list[Callable[[str], None]] = []

    def scope(self, tenant: str) -> TenantScope:
        """The scope of ``tenant``, created if new; marks it as used now.

        Raises ``ResourceLimitError`` for a tenant id longer than ``--max-tenant-id`` and for
        a new tenant when ``--max-tenants`` tenants have a scope already.
        """
        if not tenant:
            raise InvalidArgumentError("the batch names no tenant; every Context sends its id")
        if len(tenant) > self.limits.max_tenant_id_length:
            raise ResourceLimitError(
                f"tenant id of {len(tenant)} characters is longer than this worker's limit of "
                f"{self.limits.max_tenant_id_length} (--max-tenant-id)"
            )
        with self._lock:
            scope = self._scopes.get(tenant)
            if scope is None:
                if len(self._scopes) >= self.limits.max_tenants:
                    raise ResourceLimitError(
                        f"this worker serves {len(self._scopes)} tenants, its limit "
                        f"(--max-tenants); try again when idle tenants have been dropped"
                    )
                scope = self._scopes[tenant] = TenantScope(tenant)
            scope.last_used = time.monotonic()
            return scope

    @contextmanager
    def using(self, tenant: str) -> Iterator[TenantScope]:
        """The scope of ``tenant`` (as ``scope``), kept while the block runs.

        ``drop_idle`` never drops a scope with a batch in flight, however long it runs: a batch
        longer than ``--tenant-timeout`` used to lose its own tenant's data.
        """
        with self._lock:
            scope = self.scope(tenant)
            scope.in_flight += 1
        try:
            yield scope
        finally:
            with self._lock:
                scope.in_flight -= 1
                scope.last_used = time.monotonic()

    def tenants(self) -> list[TenantScope]:
        """The scopes, by tenant id."""
        with self._lock:
            return [self._scopes[t] for t in sorted(self._scopes)]

    def drop_idle(self, timeout: float) -> list[str]:
        """Drop scopes unused for more than ``timeout`` seconds; returns their tenant ids.

        A scope with a batch in flight is in use, not idle, and stays.
        """
        now = time.monotonic()
        with self._lock:
            idle = [t for t, s in self._scopes.items()
                    if s.in_flight == 0 and now - s.last_used > timeout]
            for tenant in idle:
                del self._scopes[tenant]
        for tenant in idle:
            for callback in self.on_drop:
                callback(tenant)
        return idle
