"""Weight initializers: Glorot (Xavier) and He (Kaiming), normal and uniform.

Each returns a numpy array of the requested shape drawn from ``numpy.random.default_rng(seed)``;
``seed`` may be an int, a ``numpy.random.SeedSequence`` (models spawn one per layer) or ``None``
for fresh OS entropy. Move the result to a GPU with ``cupy.asarray`` if needed.

References
----------
.. [1] X. Glorot and Y. Bengio, "Understanding the difficulty of training deep feedforward neural
   networks", AISTATS 2010. http://proceedings.mlr.press/v9/glorot10a.html
.. [2] K. He, X. Zhang, S. Ren and J. Sun, "Delving Deep into Rectifiers: Surpassing Human-Level
   Performance on ImageNet Classification", ICCV 2015. https://arxiv.org/abs/1502.01852
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

Seed = int | np.random.SeedSequence | None


def glorot_uniform(
    shape: tuple[int, ...], fan_in: int, fan_out: int, seed: Seed = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``: unit variance for tanh/sigmoid."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return np.random.default_rng(seed).uniform(-limit, limit, size=shape).astype(dtype)


def glorot_normal(
    shape: tuple[int, ...], fan_in: int, fan_out: int, seed: Seed = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """``N(0, 2 / (fan_in + fan_out))``."""
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return (np.random.default_rng(seed).standard_normal(shape) * std).astype(dtype)


def he_normal(
    shape: tuple[int, ...], fan_in: int, seed: Seed = None, dtype: DTypeLike = np.float64
) -> np.ndarray:
    """``N(0, 2 / fan_in)``: keeps activation variance through ReLU layers (SystemDS default)."""
    std = np.sqrt(2.0 / fan_in)
    return (np.random.default_rng(seed).standard_normal(shape) * std).astype(dtype)


def he_uniform(
    shape: tuple[int, ...], fan_in: int, seed: Seed = None, dtype: DTypeLike = np.float64
) -> np.ndarray:
    """``U(-a, a)`` with ``a = sqrt(6 / fan_in)``."""
    limit = np.sqrt(6.0 / fan_in)
    return np.random.default_rng(seed).uniform(-limit, limit, size=shape).astype(dtype)
