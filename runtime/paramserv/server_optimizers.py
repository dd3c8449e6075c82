"""Server-side optimizers of federated learning: how one round's aggregated delta moves the model.

The sites send ``local_model - global_model``; the server averages them into ``delta`` and treats
``-delta`` as a pseudo-gradient [1]_. Each optimizer keeps its state (momentum, second moments)
inside the object, one entry per model array, and returns the new model from ``step``.

- ``fedavg``: ``model + lr * delta`` (``lr=1`` is plain FedAvg: exactly ``model + delta``).
- ``fedavgm``: server momentum [2]_, ``v = momentum * v + delta; model + lr * v``.
- ``fedadagrad``, ``fedyogi``, ``fedadam``: Algorithm 2 of [1]_,
  ``m = beta1 m + (1 - beta1) delta``, ``v`` per variant, ``model + lr * m / (sqrt(v) + tau)``,
  with ``m0 = 0`` and ``v0 = tau**2`` (no bias correction, as in the paper).

Integer and boolean arrays in the model (a step counter, a mask kept as an array) are not
parameters: they get ``model + delta`` rounded to their dtype, whatever the optimizer. The averaged
delta of a counter is the sites' mean advance, so this is the FedAvg value; a server learning rate
or an adaptive ``m / (sqrt(v) + tau)`` would scale a count by a meaningless factor.

References
----------
.. [1] S. J. Reddi, Z. Charles, M. Zaheer, Z. Garrett, K. Rush, J. Konečný, S. Kumar and
   H. B. McMahan, "Adaptive Federated Optimization", ICLR 2021. https://arxiv.org/abs/2003.00295
.. [2] T.-M. H. Hsu, H. Qi and M. Brown, "Measuring the Effects of Non-Identical Data
   Distribution for Federated Visual Classification", 2019. https://arxiv.org/abs/1909.06335
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.aggregation import check_like

SERVER_OPTIMIZERS = ("fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad")

_POSITIVE = ("a float in the range (0, inf)", lambda x: 0 < x < np.inf)
_UNIT = ("a float in the range [0, 1)", lambda x: 0 <= x < 1)


class ServerOptimizer(ABC):
    """Moves the global model by one round's aggregated delta; keeps its own state.

    Subclasses set ``name`` and ``PARAMS`` (parameter -> (default, rule)) and implement
    ``_update`` for one floating-point array.
    """

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, tuple[float, tuple[str, Callable[[float], bool]]]]]
    _SLOTS: ClassVar[tuple[str, ...]] = ()  # names of the per-array state arrays

    def __init__(self, **params: float) -> None:
        for key in params:
            if key not in self.PARAMS:
                raise InvalidArgumentError(
                    f"The {key!r} parameter is not a parameter of the {self.name!r} server "
                    f"optimizer; its parameters are {tuple(self.PARAMS)}. Remove {key!r} or "
                    f"choose the optimizer it belongs to."
                )
        for key, (default, (rule, check)) in self.PARAMS.items():
            value = params.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not check(value):
                raise InvalidArgumentError(
                    f"The {key!r} parameter of the {self.name!r} server optimizer must be {rule}. "
                    f"Got {value!r} instead."
                )
            setattr(self, key, float(value))
        self._steps = 0
        self._slots: dict[str, list[np.ndarray | None]] = {}

    def step(self, model: Sequence[Any], delta: Sequence[Any]) -> list[Any]:
        """Apply one round's aggregated delta.

        Parameters
        ----------
        model : list of ndarray
            The global model of the round.
        delta : list of ndarray
            The aggregated client delta (average of ``local_model - model``), same shapes.

        Returns
        -------
        list of ndarray
            The new model; each array keeps its dtype.
        """
        check_like(list(delta), model, "delta",
                   "Pass the aggregated client delta (local - global) of every model array.")
        if not self._slots:
            self._slots = {s: [self._initial_slot(s, np.asarray(m)) for m in model]
                           for s in self._SLOTS}
        elif len(next(iter(self._slots.values()))) != len(model):
            raise InvalidArgumentError(
                f"The model has {len(model)} arrays but the {self.name!r} optimizer's state was "
                f"built for {len(next(iter(self._slots.values())))}. Use a new optimizer for a "
                f"new model."
            )
        self._steps += 1
        out = []
        for i, (m, d) in enumerate(zip(model, delta)):
            m, d = np.asarray(m), np.asarray(d)
            if _is_parameter(m):
                out.append(np.asarray(self._update(i, m, d), dtype=m.dtype))
            else:
                out.append(_add_rounded(m, d))
        return out

    @abstractmethod
    def _update(self, i: int, m: np.ndarray, d: np.ndarray) -> np.ndarray:
        """The new value of floating-point array ``i`` (``m``) given its delta ``d``."""

    def _initial_slot(self, slot: str, m: np.ndarray) -> np.ndarray | None:
        """State array ``slot`` of model array ``m`` before the first round (zeros by default)."""
        return np.zeros(m.shape, dtype=np.float64) if _is_parameter(m) else None

    def state(self) -> dict[str, Any]:
        """The optimizer's state as a flat dict of numbers and arrays (for checkpoints).

        Keys: ``"name"``, ``"steps"`` (rounds applied), ``"n_arrays"`` (model arrays the state
        covers, 0 before the first step) and ``"<slot>_<i>"`` for the state array of model array
        ``i`` (``v`` for fedavgm; ``m`` and ``v`` for the adaptive optimizers; absent for integer
        arrays).
        """
        n = len(next(iter(self._slots.values()))) if self._slots else 0
        out: dict[str, Any] = {"name": self.name, "steps": self._steps, "n_arrays": n}
        for slot, arrays in self._slots.items():
            out.update({f"{slot}_{i}": a.copy() for i, a in enumerate(arrays) if a is not None})
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state()`` returned (possibly after a round trip through ``.npz``)."""
        if str(state.get("name")) != self.name:
            raise InvalidArgumentError(
                f"The state was saved by the {state.get('name')!r} server optimizer, not "
                f"{self.name!r}. Load it into make_server_optimizer({state.get('name')!r})."
            )
        self._steps = int(state["steps"])
        n = int(state["n_arrays"])
        self._slots = {
            s: [np.array(state[f"{s}_{i}"], dtype=np.float64) if f"{s}_{i}" in state else None
                for i in range(n)]
            for s in self._SLOTS
        } if n else {}


