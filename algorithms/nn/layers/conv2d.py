"""2-D convolution (cross-correlation, as in every DL framework) by im2col and one matmul.

Shapes: ``X`` (N, C*Hin*Win), ``W`` (F, C*Hf*Wf), ``b`` (F, 1), ``out`` (N, F*Hout*Wout), with
images flattened in NCHW order and ``Hout = floor((Hin + 2 padh - Hf) / strideh) + 1`` (likewise
``Wout``). The windows of all images form a (N*Hout*Wout, C*Hf*Wf) matrix ``cols`` and
``out = cols W^T + b^T``; the backward pass is ``dW = dO^T cols``, ``dcols = dO W`` and a col2im.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from fedla.algorithms.nn.initializers import Seed, he_normal
from fedla.algorithms.nn.layers.im2col import col2im, output_size, padded_images, windows
from fedla.runtime.kernels import array_namespace


def _cols(X: Any, C: int, Hin: int, Win: int, Hf: int, Wf: int,
          strideh: int, stridew: int, padh: int, padw: int) -> Any:
    """The im2col matrix (N*Hout*Wout, C*Hf*Wf), rows ordered (n, h, w)."""
    xp = array_namespace(X)
    win = windows(xp, padded_images(xp, X, C, Hin, Win, padh, padw), Hf, Wf, strideh, stridew)
    N, _, Hout, Wout = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(N * Hout * Wout, C * Hf * Wf)


def forward(
    X: Any, W: Any, b: Any, C: int, Hin: int, Win: int, Hf: int, Wf: int,
    strideh: int = 1, stridew: int = 1, padh: int = 0, padw: int = 0,
) -> tuple[Any, int, int]:
    """Convolve ``F`` filters over a batch of images.

    Parameters
    ----------
    X : array of shape (N, C*Hin*Win)
        Input images, NCHW order.
    W : array of shape (F, C*Hf*Wf)
        Filters, one per row.
    b : array of shape (F, 1)
        Biases.
    C, Hin, Win : int
        Input channels, height and width.
    Hf, Wf : int
        Filter height and width.
    strideh, stridew : int, default 1
        Strides.
    padh, padw : int, default 0
        Zero padding on each side.

    Returns
    -------
    out : array of shape (N, F*Hout*Wout)
    Hout, Wout : int
    """
    N, F = X.shape[0], W.shape[0]
    Hout = output_size(Hin, Hf, strideh, padh)
    Wout = output_size(Win, Wf, stridew, padw)
    cols = _cols(X, C, Hin, Win, Hf, Wf, strideh, stridew, padh, padw)
    out = (cols @ W.T + b.T).reshape(N, Hout, Wout, F)              # rows ordered (n, h, w)
    return out.transpose(0, 3, 1, 2).reshape(N, F * Hout * Wout), Hout, Wout


def backward(
    dout: Any, Hout: int, Wout: int, X: Any, W: Any, b: Any, C: int, Hin: int, Win: int,
    Hf: int, Wf: int, strideh: int = 1, stridew: int = 1, padh: int = 0, padw: int = 0,
) -> tuple[Any, Any, Any]:
    """Gradients of the convolution.

    Parameters
    ----------
    dout : array of shape (N, F*Hout*Wout)
        Gradient of the loss with respect to ``out``.
    Hout, Wout : int
        Output height and width, as returned by ``forward``.
    X, W, b, C, Hin, Win, Hf, Wf, strideh, stridew, padh, padw
        As for ``forward``.

    Returns
    -------
    dX : array of shape (N, C*Hin*Win)
    dW : array of shape (F, C*Hf*Wf)
    db : array of shape (F, 1)
    """
    xp = array_namespace(dout, X)
    N, F = X.shape[0], W.shape[0]
    dO = dout.reshape(N, F, Hout, Wout).transpose(0, 2, 3, 1).reshape(N * Hout * Wout, F)
    cols = _cols(X, C, Hin, Win, Hf, Wf, strideh, stridew, padh, padw)
    dW = dO.T @ cols
    db = dO.sum(axis=0).reshape(F, 1)
    dwin = (dO @ W).reshape(N, Hout, Wout, C, Hf, Wf).transpose(0, 3, 1, 2, 4, 5)
    dX = col2im(xp, dwin, Hin, Win, padh, padw, strideh, stridew)
    return dX, dW, db


def init(
    F: int, C: int, Hf: int, Wf: int, seed: Seed = None, dtype: DTypeLike = np.float64
) -> tuple[Any, Any]:
    """He-normal filters ``W`` of shape (F, C*Hf*Wf) and zero biases ``b`` of shape (F, 1)."""
    fan_in = C * Hf * Wf
    return he_normal((F, fan_in), fan_in=fan_in, seed=seed, dtype=dtype), np.zeros((F, 1), dtype)
