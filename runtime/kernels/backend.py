"""Array backends: which array library a kernel's inputs live in, and how to reach the host.

A kernel never names numpy or scipy itself; it gets a :class:`Backend` built from its inputs by
:func:`backend_of` and computes with ``backend.xp`` (the array-API namespace of the dense
blocks, from array-api-compat) and ``backend.sparse`` (the sparse-matrix module). Today that is
numpy + scipy.sparse, or array-api-strict (with scipy.sparse) in the kernel tests; a CuPy backend
for ``--gpu`` workers is one more factory and one more branch in :func:`backend_of`. Nothing here
imports cupy: it is recognised by the module name of its array types, so a CPU-only install never
imports it.

``backend.array_module`` is the narrow fallback for what the array API does not cover: the
stored-entry code of the sparse kernels works on a CSR's ``data``/``indices``/``indptr`` with
numpy-only functions (``repeat`` by counts, ``ufunc.reduceat``, ``errstate``), and those arrays
belong to the library behind ``backend.sparse`` (numpy for scipy.sparse, cupy for
cupyx.scipy.sparse).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np
import scipy.sparse as sp

from fedla.runtime.errors import InvalidArgumentError


def _identity(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class Backend:
    """The array libraries of one kernel call.

    Attributes
    ----------
    name : str
        ``"numpy"`` or the dense namespace's module name (``"array_api_strict"``).
    xp : module
        Array-API namespace of the dense blocks (``array_api_compat.numpy`` for numpy arrays,
        whose functions take and return plain ndarrays).
    sparse : module
        Sparse-matrix module: ``scipy.sparse`` (``issparse``, ``csr_array``, ``hstack``...).
    array_module : module
        The library behind ``sparse``'s index and value arrays (numpy); only for the sparse
        kernels' stored-entry code, which needs functions the array API lacks.
    to_host : callable
        ``to_host(x)``: a dense block as a numpy ndarray, a sparse one as scipy.sparse; scalars
        and host values pass through.
    from_host : callable
        ``from_host(x)``: a numpy ndarray as an array of this backend (scipy.sparse stays as is
        on host backends).
    """

    name: str
    xp: ModuleType
    sparse: ModuleType
    array_module: ModuleType
    to_host: Callable[[Any], Any]
    from_host: Callable[[Any], Any]

    def issparse(self, x: Any) -> bool:
        """Whether ``x`` is a block of this backend's sparse module."""
        return bool(self.sparse.issparse(x))


@functools.cache
def numpy_backend() -> Backend:
    """Return the backend of numpy ndarrays and scipy.sparse blocks (``to_host`` is a no-op)."""
    return Backend(
        name="numpy",
        xp=array_api_compat.array_namespace(np.empty(0)),
        sparse=sp,
        array_module=np,
        to_host=_identity,
        from_host=_identity,
    )


def _namespace_to_host(x: Any) -> Any:
    """A host copy of an array of a CPU array-API library (through DLPack or the buffer)."""
    if sp.issparse(x) or isinstance(x, (bool, int, float, complex, np.ndarray, np.generic)):
        return x
    return np.asarray(x)


def _namespace_from_host(xp: ModuleType, x: Any) -> Any:
    return x if sp.issparse(x) else xp.asarray(x)


@functools.cache
def _namespace_backend(xp: ModuleType) -> Backend:
    """Dense arrays of another CPU array-API library (array-api-strict), scipy.sparse for sparse."""
    return Backend(
        name=xp.__name__,
        xp=xp,
        sparse=sp,
        array_module=np,
        to_host=_namespace_to_host,
        from_host=functools.partial(_namespace_from_host, xp),
    )


def _family(block: Any) -> str | None:
    """``"numpy"`` (ndarray, scipy.sparse), ``"cupy"``, ``"other"`` (an array-API array) or None.

    None is for what does not choose a backend: Python and numpy scalars, and values that are
    no arrays at all, which the kernel's own checks reject with a message naming it.
    """
    if isinstance(block, np.ndarray) or sp.issparse(block):
        return "numpy"
    if isinstance(block, (bool, int, float, complex, np.generic)):
        return None
    if type(block).__module__.startswith("cupy"):  # cupy and cupyx.scipy.sparse
        return "cupy"
    return "other" if array_api_compat.is_array_api_obj(block) else None


def backend_of(*blocks: Any) -> Backend:
    """The backend of a kernel's inputs.

    Parameters
    ----------
    *blocks : ndarray, scipy.sparse, numpy or Python scalar, or array-API array
        The kernel's operands. Scalars and non-arrays do not choose a backend; with nothing
        else the backend is numpy.

    Returns
    -------
    Backend
        numpy/scipy for numpy and scipy.sparse inputs; the inputs' own namespace for another
        CPU array-API library (array-api-strict).

    Raises
    ------
    InvalidArgumentError
        If the inputs come from different array libraries, or from one without a backend yet
        (cupy: GPU kernels are not available in this build).
    """
    families = {_family(block): block for block in blocks}
    families.pop(None, None)
    if not families or set(families) == {"numpy"}:
        return numpy_backend()
    if "cupy" in families:
        raise InvalidArgumentError(
            f"got a {type(families['cupy']).__module__} array, but this build has no CuPy "
            "backend; run GPU blocks on a worker with a CuPy backend or move them to the host"
        )
    others = [block for block in blocks if _family(block) == "other"]
    try:
        xp = array_api_compat.array_namespace(*others)
    except TypeError as exc:  # arrays of two array-API libraries
        raise InvalidArgumentError(f"cannot mix arrays of different libraries: {exc}") from None
    if "numpy" in families:
        raise InvalidArgumentError(
            f"cannot mix {xp.__name__} arrays with a "
            f"{type(families['numpy']).__name__}; convert all blocks to one array library first"
        )
    return _namespace_backend(xp)


def array_namespace(*blocks: Any) -> ModuleType:
    """The array module of the inputs: cupy if any block lives on a GPU, else numpy.

    This is the plain library module (not an array-API wrapper), for code written against
    numpy's API such as the ``fedla.algorithms.nn`` layers. cupy is looked up only through the
    blocks' own types, so CPU-only installs never import it.
    """
    for block in blocks:
        module = type(block).__module__
        if module.startswith("cupy"):
            import cupy  # a GPU worker already imported it to build the block

            return cupy
    return np
