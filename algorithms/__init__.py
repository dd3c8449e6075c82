"""Builtin algorithms, written once against the matrix API.

Each runs on numpy arrays, local fedla matrices and federated matrices alike, with SystemDS's
builtin semantics, argument names and defaults: ``lm`` (``lmDS``, ``lmCG``), ``l2svm``,
``mlogreg``, ``kmeans``, ``pca``, each with its predict/transform function; and the neural
networks ``ffn`` and ``cnn`` (modules with ``init``/``gradients``/``aggregate``/``predict``) with
their ``ffn_train``/``cnn_train`` conveniences over ``fedla.paramserv``.
"""

from fedla.algorithms.convergence import ConvergenceWarning
from fedla.algorithms.kmeans import kmeans, kmeans_predict
from fedla.algorithms.l2svm import l2svm, l2svm_predict
from fedla.algorithms.lm import lm, lm_predict, lmCG, lmDS
from fedla.algorithms.mlogreg import mlogreg, mlogreg_predict
from fedla.algorithms.nn import cnn, cnn_train, ffn, ffn_train
from fedla.algorithms.pca import PCAResult, pca, pca_transform

__all__ = [
    "ConvergenceWarning",
    "PCAResult",
    "cnn",
    "cnn_train",
    "ffn",
    "ffn_train",
    "kmeans",
    "kmeans_predict",
    "l2svm",
    "l2svm_predict",
    "lm",
    "lmCG",
    "lmDS",
    "lm_predict",
    "mlogreg",
    "mlogreg_predict",
    "pca",
    "pca_transform",
]
