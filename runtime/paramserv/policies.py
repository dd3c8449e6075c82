"""Update policies of the parameter server: when pushed updates reach the model, who waits.

One small class per strategy behind ``UpdatePolicy``. The server counts clocks, versions and the
epoch barrier; a policy only sees pushes and workers leaving the epoch, and answers with the
workers to release (they get the current model). Combining updates is ``server.apply``, which
averages what it is given, weighted by samples.

- ``BSP``: barrier over the workers still in the epoch; their updates are averaged and applied once.
- ``ASP``: every update is applied on arrival and its worker goes on at once (stale updates).
  Gradients go through ``agg`` as they are (asynchronous SGD); a model delta from local steps
  is added as the worker's ``1/k`` share, so one push from each of ``k`` workers on the same
  model equals one FedAvg round (asynchronous model averaging with mixing ``1/k`` [3]_).
- ``SSP``: updates applied as under ASP, but a worker more than ``staleness`` clocks ahead of
  the slowest worker still in the epoch waits until that one catches up [1]_.
- ``SBP``: synchronous with ``b`` backup workers: a round closes with the first ``k - b`` updates;
  updates computed on a model a closed round has replaced are dropped [2]_.

References
----------
.. [1] Q. Ho, J. Cipar, H. Cui, J. K. Kim, S. Lee, P. B. Gibbons, G. A. Gibson, G. R. Ganger and
   E. P. Xing, "More Effective Distributed ML via a Stale Synchronous Parallel Parameter Server",
   NeurIPS 2013. https://papers.nips.cc/paper/4894
.. [2] J. Chen, X. Pan, R. Monga, S. Bengio and R. Jozefowicz, "Revisiting Distributed Synchronous
   SGD", ICLR workshop 2016 (the backup workers of TensorFlow, OSDI 2016).
   https://arxiv.org/abs/1604.00981
.. [3] C. Xie, S. Koyejo and I. Gupta, "Asynchronous Federated Optimization", OPT workshop 2020
   (FedAsync). https://arxiv.org/abs/1903.03934
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from fedla.runtime.paramserv.messages import Update

if TYPE_CHECKING:
    from fedla.runtime.paramserv.server import ParameterServer

UTYPES = ("BSP", "ASP", "SSP", "SBP")


class UpdatePolicy(ABC):
    """Decides when updates are applied and which workers may go on."""

    name: ClassVar[str]

    @abstractmethod
    def push(self, server: ParameterServer, update: Update) -> list[int]:
        """Take one update (the server already advanced the worker's clock); workers to release."""

    def leave(self, server: ParameterServer, worker: int) -> list[int]:
        """``worker`` reached the end of its epoch (it is no longer active); workers to release."""
        return []


class BSP(UpdatePolicy):
    """Bulk synchronous parallel: one averaged update per round of all active workers."""

    name = "BSP"

    def __init__(self) -> None:
        self._round: dict[int, Update] = {}

    def push(self, server: ParameterServer, update: Update) -> list[int]:
        """Join the round; close it once every active worker is in."""
        self._round[update.worker] = update
        return self._close_round(server)

    def leave(self, server: ParameterServer, worker: int) -> list[int]:
        """One fewer worker to wait for."""
        return self._close_round(server)

    def _close_round(self, server: ParameterServer) -> list[int]:
        if not self._round or not server.active <= self._round.keys():
            return []
        workers = sorted(self._round)
        server.apply([self._round[w] for w in workers])
        self._round = {}
        return workers


class ASP(UpdatePolicy):
    """Asynchronous parallel: apply on arrival, never wait."""

    name = "ASP"

    def push(self, server: ParameterServer, update: Update) -> list[int]:
        """Apply the update; its worker goes on."""
        server.apply([update], delta_share=1 / server.num_workers)
        return [update.worker]


class SSP(UpdatePolicy):
    """Stale synchronous parallel: apply on arrival; hold workers ``staleness`` clocks ahead."""

    name = "SSP"

    def __init__(self, staleness: int) -> None:
        self.staleness = staleness
        self._waiting: set[int] = set()

    def push(self, server: ParameterServer, update: Update) -> list[int]:
        """Apply the update; release every waiting worker within the bound."""
        server.apply([update], delta_share=1 / server.num_workers)
        self._waiting.add(update.worker)
        released = self._release(server)
        if update.worker not in released:
            server.history.blocked += 1
        return released

    def leave(self, server: ParameterServer, worker: int) -> list[int]:
        """The slowest worker may have left: release who is within the bound now."""
        return self._release(server)

    def _release(self, server: ParameterServer) -> list[int]:
        slowest = min((server.clocks[w] for w in server.active), default=0)
        ready = sorted(w for w in self._waiting if server.clocks[w] - slowest <= self.staleness)
        self._waiting.difference_update(ready)
        return ready


class SBP(UpdatePolicy):
    """Synchronous with backup workers: a round closes after ``k - b`` fresh updates."""

    name = "SBP"

    def __init__(self, num_backup_workers: int) -> None:
        self.num_backup_workers = num_backup_workers
        self._round: dict[int, Update] = {}

    def push(self, server: ParameterServer, update: Update) -> list[int]:
        """Drop a late update (its worker goes on with the new model) or join the round."""
        if update.version < server.version:  # computed on a model a closed round replaced
            server.history.dropped_updates += 1
            return [update.worker]
        self._round[update.worker] = update
        return self._close_round(server)

    def leave(self, server: ParameterServer, worker: int) -> list[int]:
        """Fewer workers may be left than a full round needs."""
        return self._close_round(server)

    def _close_round(self, server: ParameterServer) -> list[int]:
        needed = min(server.num_workers - self.num_backup_workers, len(server.active))
        if not self._round or len(self._round) < needed:
            return []
        workers = sorted(self._round)
        server.apply([self._round[w] for w in workers])
        self._round = {}
        return workers


def make_policy(utype: str, staleness: int = 0, num_backup_workers: int = 0) -> UpdatePolicy:
    """The policy called ``utype`` (one of ``UTYPES``)."""
    if utype == "BSP":
        return BSP()
    if utype == "ASP":
        return ASP()
    if utype == "SSP":
        return SSP(staleness)
    if utype == "SBP":
        return SBP(num_backup_workers)
    raise ValueError(f"unknown utype {utype!r}; expected one of {UTYPES}")
