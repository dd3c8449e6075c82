"""Per-partition kernels behind one registry.

Every kernel is a pure function ``fn(backend, *blocks, **attrs)`` over a
:class:`~fedla.runtime.kernels.backend.Backend` (numpy + scipy.sparse today; any array-API
namespace for dense blocks; CuPy on GPU workers later) registered once by name; ``run_kernel``
builds the backend from the inputs. Importing this package registers all kernel families.
"""

from fedla.runtime.kernels import elementwise, fused, indexing, matmul, reductions  # noqa: F401
from fedla.runtime.kernels.backend import Backend, array_namespace, backend_of
from fedla.runtime.kernels.registry import get_kernel, kernel, kernel_names, run_kernel

__all__ = [
    "Backend",
    "array_namespace",
    "backend_of",
    "get_kernel",
    "kernel",
    "kernel_names",
    "run_kernel",
]
