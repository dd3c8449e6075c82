"""Checking a physical plan against the privacy levels of its federated inputs before it runs.

Workers enforce privacy levels themselves (a GET of a value that may not leave is refused), but
only when the plan gets there, after earlier stages did their work. ``check_plan`` replays the
plan's site programs with the same rules (``fedla.runtime.privacy.derive``) on the levels the
workers reported at READ, and refuses a plan that would return a value a site would refuse,
before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from fedla.physical_plan import PhysicalPlan
from fedla.plan import SiteId
from fedla.runtime.errors import AccessDeniedError
from fedla.runtime.privacy import PUBLIC, Privacy, derive, refusal


def check_plan(plan: PhysicalPlan, leaves: Mapping[tuple[SiteId, str], Privacy]) -> None:
    """Raise ``AccessDeniedError`` if ``plan`` returns a value that may not leave its site.

    Parameters
    ----------
    plan : PhysicalPlan
        The lowered plan.
    leaves : mapping of (site, variable) to Privacy
        The descriptors of the restricted federated inputs' variables at the sites (from the
        READ metadata); every other variable a plan starts from is public (PUT data, values
        broadcast by the coordinator).

    Raises
    ------
    AccessDeniedError
        Naming the dataset, the rule, and the value the plan would return.
    """
    if not leaves:
        return
    known: dict[tuple[SiteId, str], Privacy] = dict(leaves)
    for number, stage in enumerate(plan.stages, start=1):
        for broadcast in stage.broadcasts:
            known[(broadcast.site, broadcast.var)] = PUBLIC
        for site, program in stage.sites.items():
            for step in program.steps:
                inputs = [known.get((site, arg), PUBLIC) for arg in step.args]
                known[(site, step.output)] = derive(step.kernel, step.attrs, inputs)
            for ret in program.returns:
                reason = refusal(known.get((site, ret.var), PUBLIC))
                if reason is not None:
                    what = plan.labels.get(ret.var, ret.partial)
                    raise AccessDeniedError(
                        f"{reason} (stage {number} of the plan would send {what} from site "
                        f"{site} to the coordinator; nothing was run)"
                    )
