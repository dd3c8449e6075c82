"""``LogisticRegression``: scikit-learn's classifier interface over SystemDS's ``multiLogReg``."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

import fedla as fl
from fedla.algorithms import mlogreg, mlogreg_predict
from fedla.estimators.inputs import SparseInput, features, features_and_target, take_labels


class LogisticRegression(SparseInput, ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression by :func:`fedla.algorithms.mlogreg` (trust-region Newton).

    The last class of ``classes_`` is the baseline (its linear term is 0), as in SystemDS, so
    there are ``n_classes - 1`` coefficient vectors; for two classes the weights point towards
    ``classes_[0]``, the opposite of scikit-learn's sign.

    Parameters
    ----------
    fit_intercept : bool, default True
        Fit intercepts (not regularized).
    standardize : bool, default True
        Shift and scale the columns to mean 0, variance 1 while fitting (SystemDS's default
        ``icpt=2``; needs ``fit_intercept``). Coefficients are returned for the original columns.
    reg : float, default 1.0
        L2 regularization.
    tol : float, default 1e-6
        Stop when the gradient norm falls below ``tol`` times its initial value.
    max_iter : int, default 100
        Maximum Newton iterations.
    max_inner_iter : int, default 20
        Maximum conjugate-gradient steps per Newton iteration; 0 means ``ncol * (n_classes-1)``.
    verbose : bool, default False
        Show the objective per iteration.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels, sorted; the last is the baseline.
    coef_ : ndarray of shape (n_classes - 1, n_features)
        Weights of each non-baseline class.
    intercept_ : ndarray of shape (n_classes - 1,)
        Intercepts (zeros without ``fit_intercept``).
    n_features_in_ : int
        Number of features seen during ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.estimators import LogisticRegression
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1], [2.0], [2.1]])
    >>> LogisticRegression(reg=1e-3).fit(X, ["a", "a", "b", "b", "c", "c"]).predict(X)
    array(['a', 'a', 'b', 'b', 'c', 'c'], dtype='<U1')
    """

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "standardize": ["boolean"],
        "reg": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_inner_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self, fit_intercept: bool = True, standardize: bool = True, reg: float = 1.0,
        tol: float = 1e-6, max_iter: int = 100, max_inner_iter: int = 20, verbose: bool = False,
    ) -> None:
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.reg = reg
        self.tol = tol
        self.max_iter = max_iter
        self.max_inner_iter = max_inner_iter
        self.verbose = verbose

    def fit(self, X: Any, y: Any) -> LogisticRegression:
        """Fit the coefficients.

        Parameters
        ----------
        X : array-like, sparse matrix or fl.Matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), or fl.Matrix of shape (n_samples, 1) holding the
            integer labels ``1..n_classes``

        Returns
        -------
        self : LogisticRegression
        """
        self._validate_params()
        if self.standardize and not self.fit_intercept:
            raise ValueError(
                "The 'standardize' parameter of LogisticRegression needs fit_intercept=True. "
                "Got standardize=True, fit_intercept=False instead."
            )
        X, y = features_and_target(self, X, y, y_numeric=False)
        if isinstance(y, fl.Matrix):
            self.classes_ = np.arange(1, int(float(y.max().compute())) + 1)
            labels = y
        else:
            check_classification_targets(y)
            self.classes_, index = np.unique(y, return_inverse=True)
            if self.classes_.size < 2:
                raise ValueError(
                    "LogisticRegression needs samples of at least 2 classes in the data, but "
                    f"the data contains only one class: {self.classes_[0]!r}."
                )
            labels = index + 1
        icpt = (2 if self.standardize else 1) if self.fit_intercept else 0
        B = mlogreg(X, labels, icpt=icpt, tol=float(self.tol), reg=float(self.reg),
                    maxi=int(self.max_iter), maxii=int(self.max_inner_iter),
                    verbose=bool(self.verbose))
        m = X.shape[1]
        self.coef_ = B[:m].T.copy()
        self.intercept_ = B[m].copy() if icpt else np.zeros(B.shape[1])
        return self

    def _model(self) -> np.ndarray:
        return np.vstack([self.coef_.T, self.intercept_[None, :]])

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities in the order of ``classes_``: (n_samples, n_classes)."""
        check_is_fitted(self)
        X = features(self, X, reset=False)
        return mlogreg_predict(X, self._model())[0]

    def predict(self, X: Any) -> Any:
        """Predicted labels: an ndarray of shape (n_samples,), or a lazy fl.Matrix column."""
        check_is_fitted(self)
        X = features(self, X, reset=False)
        return take_labels(self.classes_, mlogreg_predict(X, self._model())[1])