def _is_parameter(a: np.ndarray) -> bool:
    return a.dtype.kind in "fc"


def _add_rounded(m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``m + d`` for an integer or boolean array, the delta rounded to the nearest integer."""
    steps = np.rint(d) if d.dtype.kind in "fc" else d
    if m.dtype == np.bool_:
        return (m.astype(np.int64) + steps.astype(np.int64)) != 0
    return (m + steps.astype(m.dtype)).astype(m.dtype)


class FedAvg(ServerOptimizer):
    """``model + lr * delta``; ``lr=1`` (the default) is plain FedAvg."""

    name = "fedavg"
    PARAMS = {"lr": (1.0, _POSITIVE)}
    lr: float

    def _update(self, i: int, m: np.ndarray, d: np.ndarray) -> np.ndarray:
        return m + d if self.lr == 1.0 else m + self.lr * d


class FedAvgM(ServerOptimizer):
    """Server momentum [2]_: ``v = momentum * v + delta; model + lr * v``."""

    name = "fedavgm"
    PARAMS = {"lr": (1.0, _POSITIVE), "momentum": (0.9, _UNIT)}
    _SLOTS = ("v",)
    lr: float
    momentum: float

    def _update(self, i: int, m: np.ndarray, d: np.ndarray) -> np.ndarray:
        v = self._slots["v"][i]
        v *= self.momentum
        v += d
        return m + self.lr * v


class _Adaptive(ServerOptimizer):
    """Algorithm 2 of Reddi et al.; subclasses give the second-moment rule ``_second_moment``.

    The default ``lr=0.01`` is a starting point only: Reddi et al. tune the server learning rate
    over ``10**-3 .. 1`` (and ``tau`` over ``10**-5 .. 10**-1``) per task.
    """

    PARAMS = {"lr": (0.01, _POSITIVE), "beta1": (0.9, _UNIT), "beta2": (0.99, _UNIT),
              "tau": (1e-3, _POSITIVE)}
    _SLOTS = ("m", "v")
    lr: float
    beta1: float
    beta2: float
    tau: float

    def _update(self, i: int, m: np.ndarray, d: np.ndarray) -> np.ndarray:
        mom, v = self._slots["m"][i], self._slots["v"][i]
        mom *= self.beta1
        mom += (1 - self.beta1) * d
        v[...] = self._second_moment(v, np.square(d, dtype=np.float64))
        return m + self.lr * mom / (np.sqrt(v) + self.tau)

    def _initial_slot(self, slot: str, m: np.ndarray) -> np.ndarray | None:
        """``m0 = 0`` and ``v0 = tau**2`` (Reddi et al. require ``v0 >= tau**2``)."""
        zeros = super()._initial_slot(slot, m)
        return zeros + self.tau**2 if slot == "v" and zeros is not None else zeros

    @abstractmethod
    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        """``v_t`` from ``v_{t-1}`` and the squared delta."""


class FedAdagrad(_Adaptive):
    """``v = v + delta**2``."""

    name = "fedadagrad"

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        return v + d2


class FedYogi(_Adaptive):
    """``v = v - (1 - beta2) delta**2 sign(v - delta**2)``."""

    name = "fedyogi"

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        return v - (1 - self.beta2) * d2 * np.sign(v - d2)


class FedAdam(_Adaptive):
    """``v = beta2 v + (1 - beta2) delta**2``."""

    name = "fedadam"

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        return self.beta2 * v + (1 - self.beta2) * d2


_CLASSES: dict[str, type[ServerOptimizer]] = {
    cls.name: cls for cls in (FedAvg, FedAvgM, FedAdam, FedYogi, FedAdagrad)
}


def make_server_optimizer(name: str, **params: float) -> ServerOptimizer:
    """The server optimizer called ``name``, with its parameters.

    Parameters
    ----------
    name : {"fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad"}
        The optimizer (see the module docstring).
    **params : float
        fedavg: ``lr=1.0``; fedavgm: ``lr=1.0, momentum=0.9``; fedadam, fedyogi, fedadagrad:
        ``lr=0.01, beta1=0.9, beta2=0.99, tau=1e-3`` (Reddi et al. tune ``lr`` in 10^-3..1).

    Returns
    -------
    ServerOptimizer

    Examples
    --------
    >>> import numpy as np
    >>> opt = make_server_optimizer("fedavgm", momentum=0.5)
    >>> opt.step([np.zeros(2)], [np.ones(2)])[0]
    array([1., 1.])
    """
    if name not in _CLASSES:
        raise InvalidArgumentError(
            f"The 'name' parameter of make_server_optimizer must be one of {SERVER_OPTIMIZERS}. "
            f"Got {name!r} instead."
        )
    return _CLASSES[name](**params)
