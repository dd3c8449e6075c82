"""Batches in flight per tenant (``fedla worker --max-streams-per-tenant``).

Every ``Call`` and ``Execute`` holds a server thread from the moment its tenant is known until
its reply is sent. Without a bound per tenant, one tenant's stalled or slow streams took every
thread of the pool and no other tenant got an answer; with it, a tenant's extra streams are
refused at once and the rest of the pool stays free for the others.
"""

from __future__ import annotations

import threading

from fedla.runtime.errors import ResourceLimitError


class StreamSlots:
    """Counts each tenant's batches in flight and refuses one over ``limit``.

    ``who`` starts the refusal's message ("this tenant: 4 calls in flight ...").
    """

    def __init__(self, limit: int, who: str = "this tenant") -> None:
        self.limit = limit
        self.who = who
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, tenant: str) -> None:
        """Take a slot of ``tenant``; raise ``ResourceLimitError`` when all are taken."""
        with self._lock:
            count = self._in_flight.get(tenant, 0)
            if count >= self.limit:
                raise ResourceLimitError(
                    f"{self.who}: {count} calls in flight at this worker, the limit "
                    f"{self.limit} (--max-streams-per-tenant); wait for one to finish, or "
                    "finish streams you have started"
                )
            self._in_flight[tenant] = count + 1

    def release(self, tenant: str) -> None:
        """Give back a slot taken by ``acquire``."""
        with self._lock:
            count = self._in_flight.get(tenant, 0) - 1
            if count > 0:
                self._in_flight[tenant] = count
            else:
                self._in_flight.pop(tenant, None)

    def in_flight(self, tenant: str) -> int:
        """Slots ``tenant`` holds now."""
        with self._lock:
            return self._in_flight.get(tenant, 0)
