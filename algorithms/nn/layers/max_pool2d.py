"""2-D max pooling over each channel of NCHW images.

Shapes: ``X`` (N, C*Hin*Win), ``out`` (N, C*Hout*Wout), ``dX`` (N, C*Hin*Win), with
``Hout = floor((Hin + 2 padh - Hf) / strideh) + 1`` (likewise ``Wout``). Padding is ``-inf``, so a
padded cell is never the maximum. The gradient of a window goes to its (first) maximum.
"""

from __future__ import annotations

from typing import Any

from fedla.algorithms.nn.layers.im2col import col2im, output_size, padded_images, windows
from fedla.runtime.kernels import array_namespace


def _window_rows(X: Any, C: int, Hin: int, Win: int, Hf: int, Wf: int,
                 strideh: int, stridew: int, padh: int, padw: int) -> Any:
    """Windows as (N, C, Hout, Wout, Hf*Wf)."""
    xp = array_namespace(X)
    images = padded_images(xp, X, C, Hin, Win, padh, padw, value=-xp.inf)
    win = windows(xp, images, Hf, Wf, strideh, stridew)
    return win.reshape(*win.shape[:4], Hf * Wf)


def forward(
    X: Any, C: int, Hin: int, Win: int, Hf: int = 2, Wf: int = 2,
    strideh: int = 2, stridew: int = 2, padh: int = 0, padw: int = 0,
) -> tuple[Any, int, int]:
    """Max over every ``Hf x Wf`` window.

    Parameters
    ----------
    X : array of shape (N, C*Hin*Win)
    C, Hin, Win : int
        Channels, height and width of the input images.
    Hf, Wf : int, default 2
        Window height and width.
    strideh, stridew : int, default 2
    padh, padw : int, default 0

    Returns
    -------
    out : array of shape (N, C*Hout*Wout)
    Hout, Wout : int
    """
    output_size(Hin, Hf, strideh, padh)
    output_size(Win, Wf, stridew, padw)
    rows = _window_rows(X, C, Hin, Win, Hf, Wf, strideh, stridew, padh, padw)
    N, _, Hout, Wout, _ = rows.shape
    return rows.max(axis=4).reshape(N, C * Hout * Wout), Hout, Wout


def backward(
    dout: Any, Hout: int, Wout: int, X: Any, C: int, Hin: int, Win: int, Hf: int = 2,
    Wf: int = 2, strideh: int = 2, stridew: int = 2, padh: int = 0, padw: int = 0,
) -> Any:
    """Route each output gradient to the position of its window's maximum.

    Parameters
    ----------
    dout : array of shape (N, C*Hout*Wout)
    Hout, Wout : int
        As returned by ``forward``.
    X, C, Hin, Win, Hf, Wf, strideh, stridew, padh, padw
        As for ``forward``.

    Returns
    -------
    dX : array of shape (N, C*Hin*Win)
    """
    xp = array_namespace(dout, X)
    rows = _window_rows(X, C, Hin, Win, Hf, Wf, strideh, stridew, padh, padw)
    N = X.shape[0]
    first_max = rows.argmax(axis=4)[..., None] == xp.arange(Hf * Wf)  # (N, C, Hout, Wout, Hf*Wf)
    dwin = (first_max * dout.reshape(N, C, Hout, Wout, 1)).reshape(N, C, Hout, Wout, Hf, Wf)
    return col2im(xp, dwin, Hin, Win, padh, padw, strideh, stridew)
