"""Sliding windows over NCHW images, shared by conv2d and the pooling layers.

Images travel as rows of a 2-D matrix, ``(N, C*H*W)`` flattened in NCHW order (SystemDS's layout);
these helpers view them as ``(N, C, H, W)``, pad them, expose every ``Hf x Wf`` window as a strided
view ``(N, C, Hout, Wout, Hf, Wf)`` without copying (im2col then is one reshape), and scatter window
gradients back (col2im, one strided add per filter position).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from fedla.runtime.errors import InvalidArgumentError


def output_size(size: int, filter_size: int, stride: int, pad: int) -> int:
    """Output height (or width): ``floor((size + 2 pad - filter_size) / stride) + 1``."""
    out = (size + 2 * pad - filter_size) // stride + 1
    if out < 1:
        raise InvalidArgumentError(
            f"a filter of size {filter_size} with stride {stride} and padding {pad} does not fit "
            f"an input of size {size}; use a smaller filter or more padding"
        )
    return out


def padded_images(
    xp: ModuleType, X: Any, C: int, Hin: int, Win: int, padh: int, padw: int, value: float = 0.0
) -> Any:
    """View ``X`` of shape (N, C*Hin*Win) as (N, C, Hin + 2 padh, Win + 2 padw), padded."""
    images = X.reshape(X.shape[0], C, Hin, Win)
    if padh == 0 and padw == 0:
        return images
    widths = ((0, 0), (0, 0), (padh, padh), (padw, padw))
    return xp.pad(images, widths, mode="constant", constant_values=value)


def windows(xp: ModuleType, images: Any, Hf: int, Wf: int, strideh: int, stridew: int) -> Any:
    """Strided read-only view (N, C, Hout, Wout, Hf, Wf) of every window of padded ``images``."""
    N, C, Hp, Wp = images.shape
    Hout = (Hp - Hf) // strideh + 1
    Wout = (Wp - Wf) // stridew + 1
    images = xp.ascontiguousarray(images)
    sn, sc, sh, sw = images.strides
    return xp.lib.stride_tricks.as_strided(
        images,
        shape=(N, C, Hout, Wout, Hf, Wf),
        strides=(sn, sc, sh * strideh, sw * stridew, sh, sw),
    )


def col2im(
    xp: ModuleType, dwindows: Any, Hin: int, Win: int, padh: int, padw: int,
    strideh: int, stridew: int,
) -> Any:
    """Sum window gradients (N, C, Hout, Wout, Hf, Wf) into image gradients (N, C*Hin*Win)."""
    N, C, Hout, Wout, Hf, Wf = dwindows.shape
    dimages = xp.zeros((N, C, Hin + 2 * padh, Win + 2 * padw), dtype=dwindows.dtype)
    if strideh == Hf and stridew == Wf:  # windows tile the image: one strided copy
        tiles = dwindows.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Hout * Hf, Wout * Wf)
        dimages[:, :, :Hout * Hf, :Wout * Wf] = tiles
        return dimages[:, :, padh:padh + Hin, padw:padw + Win].reshape(N, C * Hin * Win)
    for i in range(Hf):
        for j in range(Wf):
            dimages[
                :, :, i:i + strideh * (Hout - 1) + 1:strideh, j:j + stridew * (Wout - 1) + 1:stridew
            ] += dwindows[:, :, :, :, i, j]
    return dimages[:, :, padh:padh + Hin, padw:padw + Win].reshape(N, C * Hin * Win)
