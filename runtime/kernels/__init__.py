"""Per-partition kernels behind one registry.

Every kernel is a pure function ``fn(xp, *blocks, **attrs)`` over an array namespace ``xp``
(numpy today, cupy on GPU workers) registered once by name. Importing this package registers all
kernel families.
"""

from fedla.runtime.kernels import elementwise, fused, indexing, matmul, reductions  # noqa: F401
from fedla.runtime.kernels.registry import (
    array_namespace,
    get_kernel,
    kernel,
    kernel_names,
    run_kernel,
)

__all__ = ["array_namespace", "get_kernel", "kernel", "kernel_names", "run_kernel"]
