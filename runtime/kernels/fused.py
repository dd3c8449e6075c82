"""A chain of elementwise kernels run as one request: ``fused``.

The coordinator's rewrites turn ``(X - m) / s`` into one ``fused`` request per block whose
``program`` lists the steps; intermediate results stay inside this call instead of becoming
worker variables.
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.kernels.backend import Backend
from fedla.runtime.kernels.registry import get_kernel, kernel

FUSABLE_KERNELS = ("binary", "unary", "where")


@kernel("fused")
def fused(backend: Backend, *operands: Any, program: list[dict[str, Any]]) -> Any:
    """Run ``program`` over ``operands``; returns the last step's result.

    Parameters
    ----------
    backend : Backend
        Array libraries of the operands; every step runs in it.
    operands : blocks or scalars
        The chain's inputs, referred to as ``["in", i]``.
    program : list of dict
        Steps ``{"kernel": name, "attrs": {...}, "args": [["in", i] | ["step", j], ...]}`` with
        ``name`` in ``FUSABLE_KERNELS`` and ``j`` an earlier step.
    """
    if not program:
        raise InvalidArgumentError("fused: the program has no steps")
    results: list[Any] = []
    for number, step in enumerate(program):
        if not isinstance(step, dict) or step.get("kernel") not in FUSABLE_KERNELS:
            raise InvalidArgumentError(
                f"fused: step {number} must run one of {', '.join(FUSABLE_KERNELS)}; "
                f"got {step!r:.80}"
            )
        args = [_argument(ref, operands, results, number) for ref in step.get("args", [])]
        results.append(get_kernel(step["kernel"])(backend, *args, **dict(step.get("attrs", {}))))
    return results[-1]


def _argument(ref: Any, operands: tuple[Any, ...], results: list[Any], number: int) -> Any:
    if isinstance(ref, (list, tuple)) and len(ref) == 2 and isinstance(ref[1], int):
        kind, index = ref
        if kind == "in" and 0 <= index < len(operands):
            return operands[index]
        if kind == "step" and 0 <= index < len(results):
            return results[index]
    raise InvalidArgumentError(
        f"fused: step {number} refers to {ref!r}; expected ['in', i] with i < {len(operands)} "
        f"or ['step', j] with j < {number}"
    )
