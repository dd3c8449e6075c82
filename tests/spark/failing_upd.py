"""An ``upd`` for REMOTE_SPARK tests that kills its Spark task once, mid-training.

``gradients`` is ffn's, except that the Python process of partition 0 exits hard (as an
out-of-memory kill would) at its ``hyperparams["fail_at"]``-th call, once per marker file
``hyperparams["fail_marker"]``. Spark then retries the barrier stage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedla.algorithms.nn import ffn

REF = "tests.spark.failing_upd"
_CALLS = [0]


def gradients(model: list[Any], hyperparams: Mapping[str, Any], X: Any, y: Any) -> list[Any]:
    """ffn's gradients; exits the process once (see the module docstring)."""
    from pyspark import TaskContext

    context = TaskContext.get()  # None on the driver (paramserv's preflight call)
    marker = Path(hyperparams["fail_marker"])
    if context is not None and context.partitionId() == 0:
        _CALLS[0] += 1
        if _CALLS[0] >= hyperparams["fail_at"] and not marker.exists():
            marker.touch()
            os._exit(1)
    return ffn.gradients(model, hyperparams, X, y)
