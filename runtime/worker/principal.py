"""Who is calling a worker: the identity whose ``TenantScope`` a batch runs in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """The caller of a batch.

    For now the servicer builds it from the envelope's tenant field; authenticated identities
    (bearer tokens, mTLS client certificates) will replace that source, not this type's role.

    Parameters
    ----------
    tenant : str
        The tenant id; it selects the caller's ``TenantScope``.
    """

    tenant: str
