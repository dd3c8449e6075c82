"""The kernel registry: name -> pure function over an array namespace."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from fedla.runtime.errors import UnknownKernelError

KernelFn = Callable[..., Any]

_KERNELS: dict[str, KernelFn] = {}


def kernel(name: str) -> Callable[[KernelFn], KernelFn]:
    """Register ``fn(xp, *blocks, **attrs)`` under ``name``."""

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


def array_namespace(*blocks: Any) -> ModuleType:
    """The array module of the inputs: cupy if any block lives on a GPU, else numpy.

    cupy is looked up only through the blocks' own types, so CPU-only installs never import it.
    """
    for block in blocks:
        module = type(block).__module__
        if module.startswith("cupy"):
            import cupy  # a GPU worker already imported it to build the block

            return cupy
    return np


def run_kernel(name: str, inputs: list[Any], attrs: dict[str, Any]) -> Any:
    """Run kernel ``name`` on ``inputs`` with keyword ``attrs`` in the inputs' namespace."""
    fn = get_kernel(name)
    return fn(array_namespace(*inputs), *inputs, **attrs)
