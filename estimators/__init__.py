"""scikit-learn estimators over fedla's algorithms: ``fit``/``predict``/``transform``/``score``.

``LinearRegression`` (``lm``), ``LinearSVC`` (``l2svm``), ``LogisticRegression``
(``mlogreg``), ``KMeans`` (``kmeans``) and ``PCA`` (``pca``) follow scikit-learn's estimator
contract (``get_params``/``set_params``, fitted attributes with a trailing underscore, checks of
the input), so they work in ``Pipeline`` and ``GridSearchCV``. They take numpy arrays, scipy
sparse matrices and fedla matrices, local or federated: on a federated ``X`` the algorithm runs
where the data lives and per-row results (``predict``, ``transform``) come back as lazy
matrices living there.

This package needs scikit-learn; ``fedla`` itself does not, and never imports it.
"""

from fedla.estimators.kmeans import KMeans
from fedla.estimators.linear_regression import LinearRegression
from fedla.estimators.linear_svc import LinearSVC
from fedla.estimators.logistic_regression import LogisticRegression
from fedla.estimators.pca import PCA

__all__ = ["PCA", "KMeans", "LinearRegression", "LinearSVC", "LogisticRegression"]
