"""How the estimators take their inputs: numpy/scipy through scikit-learn's checks, fedla as is.

Arrays and sparse matrices go through ``sklearn.utils.validation.validate_data`` (so NaN, empty,
1-D or wrongly sized inputs fail exactly as scikit-learn's own estimators fail, and
``n_features_in_``/``feature_names_in_`` are kept). A ``fl.Matrix``, local or federated, is
passed to the algorithm untouched, so federated data stays at its sites; only its shape is
checked here. Per-row results come back as the input came: 1-D arrays for arrays, lazy column
matrices for fedla matrices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils import Tags
from sklearn.utils.validation import validate_data

import fedla as fl


def features(estimator: BaseEstimator, X: Any, *, reset: bool) -> Any:
    """``X`` checked for ``fit`` (``reset=True``) or for later calls, as the algorithms take it."""
    if not isinstance(X, fl.Matrix):
        return validate_data(estimator, X, reset=reset, accept_sparse="csr", dtype=np.float64)
    n_features = X.shape[1]
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return X


class SparseInput:
    """Mixin of the estimators: they take scipy sparse ``X`` (scikit-learn's ``sparse`` tag)."""

    def __sklearn_tags__(self) -> Tags:
        """The tags of the estimator, with sparse input accepted."""
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.sparse = True
        return tags


def features_and_target(
    estimator: BaseEstimator, X: Any, y: Any, *, y_numeric: bool
) -> tuple[Any, Any]:
    """``X`` and ``y`` checked for a supervised ``fit``; ``y`` a 1-D array or a fedla column.

    ``y_numeric`` (regression) converts an object ``y`` to floats; classifiers keep labels.
    """
    if not isinstance(X, fl.Matrix) and not isinstance(y, fl.Matrix):
        return validate_data(
            estimator, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=y_numeric
        )
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        )
    X = features(estimator, X if isinstance(X, fl.Matrix) else fl.matrix(X), reset=True)
    y = y if isinstance(y, fl.Matrix) else np.asarray(y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: "
            f"[{X.shape[0]}, {y.shape[0]}]"
        )
    return X, y


def per_row(result: Any) -> Any:
    """A per-row result: a fedla matrix stays lazy, an array becomes 1-D and dense."""
    if isinstance(result, fl.Matrix):
        return result
    return np.asarray(result.toarray() if sp.issparse(result) else result).ravel()


def take_labels(labels: np.ndarray, index: Any) -> Any:
    """``labels[index - 1]`` for 1-based class indices: an array, or a lazy fedla column.

    On a fedla matrix the lookup is a sum of indicator columns, so it stays where the rows live;
    that needs numeric labels.
    """
    if not isinstance(index, fl.Matrix):
        return labels[per_row(index).astype(np.int64) - 1]
    if labels.dtype.kind not in "biuf":
        raise TypeError(
            f"Predicting on a fedla Matrix needs numeric class labels; the model was fit with "
            f"labels of dtype {labels.dtype}. Fit with numeric labels, or predict on an array."
        )
    if np.array_equal(labels, np.arange(1, labels.size + 1)):
        return index
    return sum((index == c + 1) * float(label) for c, label in enumerate(labels))
