"""The model list of the built-in networks: parameters, two optimizer slots, a step counter.

``model = [P_1 .. P_n,  S1_1 .. S1_n,  S2_1 .. S2_n,  t]``

``n`` parameters, then two optimizer-state slots of the same shapes (zeros until an optimizer uses
them), then ``t`` of shape (1, 1), the number of optimizer steps applied so far. Every optimizer
fits this layout: SGD uses no slot; momentum, Nesterov, AdaGrad and RMSprop use slot 1; Adam uses
both slots and ``t``. So:

- the optimizer is chosen by ``hyperparams["optimizer"]`` alone and a model can switch optimizers;
- ``predict(model, X)`` needs no hyperparameters (``n = (len(model) - 1) / 3``);
- optimizer state is part of the model that paramserv moves, averages (FedAvg) and checkpoints, as
  in SystemDS's distributed LeNet, whose model list carries the momentum velocities.

``apply_gradients`` is the ``aggregate`` function of ``ffn`` and ``cnn``: it takes the ``n``
gradients (SystemDS's pair: ``gradients`` returns one per parameter, ``aggregate`` updates the whole
list) and returns a new list; nothing is modified in place.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from fedla.algorithms.nn.optim import adagrad, adam, rmsprop, sgd, sgd_momentum, sgd_nesterov
from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError

N_SLOTS = 2

_OPTIMIZERS: dict[str, tuple[ModuleType, tuple[str, ...]]] = {
    "sgd": (sgd, ()),
    "sgd_momentum": (sgd_momentum, ("v",)),
    "sgd_nesterov": (sgd_nesterov, ("v",)),
    "adagrad": (adagrad, ("cache",)),
    "rmsprop": (rmsprop, ("cache",)),
    "adam": (adam, ("m", "v")),
}
OPTIMIZERS = tuple(_OPTIMIZERS)


def _hyperparameter_defaults(module: ModuleType, slots: tuple[str, ...]) -> dict[str, Any]:
    """The scalar keyword arguments of ``module.update`` and their defaults (lr, mu, ...)."""
    skip = {"X", "dX", "t", *slots}
    return {
        name: p.default for name, p in inspect.signature(module.update).parameters.items()
        if name not in skip
    }


DEFAULTS: dict[str, dict[str, Any]] = {
    name: _hyperparameter_defaults(module, slots) for name, (module, slots) in _OPTIMIZERS.items()
}

HYPERPARAMETERS = frozenset(
    {"optimizer", "lambda", "lr_decay"} | {key for params in DEFAULTS.values() for key in params}
)
"""Every hyperparameter name the built-in networks read (paramserv refuses unknown ones)."""


def with_optimizer_state(params: Sequence[Any]) -> list[Any]:
    """Append the zero optimizer slots and ``t = 0`` to a list of parameters."""
    params = list(params)
    if not params:
        raise InvalidArgumentError("a model needs at least one parameter array")
    slots = [p * 0 for _ in range(N_SLOTS) for p in params]
    return params + slots + [params[0].reshape(-1)[:1].reshape(1, 1) * 0]


def num_parameters(model: Sequence[Any]) -> int:
    """``n`` for a model list of length ``3 n + 1``."""
    n, rest = divmod(len(model) - 1, 1 + N_SLOTS)
    if n < 1 or rest:
        raise ShapeMismatchError(
            f"a model list of the built-in networks has 3 n + 1 arrays (n parameters, two "
            f"optimizer slots, the step counter); got {len(model)} arrays. Build it with the "
            "model's init function"
        )
    return n


def parameters(model: Sequence[Any]) -> list[Any]:
    """The ``n`` parameter arrays of a model list."""
    return list(model[: num_parameters(model)])


def apply_gradients(
    model: Sequence[Any], hyperparams: Mapping[str, Any], gradients: Sequence[Any]
) -> list[Any]:
    """One optimizer step: the ``aggregate`` of the built-in networks.

    Parameters
    ----------
    model : list of arrays
        ``[P_1 .. P_n, S1_1 .. S1_n, S2_1 .. S2_n, t]`` (see the module docstring).
    hyperparams : dict
        ``"optimizer"`` (one of ``OPTIMIZERS``, default ``"sgd"``) and that optimizer's
        hyperparameters (``lr``, ``mu``, ``beta1``, ...); missing ones take the optimizer's
        recommended defaults (``DEFAULTS``). ``"lr_decay"`` (default 0) anneals the learning
        rate by inverse time decay, ``lr / (1 + lr_decay * t)`` at step ``t``.
    gradients : list of arrays
        One gradient per parameter, in model order.

    Returns
    -------
    list of arrays
        The updated model list, of the same shapes.
    """
    name = hyperparams.get("optimizer", "sgd")
    if name not in _OPTIMIZERS:
        raise InvalidArgumentError(
            "The 'optimizer' hyperparameter must be one of "
            f"{', '.join(repr(o) for o in OPTIMIZERS)}. Got {name!r} instead."
        )
    module, slot_names = _OPTIMIZERS[name]
    n = num_parameters(model)
    if len(gradients) != n:
        raise ShapeMismatchError(
            f"got {len(gradients)} gradients for a model of {n} parameters; gradients must return "
            "one gradient per parameter, in model order"
        )
    hyper = {key: hyperparams.get(key, default) for key, default in DEFAULTS[name].items()}
    t = model[-1]
    steps_done = float(t.reshape(-1)[0])
    decay = float(hyperparams.get("lr_decay", 0.0))
    if decay:
        hyper["lr"] = hyper["lr"] / (1.0 + decay * steps_done)
    if name == "adam":
        hyper["t"] = steps_done
    update = module.update
    new_params, new_slots = list(model[:n]), list(model[n:3 * n])
    # a step of a small model is ~30 numpy calls of ~1 us: building per-parameter state dicts
    # and result lists cost a fifth of it
    for i, (P, dP) in enumerate(zip(model[:n], gradients)):
        if dP.shape != P.shape:
            raise ShapeMismatchError(
                f"gradient {i} has shape {dP.shape} but parameter {i} has shape {P.shape}"
            )
        if not slot_names:
            new_params[i] = update(P, dP, **hyper)
        elif len(slot_names) == 1:
            new_params[i], new_slots[i] = update(P, dP, **hyper, **{slot_names[0]: new_slots[i]})
        else:
            new_params[i], new_slots[i], new_slots[n + i] = update(
                P, dP, **hyper, **dict(zip(slot_names, (new_slots[i], new_slots[n + i]))))
    return new_params + new_slots + [t + 1]
