"""What a tenant's variable names: a value, or the lineage that reproduces it.

- ``PinnedVariable``: PUT data and EXEC_UDF results; held as is, never evicted.
- ``ReadVariable``: a file loaded through the ``ReadCache``; holding it keeps the file loaded.
- ``DerivedVariable``: an EXEC_INST result; its value lives in the ``LineageCache`` and is
  recomputed from its operation and inputs whenever it was evicted.

Every variable has a lineage key. It is computed here at the worker, from what the worker itself
knows (file fingerprints, kernel names, attributes, inputs), never taken from a client, so one
tenant cannot plant a value under another's key. Keys of values derived only from files and
scalar constants are ``shared`` and may be reused across tenants; anything touched by a tenant's
PUT data or array literals is keyed per tenant.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedla.runtime.kernels import run_kernel
from fedla.runtime.lineage_cache import MISSING, LineageCache
from fedla.runtime.worker.read_cache import LoadedFile


def lineage_key(*parts: str) -> str:
    """A 128-bit hex key of ``parts``."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def array_digest(value: Any) -> str:
    """A key of an array's or CSR matrix's content: dtype, shape and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    parts = [value.data, value.indices, value.indptr] if sp.issparse(value) else [value]
    digest.update(repr((type(value).__name__, value.shape)).encode())
    for part in parts:
        array = np.ascontiguousarray(part)
        digest.update(array.dtype.str.encode())
        digest.update(memoryview(array.reshape(-1)).cast("B"))  # type: ignore[arg-type]
    return digest.hexdigest()


class Variable:
    """Base of the three kinds of variables."""

    lineage: str
    shared: bool

    def value(self) -> Any:
        """The variable's value (recomputed if it had been evicted)."""
        raise NotImplementedError


@dataclass(eq=False)
class PinnedVariable(Variable):
    """A value that cannot be recomputed: PUT data, a UDF's result."""

    held: Any
    lineage: str = field(default_factory=lambda: lineage_key("pinned", uuid.uuid4().hex))
    shared: bool = False

    def value(self) -> Any:
        """The held value."""
        return self.held


@dataclass(eq=False)
class ReadVariable(Variable):
    """A file read through the READ cache."""

    loaded: LoadedFile
    shared: bool = True

    @property
    def lineage(self) -> str:  # type: ignore[override]
        """Key of the file's content: its fingerprint."""
        return lineage_key("read", self.loaded.fingerprint)

    def value(self) -> Any:
        """The loaded matrix."""
        return self.loaded.value


@dataclass(frozen=True)
class LiteralInput:
    """A constant operand of an EXEC, with the digest of its wire form."""

    value: Any
    digest: str
    shared: bool  # scalars are constants anyone may use; arrays may be a tenant's data


@dataclass(eq=False)
class DerivedVariable(Variable):
    """The result of a kernel, cached by lineage and recomputed from it when evicted."""

    op: str
    attrs: dict[str, Any]
    attrs_digest: str
    inputs: list[Variable | LiteralInput]
    cache: LineageCache
    tenant: str
    lineage: str = field(init=False)
    shared: bool = field(init=False)
    cache_key: str = field(init=False)
    held: Any = field(init=False, default=MISSING, repr=False)

    def __post_init__(self) -> None:
        keys = [item.lineage if isinstance(item, Variable) else item.digest for item in self.inputs]
        self.lineage = lineage_key("exec", self.op, self.attrs_digest, *keys)
        self.shared = all(item.shared for item in self.inputs)
        self.cache_key = self.lineage if self.shared else lineage_key(self.tenant, self.lineage)

    def value(self) -> Any:
        """The held or cached value, or a fresh computation from the lineage."""
        if self.held is not MISSING:
            return self.held
        return self.compute()[0]

    def hold(self) -> tuple[Any, bool]:
        """Compute (or look up) the value and keep it until ``release``.

        Later requests of the same batch (typically its GET) then need neither the cache nor a
        recomputation, even when the value is too large to be cached. Returns the value and
        whether it was reused.
        """
        self.held, reused = self.compute()
        return self.held, reused

    def release(self) -> None:
        """Drop the value kept by ``hold``; the cache and the lineage still provide it."""
        self.held = MISSING

    def compute(self) -> tuple[Any, bool]:
        """The value and whether it came from the cache (else it was computed just now)."""
        cached = self.cache.get(self.cache_key)
        if cached is not MISSING:
            return cached, True
        inputs = [item.value() if isinstance(item, Variable) else item.value
                  for item in self.inputs]
        result = run_kernel(self.op, inputs, self.attrs)
        self.cache.put(self.cache_key, result)
        return result, False
