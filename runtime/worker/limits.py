"""The bounds a worker puts on what one tenant's requests may make it hold.

Each is a ``fedla worker`` option with the default below; a request that exceeds one is answered
with a ``ResourceLimitError`` naming the option, before the worker allocates anything for it, and
the worker goes on serving.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from fedla.runtime.errors import ResourceLimitError


def default_tenant_bytes() -> int:
    """A tenant's memory quota when the operator sets none: a quarter of RAM."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


@dataclass
class WorkerLimits:
    """Per-message and per-tenant limits (option names in brackets).

    Attributes
    ----------
    max_envelope_bytes : int, default 64 MiB
        Serialized envelope of one message, inline values included [--max-envelope].
    max_buffers : int, default 16384
        Out-of-line buffers one message may declare [--max-buffers].
    tenant_bytes : int, default a quarter of RAM
        Bytes a tenant may hold in values it sent or made (PUT data, EXEC_UDF results; not
        the shared files it READ), checked against the buffers a message declares before they
        are allocated, and at each PUT [--tenant-mem].
    max_tenant_id_length : int, default 256
        Characters of a tenant id [--max-tenant-id].
    max_tenants : int, default 1024
        Tenants with a scope at this worker at once; idle ones are dropped first
        [--max-tenants].
    ticket_ttl : float, default 60 s
        How long a reply too large for one message waits to be fetched [--ticket-ttl].
    ticket_bytes : int, default 2 GiB
        Bytes of unfetched replies a tenant may have waiting [--ticket-mem].
    stream_timeout : float, default 30 s
        Longest wait for the next frame of an ``Execute`` stream; a stream that stops sending
        is ended with a ``ResourceLimitError`` and frees its server thread [--stream-timeout].
    max_streams_per_tenant : int, default 4
        Batches (``Call`` and ``Execute`` streams) one tenant may have in flight at once. Each
        holds a server thread while it runs, so this is also the tenant's thread budget: one
        tenant's slow or stalled work cannot take the threads another needs. Without
        credentials, streams that have not yet named their tenant share twice this budget
        [--max-streams-per-tenant].
    """

    max_envelope_bytes: int = 64 * 1024**2
    max_buffers: int = 16_384
    tenant_bytes: int = field(default_factory=default_tenant_bytes)
    max_tenant_id_length: int = 256
    max_tenants: int = 1024
    ticket_ttl: float = 60.0
    ticket_bytes: int = 2 * 1024**3
    stream_timeout: float = 30.0
    max_streams_per_tenant: int = 4

    def check_tenant_bytes(self, held: int, adding: int, what: str) -> None:
        """Raise ``ResourceLimitError`` when ``held + adding`` bytes exceed ``tenant_bytes``."""
        if held + adding > self.tenant_bytes:
            raise ResourceLimitError(
                f"{what} of {adding} bytes would make this tenant hold {held + adding} bytes; "
                f"the worker's quota (--tenant-mem) is {self.tenant_bytes} bytes per tenant. "
                "CLEAR variables you no longer need, or send less"
            )
