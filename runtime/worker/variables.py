"""What a tenant's variable names: a value, or the lineage that reproduces it.

- ``PinnedVariable``: PUT data and EXEC_UDF results; held as is, never evicted.
- ``ReadVariable``: a file loaded through the ``ReadCache``; holding it keeps the file loaded.
- ``DerivedVariable``: an EXEC_INST result; its value lives in the ``LineageCache`` and is
  recomputed from its operation and inputs whenever it was evicted.

Every variable has a lineage key (``fedla.runtime.lineage``). It is computed here at the worker,
from what the worker itself knows (file fingerprints, kernel names, decoded attributes, inputs),
never taken from a client, so one tenant cannot plant a value under another's key. A result is
``shared`` (reusable across tenants) only when it derives purely from READs and constants without
arrays; any array anywhere (PUT data, array literals of any ndim including 0-d, arrays inside
attributes) makes it, and everything derived from it, per tenant.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.kernels import run_kernel
from fedla.runtime.lineage import is_plain, lineage_key
from fedla.runtime.lineage_cache import MISSING, LineageCache
from fedla.runtime.privacy import PUBLIC, Privacy
from fedla.runtime.worker.read_cache import LoadedFile


class Variable:
    """Base of the three kinds of variables."""

    lineage: str
    shared: bool
    privacy: Privacy  # which restricted datasets the value derives from (fedla.runtime.privacy)

    def value(self) -> Any:
        """The variable's value (recomputed if it had been evicted)."""
        raise NotImplementedError


@dataclass(eq=False)
class PinnedVariable(Variable):
    """A value that cannot be recomputed: PUT data, a UDF's result."""

    held: Any
    lineage: str = field(default_factory=lambda: lineage_key("pinned", uuid.uuid4().hex))
    shared: bool = False
    privacy: Privacy = PUBLIC  # PUT data is the tenant's own
    watched: bool = field(default=False, repr=False)  # cache entries derived from it are tagged

    def value(self) -> Any:
        """The held value."""
        return self.held


@dataclass(eq=False)
class ReadVariable(Variable):
    """A file read through the READ cache."""

    loaded: LoadedFile
    shared: bool = True
    privacy: Privacy = PUBLIC  # from the file's policy

    @property
    def lineage(self) -> str:  # type: ignore[override]
        """Key of the file's content: its fingerprint."""
        return lineage_key("read", self.loaded.fingerprint)

    def value(self) -> Any:
        """The loaded matrix."""
        return self.loaded.value


@dataclass(frozen=True)
class LiteralInput:
    """A constant operand of an EXEC, keyed by its value."""

    value: Any


@dataclass(eq=False)
class DerivedVariable(Variable):
    """The result of a kernel, cached by lineage and recomputed from it when evicted."""

    op: str
    attrs: dict[str, Any]
    inputs: list[Variable | LiteralInput]
    cache: LineageCache
    tenant: str
    lineage: str = field(init=False)
    shared: bool = field(init=False)
    cache_key: str = field(init=False)
    held: Any = field(init=False, default=MISSING, repr=False)
    roots: frozenset[str] = field(init=False, default=frozenset(), repr=False)
    privacy: Privacy = PUBLIC  # derived from the inputs' by the kernel's privacy rule

    def __post_init__(self) -> None:
        self.roots = frozenset().union(*(_roots(item, self.cache) for item in self.inputs))
        keys = [
            ("var", item.lineage) if isinstance(item, Variable) else ("literal", item.value)
            for item in self.inputs
        ]
        try:
            self.lineage = lineage_key("exec", self.op, self.attrs, keys)
        except TypeError as exc:  # only in-process callers can pass such values
            raise InvalidArgumentError(
                f"operation {self.op!r}: {exc}; pass attributes and literals of those types"
            ) from None
        self.shared = is_plain(self.attrs) and all(
            item.shared if isinstance(item, Variable) else is_plain(item.value)
            for item in self.inputs
        )
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
        tags = () if self.shared else (self.tenant, *self.roots)
        self.cache.put(self.cache_key, result, tags)
        return result, False


def _roots(item: Variable | LiteralInput, cache: LineageCache) -> frozenset[str]:
    """The PUT/UDF values a result of ``item`` derives from (their lineages).

    Their lineages are unique, so once such a value is gone (CLEARed and no variable derived
    from it left) no later request can reuse what was computed from it: the first time a
    value becomes a root, its end is set to drop those cache entries.
    """
    if isinstance(item, PinnedVariable):
        if not item.watched:
            item.watched = True
            weakref.finalize(item, cache.drop_tag, item.lineage)
        return frozenset((item.lineage,))
    if isinstance(item, DerivedVariable):
        return item.roots
    return frozenset()
