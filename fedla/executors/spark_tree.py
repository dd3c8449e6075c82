"""Tree aggregation of a stage's partials inside Spark, so the driver receives them folded.

When a stage's sites return many partials that feed only a ``Combine`` with an associative
``how`` (``"add"``, or a reduction of ``fedla.runtime.kernels.reductions``), the Spark executor
collects the stage's results with ``RDD.treeAggregate`` instead of ``collect``: each partition's
results enter as ``(site index, results)``, the partials of every such combine are folded with
the reduction's own ``combine`` (or ``+``) on the way up the tree, and the other results travel
unchanged. The plan stays the same: the coordinator's ``Combine`` then sees one folded partial
and ``FOLDED`` for the rest.

The fold functions run in Spark tasks, so they use only the runtime's reductions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedla.physical_plan import Combine, Stage, ValueId
from fedla.plan import SiteId
from fedla.runtime.errors import RequestSkippedError
from fedla.runtime.kernels.reductions import REDUCTIONS, get_reduction


@dataclass(frozen=True)
class TreeFold:
    """The partials of one ``Combine`` that fold inside Spark.

    Attributes
    ----------
    how : str
        The combine's ``how``.
    partials : tuple of str
        The combine's partials, in its order.
    sources : dict of int to tuple of int
        Per site index, the positions of the partials' GET results in the site's results,
        counted from the end (negative).
    """

    how: str
    partials: tuple[ValueId, ...]
    sources: dict[int, tuple[int, ...]]


@dataclass
class Collected:
    """What ``treeAggregate`` carries up: each site's results and the folded partials."""

    sites: dict[int, list[Any]]
    folded: list[Any]


def tree_folds(stage: Stage, site_index: dict[SiteId, int], min_partials: int
               ) -> list[TreeFold]:
    """The combines of ``stage`` whose partials fold inside Spark.

    A combine qualifies when its ``how`` is associative, every partial is returned by this
    stage, no other coordinator step reads them, and there are more than ``min_partials``.
    """
    returned: dict[ValueId, tuple[SiteId, int]] = {}
    for site, program in stage.sites.items():
        end = -1 if stage.drops.get(site) else 0
        count = len(program.returns)
        for j, ret in enumerate(program.returns):
            returned[ret.partial] = (site, end - count + j)
    read_elsewhere = {partial for step in stage.coordinator if not isinstance(step, Combine)
                      for partial in getattr(step, "partials", getattr(step, "inputs", ()))}
    folds = []
    for step in stage.coordinator:
        if not isinstance(step, Combine) or len(step.partials) <= min_partials:
            continue
        if step.how != "add" and step.how not in REDUCTIONS:
            continue
        if any(p not in returned or p in read_elsewhere for p in step.partials):
            continue
        sources: dict[int, list[int]] = {}
        for partial in step.partials:
            site, position = returned[partial]
            sources.setdefault(site_index[site], []).append(position)
        folds.append(TreeFold(step.how, step.partials,
                              {index: tuple(p) for index, p in sources.items()}))
    return folds


def spread(folds: list[TreeFold], collected: Collected) -> dict[int, list[Any]]:
    """Each site's results with the folded partials put back.

    A combine's folded partial takes the place of its first partial; the others become
    ``FOLDED`` (the placeholder ``None`` the tasks left there is replaced).
    """
    from fedla.physical_plan import FOLDED

    results = collected.sites
    for fold, value in zip(folds, collected.folded):
        first = min(fold.sources)
        for index, positions in fold.sources.items():
            for position in positions:
                results[index][position] = FOLDED
        results[first][fold.sources[first][0]] = value
    return results


# ----- run inside Spark tasks


def site_entry(folds: list[TreeFold], item: tuple[int, list[Any]]) -> Collected:
    """One site's ``(index, results)`` as a ``Collected``: its partials folded and cut out."""
    index, results = item
    results = list(results)
    folded: list[Any] = [None] * len(folds)
    for number, fold in enumerate(folds):
        for position in fold.sources.get(index, ()):
            folded[number] = _merged(fold.how, folded[number], results[position])
            results[position] = None
    return Collected({index: results}, folded)


def add_site(folds: list[TreeFold], acc: Collected, item: tuple[int, list[Any]]) -> Collected:
    """``treeAggregate``'s ``seqOp``: fold one site's results into ``acc``."""
    return merged(folds, acc, site_entry(folds, item))


def merged(folds: list[TreeFold], a: Collected, b: Collected) -> Collected:
    """``treeAggregate``'s ``combOp``: the union of the sites' results, partials folded."""
    return Collected({**a.sites, **b.sites},
                     [_merged(fold.how, x, y) for fold, x, y in zip(folds, a.folded, b.folded)])


def _merged(how: str, a: Any, b: Any) -> Any:
    """Two partials of one combine folded; an error (the first real one) wins over values."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, Exception) or isinstance(b, Exception):
        errors = [e for e in (a, b) if isinstance(e, Exception)]
        real = [e for e in errors if not isinstance(e, RequestSkippedError)]
        return (real or errors)[0]
    if how == "add":
        return a + b
    return get_reduction(how).combine(a, b)
