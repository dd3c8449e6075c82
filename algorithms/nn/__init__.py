"""Neural networks: layers (forward/backward/init), optimizers (init/update), models (ffn, cnn).

``ffn`` and ``cnn`` expose SystemDS's paramserv pair ``gradients(model, hyperparams, X, y)`` /
``aggregate(model, hyperparams, gradients)`` plus ``init``, ``predict``, ``validate`` and a
``ffn_train`` / ``cnn_train`` that calls ``fedla.paramserv``.
"""

from fedla.algorithms.nn import cnn, ffn
from fedla.algorithms.nn.cnn import cnn_train
from fedla.algorithms.nn.ffn import ffn_train

__all__ = ["cnn", "cnn_train", "ffn", "ffn_train"]
