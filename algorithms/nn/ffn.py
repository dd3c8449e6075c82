"""Fully connected feed-forward network for classification.

``probs = softmax(affine_L(relu(affine_{L-1}( ... relu(affine_1(X)) ... ))))``, trained on the
mean cross-entropy plus ``lam / 2`` times the squared norm of the weights (not the biases).

The model is a model list (``fedla.algorithms.nn.model_list``): ``[W_1, b_1, .., W_L, b_L]``, two
optimizer slots of the same shapes, and the step counter. ``gradients`` and ``aggregate`` are the
SystemDS pair that ``paramserv`` calls; ``ffn_train`` wires them up.

Hyperparameters (a dict): ``optimizer`` (``"sgd"``, ``"sgd_momentum"``, ``"sgd_nesterov"``,
``"adagrad"``, ``"rmsprop"``, ``"adam"``; default ``"sgd"``), its parameters (``lr``, ``mu``,
``beta1``, ...; recommended defaults if missing) and ``lambda`` (L2 weight decay, default 0).

Examples
--------
>>> import numpy as np
>>> from fedla.algorithms.nn import ffn
>>> from fedla.algorithms.nn.labels import one_hot
>>> X = np.random.default_rng(0).normal(size=(400, 4)); y = (X[:, 0] > 0).astype(int)
>>> model = ffn.ffn_train(X, one_hot(y), hidden=(16,), epochs=10, batchsize=32,
...                       hyperparams={"lr": 1e-2}, seed=0, k=1)
>>> float((ffn.predict(model, X).argmax(axis=1) == y).mean()) > 0.95
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from fedla.algorithms.nn import model_list
from fedla.algorithms.nn.labels import check_one_hot
from fedla.algorithms.nn.layers import affine, cross_entropy_loss, l2_reg, relu, softmax
from fedla.runtime.kernels import array_namespace
from fedla.runtime.udf_registry import remote_function

UPD = "fedla.algorithms.nn.ffn:gradients"
AGG = "fedla.algorithms.nn.ffn:aggregate"
VAL = "fedla.algorithms.nn.ffn:validate"
LABELS = "one-hot"
"""What ``labels`` must be (paramserv checks it before training)."""
HYPERPARAMETERS = model_list.HYPERPARAMETERS


def init(
    n_features: int, n_classes: int, hidden: Sequence[int] = (128,), seed: int | None = None,
    dtype: DTypeLike = np.float64,
) -> list[Any]:
    """A new model list: He-initialized weights, zero biases, zero optimizer state.

    Parameters
    ----------
    n_features : int
        Columns of the features ``X`` (D).
    n_classes : int
        Columns of the one-hot labels (K).
    hidden : sequence of int, default (128,)
        Units of each hidden layer; ``()`` gives multinomial logistic regression.
    seed : int, optional
        Seed of the weights.
    dtype : dtype, default float64

    Returns
    -------
    list of arrays
        ``[W_1 (D, M_1), b_1 (1, M_1), .., W_L (M_{L-1}, K), b_L (1, K)]`` + optimizer state.
    """
    sizes = [n_features, *hidden, n_classes]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes) - 1)
    params: list[Any] = []
    for D, M, layer_seed in zip(sizes[:-1], sizes[1:], seeds):
        params.extend(affine.init(D, M, seed=layer_seed, dtype=dtype))
    return model_list.with_optimizer_state(params)


def _forward(params: Sequence[Any], X: Any) -> tuple[list[Any], list[Any], Any]:
    """The input and the scores of every affine layer, and the class probabilities."""
    inputs, scores, out = [], [], X
    n_layers = len(params) // 2
    for layer in range(n_layers):
        inputs.append(out)
        scores.append(affine.forward(out, params[2 * layer], params[2 * layer + 1]))
        out = relu.forward(scores[-1]) if layer < n_layers - 1 else softmax.forward(scores[-1])
    return inputs, scores, out


@remote_function
def gradients(
    model: Sequence[Any], hyperparams: Mapping[str, Any], features: Any, labels: Any
) -> list[Any]:
    """Gradients of the loss on one batch, one per parameter ``[dW_1, db_1, .., dW_L, db_L]``.

    Parameters
    ----------
    model : list of arrays
        From ``init``.
    hyperparams : dict
        Reads ``lambda`` (L2 weight decay, default 0).
    features : array of shape (N, D)
    labels : array of shape (N, K)
        One-hot targets.
    """
    params = model_list.parameters(model)
    lam = hyperparams.get("lambda", 0.0)
    inputs, scores, probs = _forward(params, features)
    dout = softmax.backward(cross_entropy_loss.backward(probs, labels), scores[-1], probs)
    grads: list[Any] = [None] * len(params)
    for layer in reversed(range(len(params) // 2)):
        W, b = params[2 * layer], params[2 * layer + 1]
        if layer:
            dX, dW, db = affine.backward(dout, inputs[layer], W, b)
            dout = relu.backward(dX, scores[layer - 1])
        else:
            dW, db = affine.parameter_gradients(dout, inputs[0])
        grads[2 * layer] = dW + l2_reg.backward(W, lam) if lam else dW
        grads[2 * layer + 1] = db
    return grads


@remote_function
def aggregate(
    model: Sequence[Any], hyperparams: Mapping[str, Any], gradients: Sequence[Any]
) -> list[Any]:
    """One step of ``hyperparams["optimizer"]``; see ``model_list.apply_gradients``."""
    return model_list.apply_gradients(model, hyperparams, gradients)


def n_outputs(model: Sequence[Any]) -> int:
    """Classes the model predicts (columns of its output layer)."""
    return int(model_list.parameters(model)[-1].shape[-1])


def predict(model: Sequence[Any], X: Any) -> Any:
    """Class probabilities of shape (N, K) for features ``X`` of shape (N, D)."""
    return _forward(model_list.parameters(model), X)[2]


@remote_function
def validate(
    model: Sequence[Any], hyperparams: Mapping[str, Any], features: Any, labels: Any
) -> tuple[float, float]:
    """``(loss, accuracy)`` on a labelled set: mean cross-entropy and the share of argmax hits."""
    probs = predict(model, features)
    xp = array_namespace(probs)
    accuracy = float(xp.mean(probs.argmax(axis=1) == labels.argmax(axis=1)))
    return cross_entropy_loss.forward(probs, labels), accuracy


def ffn_train(
    features: Any, labels: Any, hidden: Sequence[int] = (128,), *, epochs: int = 20,
    batchsize: int = 64, optimizer: str = "adam", hyperparams: Mapping[str, Any] | None = None,
    val_features: Any = None, val_labels: Any = None, seed: int | None = None,
    **paramserv_kwargs: Any,
) -> list[Any]:
    """Train a feed-forward classifier with ``fedla.paramserv``.

    Parameters
    ----------
    features : array of shape (N, D)
    labels : array of shape (N, K)
        One-hot; see ``fedla.algorithms.nn.labels.one_hot``.
    hidden : sequence of int, default (128,)
        Hidden layer sizes.
    epochs, batchsize : int
        Passed to paramserv.
    optimizer : str, default "adam"
        ``hyperparams["optimizer"]`` unless ``hyperparams`` names one.
    hyperparams : dict, optional
        Optimizer hyperparameters (``lr``, ...) and ``lambda``.
    val_features, val_labels : arrays, optional
        Validation set, scored after every epoch.
    seed : int, optional
        Seed of the initial weights and of paramserv.
    **paramserv_kwargs
        Any other paramserv argument: ``utype``, ``freq``, ``k``, ``scheme``, ``mode``, ...

    Returns
    -------
    list of arrays
        The trained model list (``fedla.paramserv``'s ``TrainedModel``, with ``.history``).
    """
    from fedla.paramserv import paramserv

    check_one_hot(labels, "ffn_train")
    features = np.asarray(features)
    model = init(features.shape[1], np.shape(labels)[1], hidden, seed=seed,
                 dtype=features.dtype if features.dtype.kind == "f" else np.float64)
    params = {"optimizer": optimizer, **(hyperparams or {})}
    return paramserv(model=model, features=features, labels=labels, upd=UPD, agg=AGG, val=VAL,
                     epochs=epochs, batchsize=batchsize, hyperparams=params,
                     val_features=val_features, val_labels=val_labels, seed=seed,
                     **paramserv_kwargs)
