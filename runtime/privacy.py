"""Privacy levels of datasets and how they propagate through kernels.

An operator marks a data file with a policy (``fedla.runtime.worker.dataset_policy``):

- ``public``: anything derived may leave the site (no policy file means this);
- ``private-aggregation``: only aggregates over at least ``min_rows`` rows may leave (sums,
  ``X^T X``, gradients), never raw rows nor anything computed row by row;
- ``private``: nothing derived may leave.

Every value at a site carries a ``Privacy`` descriptor. ``derive`` computes a kernel result's
descriptor from its inputs' by the kernel's name and attributes; ``refusal`` says why a value may
not leave the site, or ``None``. The worker applies them to its variables (GET, EXEC_UDF) and the
coordinator to a physical plan before it sends anything (``fedla.privacy_check``), so both ends
agree by construction.

A raw value tracks which of its axes runs along the dataset's rows (``row_axis``) and how many
distinct dataset rows it spans at most (``rows``). A kernel that sums along that axis (``tsmm``,
``matmul`` contracting over it, ``reduce`` over it with a summing reduction, ``mmchain``) turns
it into an aggregate over ``rows`` rows. Anything else keeps it raw; a kernel this module does not
know, ``min``/``max``/``argmin``/``argmax`` over rows (they return one row's value) and EXEC_UDF
results make it ``opaque``: never releasable, whatever follows.

Notes
-----
A row-count threshold stops the direct release of raw rows and of small groups. It does not stop
reconstruction from several releasable aggregates (differencing two sums over overlapping row
sets, weights that single out a row); a dataset that must resist those is ``private``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any


class PrivacyLevel(enum.Enum):
    """How much of a dataset may leave its site, from least to most restrictive."""

    PUBLIC = "public"
    PRIVATE_AGGREGATION = "private-aggregation"
    PRIVATE = "private"

    @property
    def rank(self) -> int:
        """Order of restrictiveness (``PUBLIC`` is 0)."""
        return _RANKS[self]


_RANKS = {PrivacyLevel.PUBLIC: 0, PrivacyLevel.PRIVATE_AGGREGATION: 1, PrivacyLevel.PRIVATE: 2}

SUMMING_REDUCTIONS = frozenset({"sum", "sumsq", "mean", "var", "nnz"})
"""Reductions whose result over rows is an aggregate; min/max/argmin/argmax pick one row."""


@dataclass(frozen=True)
class Privacy:
    """The privacy descriptor of one value at a site.

    Attributes
    ----------
    level : PrivacyLevel
        The most restrictive level of the datasets the value derives from.
    datasets : tuple of str
        Those datasets (paths relative to the data directory), sorted.
    min_rows : int
        The largest ``min_rows`` among them.
    rows : int or None
        For a raw value, the most distinct dataset rows it spans; ``None`` for an aggregate.
    row_axis : int
        For a raw value, the axis that runs along the dataset's rows.
    aggregated : int
        For an aggregate, the fewest rows behind any of its entries.
    opaque : str
        Why the value can never be released (empty when it can be, given enough rows).
    """

    level: PrivacyLevel = PrivacyLevel.PUBLIC
    datasets: tuple[str, ...] = ()
    min_rows: int = 0
    rows: int | None = None
    row_axis: int = 0
    aggregated: int = 0
    opaque: str = ""

    @property
    def public(self) -> bool:
        """Whether no restricted dataset contributes to the value."""
        return self.level is PrivacyLevel.PUBLIC

    @property
    def releasable(self) -> bool:
        """Whether the value may leave the site."""
        return refusal(self) is None


PUBLIC = Privacy()


def of_dataset(dataset: str, level: PrivacyLevel, min_rows: int, rows: int) -> Privacy:
    """The descriptor of a dataset's raw matrix of ``rows`` rows as read from its file."""
    if level is PrivacyLevel.PUBLIC:
        return PUBLIC
    return Privacy(level, (dataset,), min_rows, rows=rows, row_axis=0)


