"""Per-epoch checkpoints: the model list and the run's state in one ``.npz`` file.

``<dir>/paramserv-epoch-0003.npz`` holds the model after 3 epochs (arrays ``model_0 ..``) and a
JSON ``state`` (history, seed, settings). Files are written to a temporary name and renamed, so a
crash never leaves a truncated checkpoint; loading never unpickles.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

PATTERN = re.compile(r"^paramserv-epoch-(\d+)\.npz$")


def checkpoint_path(directory: str | os.PathLike[str], epochs_done: int) -> Path:
    """Path of the checkpoint after ``epochs_done`` epochs."""
    return Path(directory) / f"paramserv-epoch-{epochs_done:04d}.npz"


def save_checkpoint(
    directory: str | os.PathLike[str], epochs_done: int, model: list[Any], state: dict[str, Any]
) -> Path:
    """Write the checkpoint after ``epochs_done`` epochs; return its path."""
    path = checkpoint_path(directory, epochs_done)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {f"model_{i}": np.asarray(a) for i, a in enumerate(model)}
    arrays["state"] = np.array(json.dumps({**state, "epochs_done": epochs_done}))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return path


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The checkpoint with the most epochs in ``directory``, or None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.match(p.name))]
    return max(found)[1] if found else None


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[int, list[Any], dict[str, Any]]:
    """``(epochs_done, model, state)`` from a checkpoint file."""
    with np.load(path, allow_pickle=False) as data:
        state = json.loads(str(data["state"]))
        n = sum(1 for name in data.files if name.startswith("model_"))
        model = [data[f"model_{i}"] for i in range(n)]
    return int(state["epochs_done"]), model, state
