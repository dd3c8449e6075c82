"""Who is calling a worker: the identity whose ``TenantScope`` a batch runs in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """The caller of a batch.

    The servicer builds it from the caller's credential (``worker.auth``): a bearer token's
    tenant name or a client certificate's common name. Only a worker without credentials
    (loopback, or ``--insecure``) takes the tenant from the request envelope.

    Parameters
    ----------
    tenant : str
        The tenant id; it selects the caller's ``TenantScope``.
    operator : bool, default False
        The caller presented an operator token: ``Status`` shows it every tenant.
    """

    tenant: str
    operator: bool = False
