"""``fedla status HOST:PORT``: what a worker holds and how its caches do, for operators."""

from __future__ import annotations

from fedla.runtime.errors import FedlaError
from fedla.runtime.protocol.client import ClientTls, WorkerClient


def print_status(address: str, token: str | None = None, tls: ClientTls | None = None) -> int:
    """Print the status of the worker at ``address``; returns a process exit code.

    With a tenant's token the worker shows that tenant only; with an operator's, every tenant.
    """
    client = WorkerClient(address, timeout=10, token=token, tls=tls)
    try:
        status = client.status()
    except FedlaError as exc:
        print(f"fedla status: {exc}")
        return 1
    finally:
        client.close()
    print(f"worker {address}: up {_duration(status.uptime_seconds)}, "
          f"resident memory {_size(status.rss_bytes)}, data dir {status.data_dir}")
    print(f"tenants: {len(status.tenants)} (idle ones are dropped after "
          f"{_duration(status.tenant_timeout_seconds)})")
    for tenant in status.tenants:
        print(f"  {tenant.tenant or '(unnamed)'}  {tenant.variables:>6} variables  "
              f"{_size(tenant.held_bytes):>10} held  idle {_duration(tenant.idle_seconds)}")
    for name, cache in (("READ cache", status.read_cache), ("lineage cache", status.lineage_cache)):
        if not status.HasField(name.split()[0].lower() + "_cache"):
            continue  # shown to operators only
        lookups = cache.hits + cache.misses
        rate = f"{100 * cache.hits / lookups:.1f}%" if lookups else "-"
        budget = f" of {_size(cache.budget)}" if cache.budget else ""
        evicted = f", {cache.evictions} evicted" if cache.budget else ""
        print(f"{name}: {cache.entries} entries, {_size(cache.bytes)}{budget}, "
              f"hit rate {rate} ({cache.hits} hits, {cache.misses} misses{evicted})")
    return 0


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
