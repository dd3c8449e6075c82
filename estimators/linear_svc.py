"""``LinearSVC``: scikit-learn's binary classifier interface over SystemDS's ``l2svm``."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

import fedla as fl
from fedla.algorithms import l2svm, l2svm_predict
from fedla.estimators.inputs import SparseInput, features, features_and_target, per_row, take_labels


class LinearSVC(SparseInput, ClassifierMixin, BaseEstimator):
    """Binary linear SVM with squared hinge loss by :func:`fedla.algorithms.l2svm`.

    Parameters
    ----------
    fit_intercept : bool, default True
        Append a constant column; its weight (the bias) is regularized like the others.
    reg : float, default 1.0
        L2 regularization.
    tol : float, default 1e-3
        ``l2svm``'s ``epsilon``: stop when a step gains less than this fraction of the objective.
    max_iter : int, default 100
        Maximum conjugate-gradient iterations (``maxi``).
    max_line_search_iter : int, default 20
        Maximum Newton steps per line search (``maxii``).
    verbose : bool, default False
        Show the objective per iteration.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.
    coef_ : ndarray of shape (1, n_features)
        Weights.
    intercept_ : ndarray of shape (1,)
        Bias (0 without ``fit_intercept``).
    n_features_in_ : int
        Number of features seen during ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.estimators import LinearSVC
    >>> X = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, -2.0], [-2.0, -1.0]])
    >>> LinearSVC().fit(X, ["yes", "yes", "no", "no"]).predict(X)
    array(['yes', 'yes', 'no', 'no'], dtype='<U3')
    """

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "reg": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_line_search_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self, fit_intercept: bool = True, reg: float = 1.0, tol: float = 1e-3,
        max_iter: int = 100, max_line_search_iter: int = 20, verbose: bool = False,
    ) -> None:
        self.fit_intercept = fit_intercept
        self.reg = reg
        self.tol = tol
        self.max_iter = max_iter
        self.max_line_search_iter = max_line_search_iter
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        """Binary only: more classes need one model per class (use ``LogisticRegression``)."""
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Any, y: Any) -> LinearSVC:
        """Fit the weights.

        Parameters
        ----------
        X : array-like, sparse matrix or fl.Matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or fl.Matrix of shape (n_samples, 1)
            Two distinct labels.

        Returns
        -------
        self : LinearSVC
        """
        self._validate_params()
        X, y = features_and_target(self, X, y, y_numeric=False)
        if isinstance(y, fl.Matrix):
            self.classes_ = np.array([float(v) for v in fl.compute(y.min(), y.max())])
        else:
            check_classification_targets(y)
            y_type = type_of_target(y, input_name="y", raise_unknown=True)
            if y_type != "binary":
                raise ValueError(
                    f"Only binary classification is supported. The type of the target is "
                    f"{y_type}. Use LogisticRegression for more classes."
                )
            self.classes_, y = np.unique(y, return_inverse=True)
            if self.classes_.size < 2:
                raise ValueError(
                    "LinearSVC needs samples of 2 classes in the data, but the data contains "
                    f"only one class: {self.classes_[0]!r}."
                )
        w = l2svm(X, y, intercept=bool(self.fit_intercept), epsilon=float(self.tol),
                  reg=float(self.reg), maxi=int(self.max_iter),
                  maxii=int(self.max_line_search_iter), verbose=bool(self.verbose))
        m = X.shape[1]
        self.coef_ = w[:m, 0][None, :].copy()
        self.intercept_ = w[m:, 0].copy() if self.fit_intercept else np.zeros(1)
        return self

    def decision_function(self, X: Any) -> Any:
        """Signed scores, positive for ``classes_[1]``: shape (n_samples,) or a lazy column."""
        check_is_fitted(self)
        X = features(self, X, reset=False)
        w = np.append(self.coef_.ravel(), self.intercept_)[:, None]
        return per_row(l2svm_predict(X, w)[0])

    def predict(self, X: Any) -> Any:
        """Predicted labels: an ndarray of shape (n_samples,), or a lazy fl.Matrix column."""
        scores = self.decision_function(X)
        if isinstance(scores, fl.Matrix):
            return take_labels(self.classes_, (scores > 0) + 1)
        return self.classes_[(scores > 0).astype(np.int64)]
