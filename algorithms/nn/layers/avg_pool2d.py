"""2-D average pooling over each channel of NCHW images.

Shapes: ``X`` (N, C*Hin*Win), ``out`` (N, C*Hout*Wout), ``dX`` (N, C*Hin*Win), with
``Hout = floor((Hin + 2 padh - Hf) / strideh) + 1`` (likewise ``Wout``). Padding is zeros and
counts in the average (every window divides by ``Hf * Wf``, PyTorch's default).
"""

from __future__ import annotations

from typing import Any

from fedla.algorithms.nn.layers.im2col import col2im, output_size, padded_images, windows
from fedla.runtime.kernels import array_namespace


def forward(
    X: Any, C: int, Hin: int, Win: int, Hf: int = 2, Wf: int = 2,
    strideh: int = 2, stridew: int = 2, padh: int = 0, padw: int = 0,
) -> tuple[Any, int, int]:
    """Mean over every ``Hf x Wf`` window.

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
    xp = array_namespace(X)
    output_size(Hin, Hf, strideh, padh)
    output_size(Win, Wf, stridew, padw)
    win = windows(xp, padded_images(xp, X, C, Hin, Win, padh, padw), Hf, Wf, strideh, stridew)
    N, _, Hout, Wout = win.shape[:4]
    return win.mean(axis=(4, 5)).reshape(N, C * Hout * Wout), Hout, Wout


def backward(
    dout: Any, Hout: int, Wout: int, X: Any, C: int, Hin: int, Win: int, Hf: int = 2,
    Wf: int = 2, strideh: int = 2, stridew: int = 2, padh: int = 0, padw: int = 0,
) -> Any:
    """Spread each output gradient evenly over its window.

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
    N = X.shape[0]
    share = dout.reshape(N, C, Hout, Wout, 1, 1) / (Hf * Wf)
    dwin = xp.broadcast_to(share, (N, C, Hout, Wout, Hf, Wf))
    return col2im(xp, dwin, Hin, Win, padh, padw, strideh, stridew)
