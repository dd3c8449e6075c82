"""``LinearRegression``: scikit-learn's regressor interface over SystemDS's ``lm``."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from fedla.algorithms import lm, lm_predict
from fedla.estimators.inputs import SparseInput, features, features_and_target, per_row


class LinearRegression(SparseInput, RegressorMixin, BaseEstimator):
    """Ridge-regularized least squares by :func:`fedla.algorithms.lm`.

    Takes numpy arrays, scipy sparse matrices, local or federated ``fl.Matrix``; a federated
    ``X`` (with ``y`` split into the same row blocks) stays at its sites, and ``predict`` on it
    returns a lazy column living there.

    Parameters
    ----------
    fit_intercept : bool, default True
        Fit an intercept (``lm``'s ``icpt=1``).
    standardize : bool, default False
        Shift and scale the columns to mean 0, variance 1 while solving (``icpt=2``; needs
        ``fit_intercept``). The coefficients are returned for the original columns.
    reg : float, default 1e-7
        L2 regularization ``lambda`` (SystemDS's default; the intercept is not regularized).
    tol : float, default 1e-7
        Relative residual tolerance of conjugate gradient (more than 1024 features).
    max_iter : int, default 0
        Maximum conjugate-gradient iterations; 0 means ``n_features``.
    verbose : bool, default False
        Show the fit statistics or CG progress.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept (0.0 without ``fit_intercept``).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of a DataFrame ``X``, when it had string names.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.estimators import LinearRegression
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 1.0]])
    >>> model = LinearRegression(reg=0.0).fit(X, X @ [1.0, 2.0] + 3)
    >>> np.round(model.coef_, 6), round(model.intercept_, 6)
    (array([1., 2.]), 3.0)
    """

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "standardize": ["boolean"],
        "reg": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self, fit_intercept: bool = True, standardize: bool = False, reg: float = 1e-7,
        tol: float = 1e-7, max_iter: int = 0, verbose: bool = False,
    ) -> None:
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.reg = reg
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    def fit(self, X: Any, y: Any) -> LinearRegression:
        """Fit the coefficients.

        Parameters
        ----------
        X : array-like, sparse matrix or fl.Matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or fl.Matrix of shape (n_samples, 1)

        Returns
        -------
        self : LinearRegression
        """
        self._validate_params()
        if self.standardize and not self.fit_intercept:
            raise ValueError(
                "The 'standardize' parameter of LinearRegression needs fit_intercept=True. "
                "Got standardize=True, fit_intercept=False instead."
            )
        X, y = features_and_target(self, X, y, y_numeric=True)
        icpt = (2 if self.standardize else 1) if self.fit_intercept else 0
        B = lm(X, y, icpt=icpt, reg=float(self.reg), tol=float(self.tol),
               maxi=int(self.max_iter), verbose=bool(self.verbose))
        m = X.shape[1]
        self.coef_ = B[:m, 0].copy()
        self.intercept_ = float(B[m, 0]) if icpt else 0.0
        return self

    def predict(self, X: Any) -> Any:
        """Predicted responses: an ndarray of shape (n_samples,), or a lazy fl.Matrix column."""
        check_is_fitted(self)
        X = features(self, X, reset=False)
        B = np.append(self.coef_, self.intercept_)[:, None]
        return per_row(lm_predict(X, B))
