"""The physical plan: stages of per-site programs plus explicit coordinator steps.

``fedla.lowering.lower`` turns plan nodes into a ``PhysicalPlan``; an ``Executor`` runs each
stage's site programs (one round trip per site per stage) and ``fedla.evaluation`` runs the
coordinator steps between them. Data moves only where a step says so: ``Broadcast`` (a coordinator
value, or a part of it, sent to a site), ``SiteProgram.returns`` (partials or blocks sent up),
``Gather`` (blocks concatenated at the coordinator), ``Repartition`` (rows or columns relayed from
the site that has them to the site that needs them). ``describe`` prints a plan like Spark's
``explain()``: who runs what, and what crosses the network with estimated bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedla.plan import Layout, Range, SiteId

ValueId = str
"""The name of a value at the coordinator (a constant, a returned partial, a combined result)."""


@dataclass(frozen=True)
class CoordSlice:
    """A coordinator value, or the contiguous part ``[rows, cols]`` of it."""

    value: ValueId
    rows: Range | None = None
    cols: Range | None = None
    key: str = ""


@dataclass(frozen=True)
class KernelStep:
    """Run a registered kernel at a site on variables there."""

    kernel: str
    args: tuple[str, ...]  # variables at the site
    attrs: dict[str, Any]
    output: str


@dataclass(frozen=True)
class Return:
    """Send variable ``var`` up to the coordinator, where it becomes value ``partial``."""

    var: str
    partial: ValueId
    nbytes: int


@dataclass
class SiteProgram:
    """What one site does in one stage: kernel steps in order, then the values it returns."""

    steps: list[KernelStep] = field(default_factory=list)
    returns: list[Return] = field(default_factory=list)


@dataclass(frozen=True)
class Broadcast:
    """Send a coordinator value (or a part of it) to ``site`` as variable ``var``.

    Small values travel inline with the kernel steps that use them, larger ones as a PUT.
    """

    source: CoordSlice
    site: SiteId
    var: str
    nbytes: int


class _FoldedPartial:
    """The type of ``FOLDED``."""

    def __repr__(self) -> str:
        return "FOLDED"


FOLDED = _FoldedPartial()
"""What an executor returns for a partial it already folded into the first partial of the same
``Combine`` (a Spark executor tree-reduces many partials inside the cluster); the combine skips
it."""


@dataclass(frozen=True)
class Combine:
    """Fold returned partials into one value.

    ``how`` is ``"add"`` (a sum of products) or the name of a reduction.
    """

    output: ValueId
    partials: tuple[ValueId, ...]
    how: str
    attrs: dict[str, Any]
    nbytes: int
    node_key: str | None = None


@dataclass(frozen=True)
class Gather:
    """Concatenate returned blocks (rows for ``axis=0``, columns for ``axis=1``) in order."""

    output: ValueId
    partials: tuple[ValueId, ...]
    axis: int
    nbytes: int
    node_key: str | None = None


@dataclass(frozen=True)
class Move:
    """Rows ``rows`` and columns ``cols`` (global) of a federated value, relayed between sites."""

    source: SiteId
    target: SiteId
    rows: Range
    cols: Range
    piece: ValueId
    nbytes: int


@dataclass(frozen=True)
class Repartition:
    """Realign a federated value: the moves whose pieces go up in this stage and down in the next.

    Only rows (or columns) not already at the site that needs them move; the rest are cut where
    they are.
    """

    what: str
    moves: tuple[Move, ...]


@dataclass(frozen=True)
class Compute:
    """Run a kernel at the coordinator on coordinator values (local work, small results)."""

    output: ValueId
    kernel: str
    inputs: tuple[ValueId, ...]
    attrs: dict[str, Any]
    shape: tuple[int, ...]
    node_key: str | None = None


CoordinatorStep = Combine | Gather | Repartition | Compute


@dataclass
class Stage:
    """One round trip: broadcasts, every site's program concurrently, then coordinator steps.

    ``drops`` names, per site, the plan's variables that no later stage reads. An executor may
    let them go at the end of this stage instead of when the plan is released: a Spark site
    would otherwise cache them (``fedla.executors.spark_executor``).
    """

    broadcasts: list[Broadcast] = field(default_factory=list)
    sites: dict[SiteId, SiteProgram] = field(default_factory=dict)
    coordinator: list[CoordinatorStep] = field(default_factory=list)
    drops: dict[SiteId, list[str]] = field(default_factory=dict)

    def program(self, site: SiteId) -> SiteProgram:
        """The program of ``site`` in this stage (created empty on first use)."""
        return self.sites.setdefault(site, SiteProgram())

    @property
    def bytes_down(self) -> int:
        """Estimated bytes sent to sites."""
        return sum(b.nbytes for b in self.broadcasts)

    @property
    def bytes_up(self) -> int:
        """Estimated bytes returned by sites."""
        return sum(r.nbytes for program in self.sites.values() for r in program.returns)


@dataclass
class PhysicalPlan:
    """Stages in order; ``prologue`` runs at the coordinator before the first stage.

    ``constants`` are the coordinator's own inputs (local matrices, scalars); ``outputs`` the
    value of each root; ``created`` the variables the plan creates per site, dropped afterwards;
    ``kept`` the realignments of federated inputs it leaves at the sites for later plans.
    """

    constants: dict[ValueId, Any]
    prologue: list[CoordinatorStep]
    stages: list[Stage]
    outputs: list[ValueId]
    created: dict[SiteId, list[str]]
    labels: dict[str, str] = field(default_factory=dict)
    kept: list[tuple[Any, Layout]] = field(default_factory=list)

    @property
    def round_trips(self) -> int:
        """Stages that send anything to a site."""
        return sum(1 for stage in self.stages if stage.sites or stage.broadcasts)

    def describe(self, stage_note: Callable[[Stage], str] | None = None) -> str:
        """A readable account of the plan, like Spark's ``explain()``.

        ``stage_note`` adds the executor's account of how it runs a stage (its Spark job).
        """
        lines = [f"PhysicalPlan: {self.round_trips} round trip(s), "
                 f"{len({s for st in self.stages for s in st.sites})} site(s)"]
        if self.prologue:
            lines.append("  coordinator (before any site work):")
            lines.extend(f"    {self._step(step)}" for step in self.prologue)
        number = 0
        for stage in self.stages:
            if not (stage.sites or stage.broadcasts or stage.coordinator):
                continue
            number += 1
            lines.append(
                f"  Stage {number}: {len(stage.sites)} site(s); "
                f"sends ~{_bytes(stage.bytes_down)}, returns ~{_bytes(stage.bytes_up)}"
            )
            note = stage_note(stage) if stage_note is not None and stage.sites else ""
            if note:
                lines.append(f"    {note}")
            for site in dict.fromkeys([*(b.site for b in stage.broadcasts), *stage.sites]):
                lines.append(f"    site {site}:")
                for broadcast in stage.broadcasts:
                    if broadcast.site == site:
                        lines.append(f"      Broadcast {self._slice(broadcast.source)} -> "
                                     f"{self._var(broadcast.var)} (~{_bytes(broadcast.nbytes)})")
                program = stage.sites.get(site, SiteProgram())
                for step in program.steps:
                    args = ", ".join(self._var(a) for a in step.args)
                    attrs = "".join(f", {k}={_short(v)}" for k, v in sorted(step.attrs.items()))
                    lines.append(f"      {step.kernel}({args}{attrs}) -> {self._var(step.output)}")
                for ret in program.returns:
                    lines.append(f"      return {self._var(ret.var)} as {ret.partial} "
                                 f"(~{_bytes(ret.nbytes)})")
            if stage.coordinator:
                lines.append("    coordinator:")
                lines.extend(f"      {self._step(step)}" for step in stage.coordinator)
        lines.append(f"  result: {', '.join(self.outputs)}")
        return "\n".join(lines)

    def _var(self, var: str) -> str:
        return self.labels.get(var, "%" + var.rsplit(".", 1)[-1])

    def _slice(self, source: CoordSlice) -> str:
        parts = [f"{lo}:{hi}" if rng else ":" for rng in (source.rows, source.cols)
                 for lo, hi in [rng or (0, 0)]]
        return source.value + ("" if source.rows is None and source.cols is None
                               else f"[{', '.join(parts)}]")

    def _step(self, step: CoordinatorStep) -> str:
        if isinstance(step, Combine):
            return (f"Combine {step.how} of {', '.join(step.partials)} -> {step.output} "
                    f"(~{_bytes(step.nbytes)})")
        if isinstance(step, Gather):
            what = "rows" if step.axis == 0 else "columns"
            return (f"Gather {what} of {', '.join(step.partials)} -> {step.output} "
                    f"(~{_bytes(step.nbytes)} to the coordinator)")
        if isinstance(step, Repartition):
            moves = "; ".join(
                f"rows {m.rows[0]}:{m.rows[1]}, cols {m.cols[0]}:{m.cols[1]} "
                f"{m.source} -> {m.target} (~{_bytes(m.nbytes)})" for m in step.moves
            )
            return f"Repartition {step.what}: {moves} (relayed through the coordinator)"
        attrs = "".join(f", {k}={_short(v)}" for k, v in sorted(step.attrs.items()))
        return f"Compute {step.kernel}({', '.join(step.inputs)}{attrs}) -> {step.output}"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
