"""LeNet-style convolutional network for image classification.

``conv(F1) -> relu -> maxpool -> conv(F2) -> relu -> maxpool -> affine(N3) -> relu -> dropout ->
affine(K) -> softmax``, trained on the mean cross-entropy plus ``lam / 2`` times the squared norm of
the weights. Convolutions are ``Hf x Wf`` with stride 1 and "same" padding by default; pooling is
2 x 2 with stride 2.

Images are rows of ``X`` of shape (N, C*Hin*Win) in NCHW order. The model is a model list
(``fedla.algorithms.nn.model_list``): ``[W1 (F1, C*Hf*Wf), b1 (F1, 1), W2 (F2, F1*Hf*Wf),
b2 (F2, 1), W3 (F2*Hp*Wp, N3), b3 (1, N3), W4 (N3, K), b4 (1, K)]``, two optimizer slots, and the
step counter; ``Hp x Wp`` is the image size after both poolings.

Hyperparameters (a dict): the optimizer's (see ``ffn``), ``lambda`` (default 0), ``keep_prob``
(dropout keep probability, default 0.5, SystemDS's LeNet value; 1 disables dropout) and the
geometry ``C`` (default 1), ``Hin``, ``Win`` (default: square images), ``stride`` (1) and ``pad``
(``(Hf - 1) // 2``). ``paramserv`` puts a fresh ``seed`` into the hyperparameters of every
``gradients`` call, which makes the dropout masks reproducible.

References
----------
.. [1] Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied to document
   recognition", Proc. IEEE 86(11), 1998. https://doi.org/10.1109/5.726791
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from fedla.algorithms.nn import model_list
from fedla.algorithms.nn.labels import check_one_hot
from fedla.algorithms.nn.layers import (
    affine,
    conv2d,
    cross_entropy_loss,
    dropout,
    l2_reg,
    max_pool2d,
    relu,
    softmax,
)
from fedla.algorithms.nn.layers.im2col import output_size
from fedla.runtime.errors import ShapeMismatchError
from fedla.runtime.kernels import array_namespace
from fedla.runtime.udf_registry import remote_function

UPD = "fedla.algorithms.nn.cnn:gradients"
AGG = "fedla.algorithms.nn.cnn:aggregate"
VAL = "fedla.algorithms.nn.cnn:validate"
LABELS = "one-hot"
"""What ``labels`` must be (paramserv checks it before training)."""
HYPERPARAMETERS = model_list.HYPERPARAMETERS | {"C", "Hin", "Win", "Hf", "Wf", "stride", "pad",
                                                "keep_prob"}
N_PARAMS = 8
PREDICT_CHUNK_ROWS = 2048


@dataclass(frozen=True)
class Geometry:
    """Image and filter sizes of one network."""

    C: int
    Hin: int
    Win: int
    Hf: int
    Wf: int
    stride: int
    pad: int

    def conv_pool(self, H: int, W: int) -> tuple[int, int, int, int]:
        """Output size of a convolution, then of the 2 x 2 pooling after it."""
        Hc = output_size(H, self.Hf, self.stride, self.pad)
        Wc = output_size(W, self.Wf, self.stride, self.pad)
        return Hc, Wc, output_size(Hc, 2, 2, 0), output_size(Wc, 2, 2, 0)


def _geometry(params: Sequence[Any], hyperparams: Mapping[str, Any], n_features: int) -> Geometry:
    """Geometry from the hyperparameters, with square images and filters by default."""
    C = int(hyperparams.get("C", 1))
    side = int(round((n_features / C) ** 0.5))
    Hin, Win = int(hyperparams.get("Hin", side)), int(hyperparams.get("Win", side))
    if C * Hin * Win != n_features:
        raise ShapeMismatchError(
            f"cnn: features have {n_features} columns but C*Hin*Win = {C}*{Hin}*{Win} = "
            f"{C * Hin * Win}; set the hyperparameters 'C', 'Hin' and 'Win'"
        )
    Hf = Wf = int(round((params[0].shape[1] / C) ** 0.5))
    Hf, Wf = int(hyperparams.get("Hf", Hf)), int(hyperparams.get("Wf", Wf))
    return Geometry(C, Hin, Win, Hf, Wf, int(hyperparams.get("stride", 1)),
                    int(hyperparams.get("pad", (Hf - 1) // 2)))


def init(
    C: int, Hin: int, Win: int, n_classes: int, F1: int = 16, F2: int = 32, N3: int = 128,
    Hf: int = 3, Wf: int = 3, stride: int = 1, pad: int | None = None, seed: int | None = None,
    dtype: DTypeLike = np.float64,
) -> list[Any]:
    """A new model list: He-initialized weights, zero biases, zero optimizer state.

    Parameters
    ----------
    C, Hin, Win : int
        Channels, height and width of the input images.
    n_classes : int
        Columns of the one-hot labels (K).
    F1, F2 : int, default 16 and 32
        Filters of the two convolutions.
    N3 : int, default 128
        Units of the hidden affine layer.
    Hf, Wf : int, default 3
        Filter height and width.
    stride, pad : int
        Convolution stride (default 1) and padding (default ``(Hf - 1) // 2``, "same"); pass the
        same values as hyperparameters ``stride`` and ``pad`` when they are not the defaults.
    seed : int, optional
    dtype : dtype, default float64

    Returns
    -------
    list of arrays
        The 8 parameters (see the module docstring) + optimizer state.
    """
    geometry = Geometry(C, Hin, Win, Hf, Wf, stride, (Hf - 1) // 2 if pad is None else pad)
    _, _, Hp1, Wp1 = geometry.conv_pool(Hin, Win)
    _, _, Hp2, Wp2 = geometry.conv_pool(Hp1, Wp1)
    s1, s2, s3, s4 = np.random.SeedSequence(seed).spawn(4)
    params = [
        *conv2d.init(F1, C, Hf, Wf, seed=s1, dtype=dtype),
        *conv2d.init(F2, F1, Hf, Wf, seed=s2, dtype=dtype),
        *affine.init(F2 * Hp2 * Wp2, N3, seed=s3, dtype=dtype),
        *affine.init(N3, n_classes, seed=s4, dtype=dtype),
    ]
    return model_list.with_optimizer_state(params)


def _forward(
    params: Sequence[Any], g: Geometry, X: Any, keep_prob: float, seed: int | None
) -> tuple[Any, dict[str, Any]]:
    """Class probabilities and every intermediate the backward pass needs."""
    W1, b1, W2, b2, W3, b3, W4, b4 = params
    c: dict[str, Any] = {"X": X}
    conv = {"Hf": g.Hf, "Wf": g.Wf, "strideh": g.stride, "stridew": g.stride,
            "padh": g.pad, "padw": g.pad}
    c["outc1"], c["Houtc1"], c["Woutc1"] = conv2d.forward(X, W1, b1, g.C, g.Hin, g.Win, **conv)
    c["outr1"] = relu.forward(c["outc1"])
    c["outp1"], c["Houtp1"], c["Woutp1"] = max_pool2d.forward(
        c["outr1"], W1.shape[0], c["Houtc1"], c["Woutc1"])
    c["outc2"], c["Houtc2"], c["Woutc2"] = conv2d.forward(
        c["outp1"], W2, b2, W1.shape[0], c["Houtp1"], c["Woutp1"], **conv)
    c["outr2"] = relu.forward(c["outc2"])
    c["outp2"], c["Houtp2"], c["Woutp2"] = max_pool2d.forward(
        c["outr2"], W2.shape[0], c["Houtc2"], c["Woutc2"])
    c["outa3"] = affine.forward(c["outp2"], W3, b3)
    c["outr3"] = relu.forward(c["outa3"])
    if keep_prob < 1:
        c["outd3"], c["maskd3"] = dropout.forward(c["outr3"], keep_prob, seed)
    else:
        c["outd3"] = c["outr3"]
    c["outa4"] = affine.forward(c["outd3"], W4, b4)
    return softmax.forward(c["outa4"]), c


@remote_function
def gradients(
    model: Sequence[Any], hyperparams: Mapping[str, Any], features: Any, labels: Any
) -> list[Any]:
    """Gradients of the loss on one batch, one per parameter ``[dW1, db1, .., dW4, db4]``.

    Parameters
    ----------
    model : list of arrays
        From ``init``.
    hyperparams : dict
        Reads ``lambda``, ``keep_prob``, ``seed`` and the geometry (module docstring).
    features : array of shape (N, C*Hin*Win)
    labels : array of shape (N, K)
        One-hot targets.
    """
    params = model_list.parameters(model)
    W1, b1, W2, b2, W3, b3, W4, b4 = params
    g = _geometry(params, hyperparams, features.shape[1])
    keep_prob = float(hyperparams.get("keep_prob", 0.5))
    probs, c = _forward(params, g, features, keep_prob, hyperparams.get("seed"))
    conv = {"Hf": g.Hf, "Wf": g.Wf, "strideh": g.stride, "stridew": g.stride,
            "padh": g.pad, "padw": g.pad}
    F1, F2 = W1.shape[0], W2.shape[0]
    # STEP 1: loss and softmax
    douta4 = softmax.backward(cross_entropy_loss.backward(probs, labels), c["outa4"], probs)
    # STEP 2: affine 4, dropout, relu, affine 3
    doutd3, dW4, db4 = affine.backward(douta4, c["outd3"], W4, b4)
    doutr3 = dropout.backward(doutd3, c["outr3"], keep_prob, c["maskd3"]) if keep_prob < 1 \
        else doutd3
    douta3 = relu.backward(doutr3, c["outa3"])
    doutp2, dW3, db3 = affine.backward(douta3, c["outp2"], W3, b3)
    # STEP 3: pool, relu, conv 2
    doutr2 = max_pool2d.backward(doutp2, c["Houtp2"], c["Woutp2"], c["outr2"], F2,
                                 c["Houtc2"], c["Woutc2"])
    doutc2 = relu.backward(doutr2, c["outc2"])
    doutp1, dW2, db2 = conv2d.backward(doutc2, c["Houtc2"], c["Woutc2"], c["outp1"], W2, b2, F1,
                                       c["Houtp1"], c["Woutp1"], **conv)
    # STEP 4: pool, relu, conv 1
    doutr1 = max_pool2d.backward(doutp1, c["Houtp1"], c["Woutp1"], c["outr1"], F1,
                                 c["Houtc1"], c["Woutc1"])
    doutc1 = relu.backward(doutr1, c["outc1"])
    _, dW1, db1 = conv2d.backward(doutc1, c["Houtc1"], c["Woutc1"], features, W1, b1, g.C,
                                  g.Hin, g.Win, **conv)
    grads = [dW1, db1, dW2, db2, dW3, db3, dW4, db4]
    lam = hyperparams.get("lambda", 0.0)
    if lam:
        for i in (0, 2, 4, 6):
            grads[i] = grads[i] + l2_reg.backward(params[i], lam)
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


def predict(
    model: Sequence[Any], X: Any, hyperparams: Mapping[str, Any] | None = None
) -> Any:
    """Class probabilities of shape (N, K) for images ``X`` of shape (N, C*Hin*Win).

    ``hyperparams`` is needed only for a non-default geometry; dropout is off.
    """
    params = model_list.parameters(model)
    if len(params) != N_PARAMS:
        raise ShapeMismatchError(f"a cnn model has {N_PARAMS} parameters; got {len(params)}")
    g = _geometry(params, hyperparams or {}, X.shape[1])
    xp = array_namespace(X)
    chunks = [_forward(params, g, X[i:i + PREDICT_CHUNK_ROWS], 1.0, None)[0]
              for i in range(0, X.shape[0], PREDICT_CHUNK_ROWS)]
    return xp.concatenate(chunks, axis=0)


@remote_function
def validate(
    model: Sequence[Any], hyperparams: Mapping[str, Any], features: Any, labels: Any
) -> tuple[float, float]:
    """``(loss, accuracy)`` on a labelled set: mean cross-entropy and the share of argmax hits."""
    probs = predict(model, features, hyperparams)
    xp = array_namespace(probs)
    accuracy = float(xp.mean(probs.argmax(axis=1) == labels.argmax(axis=1)))
    return cross_entropy_loss.forward(probs, labels), accuracy


def cnn_train(
    features: Any, labels: Any, C: int = 1, Hin: int | None = None, Win: int | None = None, *,
    F1: int = 16, F2: int = 32, N3: int = 128, Hf: int = 3, Wf: int = 3, epochs: int = 20,
    batchsize: int = 64, optimizer: str = "adam", hyperparams: Mapping[str, Any] | None = None,
    val_features: Any = None, val_labels: Any = None, seed: int | None = None,
    **paramserv_kwargs: Any,
) -> list[Any]:
    """Train the LeNet-style classifier with ``fedla.paramserv``.

    Parameters
    ----------
    features : array of shape (N, C*Hin*Win)
        Images, NCHW order.
    labels : array of shape (N, K)
        One-hot; see ``fedla.algorithms.nn.labels.one_hot``.
    C, Hin, Win : int
        Image geometry; ``Hin`` and ``Win`` default to square images.
    F1, F2, N3, Hf, Wf : int
        Architecture, see ``init``.
    epochs, batchsize : int
        Passed to paramserv.
    optimizer : str, default "adam"
        ``hyperparams["optimizer"]`` unless ``hyperparams`` names one.
    hyperparams : dict, optional
        Optimizer hyperparameters, ``lambda``, ``keep_prob``.
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

    check_one_hot(labels, "cnn_train")
    features = np.asarray(features)
    side = int(round((features.shape[1] / C) ** 0.5))
    Hin, Win = Hin or side, Win or side
    model = init(C, Hin, Win, np.shape(labels)[1], F1=F1, F2=F2, N3=N3, Hf=Hf, Wf=Wf, seed=seed,
                 dtype=features.dtype if features.dtype.kind == "f" else np.float64)
    params = {"optimizer": optimizer, "C": C, "Hin": Hin, "Win": Win, "Hf": Hf, "Wf": Wf,
              **(hyperparams or {})}
    return paramserv(model=model, features=features, labels=labels, upd=UPD, agg=AGG, val=VAL,
                     epochs=epochs, batchsize=batchsize, hyperparams=params,
                     val_features=val_features, val_labels=val_labels, seed=seed,
                     **paramserv_kwargs)
