"""scikit-learn's own estimator checks, on numpy input, for every fedla estimator.

A check that cannot apply is listed by name with the reason; it is expected to fail (strictly:
a listed check that starts passing fails the run, so the list stays true).
"""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from fedla.estimators import PCA, KMeans, LinearRegression, LinearSVC, LogisticRegression

NO_ITERATION_COUNT = (
    "the algorithms return SystemDS's outputs, which do not include the number of iterations "
    "run, so the estimators have no n_iter_"
)

EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "LinearRegression": {"check_non_transformer_estimators_n_iter": NO_ITERATION_COUNT},
    "LinearSVC": {"check_non_transformer_estimators_n_iter": NO_ITERATION_COUNT},
    "LogisticRegression": {"check_non_transformer_estimators_n_iter": NO_ITERATION_COUNT},
    "KMeans": {"check_transformer_n_iter": NO_ITERATION_COUNT},
    "PCA": {},
}


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS[type(estimator).__name__]


@parametrize_with_checks(
    [LinearRegression(), LinearSVC(), LogisticRegression(), KMeans(), PCA()],
    expected_failed_checks=expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_compatible_estimator(estimator: BaseEstimator, check: object) -> None:
    check(estimator)  # type: ignore[operator]
