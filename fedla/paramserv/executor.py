"""``ParamservExecutor``: where the workers of one paramserv call run their local steps.

The parameter server, its update policies and the worker loop (``local_steps`` between a pull
and a push) are transport-independent (``fedla.runtime.paramserv``); an executor decides where
the loop runs and how it reaches the server: LOCAL (``local_executor``) runs worker processes on
this machine, FEDERATED (``federated_executor``) drives a thread per site partition whose local
steps run at the site by EXEC_UDF; REMOTE_SPARK (barrier tasks) plugs in here too.
"""

from __future__ import annotations

import abc
from typing import Any

from fedla.runtime.paramserv.session import TrainingSession


class ParamservExecutor(abc.ABC):
    """Runs a ``TrainingSession``'s worker tasks until every epoch is done."""

    mode: str

    @abc.abstractmethod
    def run(self, session: TrainingSession, features: Any, labels: Any, upd_ref: str,
            agg_ref: str, hyperparams: dict[str, Any]) -> None:
        """Train ``session`` on ``features``/``labels`` with ``upd``/``agg`` by reference."""
