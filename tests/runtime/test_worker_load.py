"""32 authenticated tenants x 200 requests at once on one worker (``load_harness``).

Zero cross-tenant leaks (each GET is exactly the tenant's own value, though every tenant claims
the same tenant id), zero lost responses, and after every tenant's CLEAR the worker's RSS is
within 10% of its baseline (after a warm-up round) plus the READ cache: results derived from a
PUT value are dropped from the lineage cache once the value is gone (they used to pile up, ~118
MiB per round). ``bench/load_worker.py`` prints the throughput.
"""

from __future__ import annotations

import pytest

from tests.runtime.load_harness import LoadReport, load_worker, run_load

TENANTS, REQUESTS = 32, 200


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> LoadReport:
    with load_worker(tmp_path_factory.mktemp("load"), TENANTS) as (address, pid, tokens):
        return run_load(address, pid, tokens, REQUESTS)


def test_concurrent_tenants_stay_isolated_and_lose_nothing(report):
    assert report.requests == TENANTS * REQUESTS
    assert report.answered == report.requests, "lost responses"
    assert report.leaks == []
    assert report.errors == []


def test_memory_returns_after_every_tenants_clear(report):
    assert report.rss_after <= report.rss_budget, (
        f"RSS {report.rss_after / 2**20:.1f} MiB after every CLEAR; budget "
        f"{report.rss_budget / 2**20:.1f} MiB (baseline {report.rss_baseline / 2**20:.1f} MiB "
        f"+ READ cache {report.read_cache_bytes / 2**20:.1f} MiB, +10%)"
    )