def refusal(privacy: Privacy) -> str | None:
    """Why a value with ``privacy`` may not leave its site, or ``None`` when it may.

    The message names the dataset and the rule, e.g. ``'X.csv' is private-aggregation: only
    aggregates over at least 10 rows may leave this site; this value holds raw rows``.
    """
    if privacy.public:
        return None
    names = ", ".join(repr(name) for name in privacy.datasets) or "a dataset"
    verb = "is" if len(privacy.datasets) <= 1 else "are"
    if privacy.level is PrivacyLevel.PRIVATE:
        return f"{names} {verb} private: nothing derived from it may leave this site"
    rule = (f"{names} {verb} private-aggregation: only aggregates over at least "
            f"{privacy.min_rows} rows may leave this site")
    if privacy.opaque:
        return f"{rule}; this value {privacy.opaque}"
    if privacy.rows is not None:
        return f"{rule}; this value holds raw rows"
    if privacy.aggregated < privacy.min_rows:
        return f"{rule}; this value aggregates only {privacy.aggregated} rows"
    return None


def derive(kernel: str, attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
    """The descriptor of ``kernel(*inputs, **attrs)`` (a registered kernel's name).

    Public inputs do not restrict the result; a result of public inputs only is public. An
    unknown kernel's result is opaque (never releasable) when any input is restricted.
    """
    restricted = [p for p in inputs if not p.public]
    if not restricted:
        return PUBLIC
    rule = KERNEL_RULES.get(kernel)
    if rule is None:
        return _opaque(restricted, f"was computed by kernel {kernel!r}, which has no privacy rule")
    arrays = ARRAY_INPUTS.get(kernel)
    if arrays is not None and len(inputs) != arrays:
        # Extra inputs bind to attribute parameters (``slice(X, [0, 2])`` cuts rows the rule
        # would not see in ``attrs``): the rule cannot follow, so nothing derived is releasable.
        return _opaque(restricted, f"was computed by kernel {kernel!r} from {len(inputs)} "
                                   f"inputs; its privacy rule reads {arrays}")
    return rule(attrs, inputs)


def opaque(inputs: Sequence[Privacy], why: str) -> Privacy:
    """A never-releasable descriptor over ``inputs`` (``PUBLIC`` if they are all public)."""
    restricted = [p for p in inputs if not p.public]
    return _opaque(restricted, why) if restricted else PUBLIC


def _merged(restricted: Sequence[Privacy]) -> Privacy:
    """Level, datasets and threshold of several restricted descriptors together."""
    level = max((p.level for p in restricted), key=lambda lv: lv.rank)
    datasets = tuple(sorted({name for p in restricted for name in p.datasets}))
    min_rows = max(p.min_rows for p in restricted)
    return Privacy(level, datasets, min_rows)


def _opaque(restricted: Sequence[Privacy], why: str) -> Privacy:
    inherited = next((p.opaque for p in restricted if p.opaque), "")
    return replace(_merged(restricted), opaque=inherited or why)


def _rowwise(restricted: Sequence[Privacy], stacked: int | None = None) -> Privacy:
    """A result computed entry by entry (or row by row) from ``restricted`` inputs.

    Raw inputs keep it raw, spanning the fewest rows of any of them: a one-row input broadcast
    over many rows still shows that one row. Pieces stacked along their row axis (``stacked``)
    span the most rows of any one piece (they may repeat a row). Aggregates only keep it an
    aggregate over the fewest rows of any of them.
    """
    if any(p.opaque for p in restricted):
        return _opaque(restricted, "")
    merged = _merged(restricted)
    raw = [p for p in restricted if p.rows is not None]
    if not raw:
        return replace(merged, aggregated=min(p.aggregated for p in restricted))
    axes = {p.row_axis for p in raw}
    if len(axes) > 1:
        return _opaque(restricted, "mixes rows and columns of the data")
    axis = axes.pop()
    counts = [p.rows for p in raw if p.rows is not None]
    spanned = max(counts) if stacked is not None and (stacked < 0 or stacked == axis) \
        else min(counts)
    return replace(merged, rows=spanned, row_axis=axis)


def _contract(operands: Sequence[tuple[Privacy, int]], kept_axes: Sequence[int]) -> Privacy:
    """A product summing operand ``i`` along its axis ``operands[i][1]``.

    A raw operand summed along its row axis contributes an aggregate over its rows; one summed
    along its other axis stays raw in the result, whose row axis is ``kept_axes[i]`` (``-1``:
    the operand's rows do not survive as one axis, the result is opaque).
    """
    restricted = [(p, axis, kept) for (p, axis), kept in zip(operands, kept_axes) if not p.public]
    values = [p for p, _, _ in restricted]
    if any(p.opaque for p in values):
        return _opaque(values, "")
    counts, raw = [], []
    for p, axis, kept in restricted:
        if p.rows is None:
            counts.append(p.aggregated)
        elif p.row_axis == axis:
            counts.append(p.rows)
        elif kept < 0:
            return _opaque(values, "holds products of raw rows, not sums over rows")
        else:
            raw.append(replace(p, row_axis=kept))
    if not raw:
        return replace(_merged(values), aggregated=min(counts))
    result = _rowwise(raw)
    if result.opaque:
        return _opaque(values, result.opaque)
    return replace(_merged(values), rows=result.rows, row_axis=result.row_axis)


def _elementwise(attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
    return _rowwise([p for p in inputs if not p.public])


def _stack(along: int) -> Any:
    """Concatenation along axis ``along`` (``-1``: pieces placed anywhere, ``assemble``)."""
    def rule(attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
        return _rowwise([p for p in inputs if not p.public], stacked=along)
    return rule


def _transpose(attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
    (x,) = inputs
    return x if x.rows is None or x.opaque else replace(x, row_axis=1 - x.row_axis)


def _slice(attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
    (x,) = inputs
    if x.rows is None or x.opaque:
        return x  # a part of an aggregate is an aggregate over as many rows
    bounds = attrs.get("rows" if x.row_axis == 0 else "cols")
    if bounds is None:
        return x
    try:
        start, stop = (int(b) for b in bounds)
    except (TypeError, ValueError):
        return _opaque([x], "was cut with a range this rule cannot read")
    return replace(x, rows=max(0, min(x.rows, stop - start)))


def _reduce(attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
    (x,) = inputs
    if x.rows is None or x.opaque:
        return x
    axis = attrs.get("axis")
    if axis is not None and axis != x.row_axis:
        return x  # one value per row: still raw
    reduction = attrs.get("reduction")
    if reduction not in SUMMING_REDUCTIONS:
        return _opaque([x], f"is the {reduction} of raw rows (one row's value)")
    return replace(x, rows=None, aggregated=x.rows)


def _matmul(attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
    a, b = inputs
    return _contract([(a, 1), (b, 0)], kept_axes=[0, 1])


def _tsmm(attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
    (x,) = inputs
    summed = 0 if attrs.get("left", True) else 1
    return _contract([(x, summed)], kept_axes=[-1])


def _mmchain(attrs: Mapping[str, Any], inputs: Sequence[Privacy]) -> Privacy:
    # x.T @ (w * (x @ v)): x and w are summed over x's rows, v over x's columns.
    x, v, *rest = inputs
    operands = [(x, 0), (v, 0), *[(w, 0) for w in rest]]
    return _contract(operands, kept_axes=[-1, 1, -1][: len(operands)])


KERNEL_RULES = {
    "binary": _elementwise,
    "unary": _elementwise,
    "where": _elementwise,
    "fused": _elementwise,
    "cbind": _stack(1),
    "rbind": _stack(0),
    "assemble": _stack(-1),
    "transpose": _transpose,
    "slice": _slice,
    "reduce": _reduce,
    "reduce_partial": _reduce,
    "matmul": _matmul,
    "tsmm": _tsmm,
    "mmchain": _mmchain,
}
"""The privacy rule of each kernel in ``fedla.runtime.kernels`` (a kernel not here is opaque)."""

ARRAY_INPUTS = {"transpose": 1, "slice": 1, "reduce": 1, "reduce_partial": 1, "tsmm": 1,
                "matmul": 2}
"""Inputs a fixed-arity rule reads; more (which the kernel takes as attributes) make it opaque."""
