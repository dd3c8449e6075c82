"""The kernel registry: name -> pure function ``fn(backend, *blocks, **attrs)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fedla.runtime.errors import UnknownKernelError
from fedla.runtime.kernels.backend import backend_of

KernelFn = Callable[..., Any]

_KERNELS: dict[str, KernelFn] = {}


def kernel(name: str) -> Callable[[KernelFn], KernelFn]:
    """Register ``fn(backend, *blocks, **attrs)`` under ``name``."""

    def register(fn: KernelFn) -> KernelFn:
        if name in _KERNELS:
            raise ValueError(f"kernel {name!r} is registered twice")
        _KERNELS[name] = fn
        return fn

    return register


def get_kernel(name: str) -> KernelFn:
    """Return the kernel called ``name`` or raise ``UnknownKernelError``."""
    try:
        return _KERNELS[name]
    except KeyError:
        raise UnknownKernelError(
            f"unknown operation {name!r}; known operations: {', '.join(sorted(_KERNELS))}"
        ) from None


def kernel_names() -> list[str]:
    """Names of all registered kernels, sorted."""
    return sorted(_KERNELS)


def run_kernel(name: str, inputs: list[Any], attrs: dict[str, Any]) -> Any:
    """Run kernel ``name`` on ``inputs`` with keyword ``attrs`` in the inputs' backend.

    The backend comes from ``inputs`` alone (see ``backend_of``); array-valued attributes such
    as ``mmchain``'s ``w`` must belong to the same array library.
    """
    fn = get_kernel(name)
    return fn(backend_of(*inputs), *inputs, **attrs)
