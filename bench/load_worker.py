"""Load on one ``fedla worker``: concurrent authenticated tenants, mixed requests, RSS after.

    python bench/load_worker.py                       # 32 tenants x 200 requests
    python bench/load_worker.py --tenants 8 --requests 1000

Uses ``tests/runtime/load_harness.py`` (one token and one thread per tenant, one request per
round trip: PUT, EXEC_INST, GET, READ of a shared file, tsmm, GET, CLEAR). Prints requests/s,
leaks, lost responses and the worker's RSS against baseline + READ cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*

from tests.runtime.load_harness import load_worker, run_load  # noqa: E402

MIB = 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=32)
    parser.add_argument("--requests", type=int, default=200, help="per tenant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedla-load-") as directory:
        with load_worker(Path(directory), args.tenants) as (address, pid, tokens):
            r = run_load(address, pid, tokens, args.requests)
    print(f"| tenants x requests | {r.tenants} x {r.requests // r.tenants} |")
    print("|---|---|")
    print(f"| answered / sent | {r.answered} / {r.requests} |")
    print(f"| cross-tenant leaks | {len(r.leaks)} |")
    print(f"| unexpected errors | {len(r.errors)} |")
    print(f"| wall time | {r.seconds:.1f} s |")
    print(f"| throughput | {r.throughput:.0f} requests/s |")
    print(f"| RSS baseline (after warm-up) | {r.rss_baseline / MIB:.1f} MiB |")
    print(f"| READ cache | {r.read_cache_bytes / MIB:.1f} MiB |")
    print(f"| RSS after every CLEAR | {r.rss_after / MIB:.1f} MiB "
          f"(budget {r.rss_budget / MIB:.1f} MiB) |")
    for line in (r.leaks + r.errors)[:10]:
        print(line)
    ok = r.answered == r.requests and not r.leaks and not r.errors and r.rss_after <= r.rss_budget
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
