"""Attacks on a real worker process that must be refused or harmless (issue 9).

Each attack runs against the session's worker on 127.0.0.1; the worker then answers a healthy
request.
"""

from __future__ import annotations

import os
import threading

from fedla.runtime.errors import AccessDeniedError, DataFileNotFoundError
from fedla.runtime.protocol.requests import Metadata, Read

# --- READ: no check-then-open race ------------------------------------------------------------

RACE_READS = 2_000


def test_read_never_follows_a_symlink_swapped_in_during_the_check(
    client, tenant, site_dir, site_subdir, tmp_path, assert_healthy
):
    """A thread swaps a file and a symlink out of the data dir while READs run."""
    secret = tmp_path / "secret.csv"
    secret.write_text("7,8\n9,9\n")  # nnz 4: a READ of it would show
    target = site_subdir / "swap.csv"
    target.write_text("0,0\n0,0\n")  # nnz 0
    rel = target.relative_to(site_dir).as_posix()
    stop = threading.Event()

    def swap() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            link, file = site_subdir / f".link{n}", site_subdir / f".file{n}"
            link.symlink_to(secret)
            os.replace(link, target)
            file.write_text("0,0\n0,0\n")
            os.replace(file, target)

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    outcomes: dict[str, int] = {}
    try:
        for _ in range(RACE_READS):
            (result,) = client.execute_all(tenant, [Read("X", rel, "csv")])
            if isinstance(result, Metadata):
                assert result.shape == (2, 2)
                assert result.nnz == 0, "READ returned the content of a file outside the data dir"
            else:
                assert isinstance(result, (AccessDeniedError, DataFileNotFoundError)), result
                assert str(tmp_path) not in str(result)
            outcomes[type(result).__name__] = outcomes.get(type(result).__name__, 0) + 1
    finally:
        stop.set()
        swapper.join()
    assert outcomes.get("Metadata", 0) > 0, outcomes  # the race was really run
    assert sum(outcomes.values()) - outcomes.get("Metadata", 0) > 0, outcomes
    assert_healthy()
