"""The estimators against scikit-learn's own models with the same objective, on numpy, sparse,
local and federated input, and inside ``Pipeline`` and ``GridSearchCV``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import cluster, decomposition, linear_model, svm
from sklearn.datasets import load_breast_cancer, load_iris, make_blobs, make_regression
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fedla as fl
from fedla.estimators import PCA, KMeans, LinearRegression, LinearSVC, LogisticRegression

X_REG, Y_REG = make_regression(n_samples=120, n_features=5, noise=0.5, random_state=0)
X_CANCER, Y_CANCER = load_breast_cancer(return_X_y=True)
X_CANCER = StandardScaler().fit_transform(X_CANCER)
X_IRIS, Y_IRIS = load_iris(return_X_y=True)


def _scatter(ctx: fl.Context, A: np.ndarray) -> fl.Matrix:
    n = A.shape[0]
    return ctx.scatter(A.reshape(n, -1), sizes=[n // 2, n // 5, n - n // 2 - n // 5])


INPUTS = ["numpy", "sparse", "local"]


def _as(kind: str, A: np.ndarray) -> object:
    return {"numpy": A, "sparse": sp.csr_array(A), "local": fl.matrix(A)}[kind]


@pytest.mark.parametrize("kind", INPUTS)
def test_linear_regression_is_ridge(kind: str) -> None:
    reference = linear_model.Ridge(alpha=0.5).fit(X_REG, Y_REG)
    model = LinearRegression(reg=0.5).fit(_as(kind, X_REG), Y_REG)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-8)
    assert model.intercept_ == pytest.approx(reference.intercept_, rel=1e-8)
    predicted = model.predict(_as(kind, X_REG))
    predicted = predicted.compute().ravel() if kind == "local" else predicted
    np.testing.assert_allclose(predicted, reference.predict(X_REG), rtol=1e-8)
    assert model.score(X_REG, Y_REG) == pytest.approx(reference.score(X_REG, Y_REG), rel=1e-10)


def test_linear_svc_is_liblinears_squared_hinge_svm() -> None:
    # l2svm: 1/2 sum xi^2 + reg/2 ||w||^2 (bias regularized) = liblinear's objective, C = 1/(2 reg)
    reg = 1.0
    reference = svm.LinearSVC(C=1 / (2 * reg), loss="squared_hinge", dual=True, tol=1e-10,
                              max_iter=100_000).fit(X_CANCER, Y_CANCER)
    model = LinearSVC(reg=reg, tol=1e-9, max_iter=1000).fit(X_CANCER, Y_CANCER)
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=2e-3)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, atol=2e-3)
    np.testing.assert_array_equal(model.predict(X_CANCER), reference.predict(X_CANCER))


def test_logistic_regression_matches_the_unregularized_likelihood_optimum() -> None:
    # without regularization the fitted probabilities do not depend on the parametrization
    X = StandardScaler().fit_transform(X_IRIS)[:, :2]  # two features: classes overlap
    reference = linear_model.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, Y_IRIS)
    model = LogisticRegression(reg=0.0, tol=1e-12, max_iter=200).fit(X, Y_IRIS + 10)
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X) + 10)
    np.testing.assert_array_equal(model.classes_, [10, 11, 12])


def test_kmeans_finds_sklearns_clusters() -> None:
    X, _ = make_blobs(n_samples=300, centers=4, cluster_std=0.6, random_state=1)
    reference = cluster.KMeans(n_clusters=4, n_init=10, random_state=0).fit(X)
    model = KMeans(n_clusters=4, random_state=0).fit(X)
    assert adjusted_rand_score(model.labels_, reference.labels_) == 1.0
    assert model.inertia_ == pytest.approx(reference.inertia_, rel=1e-9)
    assert model.score(X) == pytest.approx(reference.score(X), rel=1e-9)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    order = np.argsort(model.transform(X[:1]).ravel())
    np.testing.assert_allclose(model.transform(X), reference.transform(X)[:, np.argsort(
        reference.transform(X[:1]).ravel())][:, np.argsort(order)], rtol=1e-9)


def test_pca_without_scaling_is_sklearns_pca() -> None:
    reference = decomposition.PCA(n_components=2).fit(X_IRIS)
    model = PCA(n_components=2, scale=False).fit(X_IRIS)
    signs = np.sign(np.sum(model.components_ * reference.components_, axis=1))
    np.testing.assert_allclose(model.components_ * signs[:, None], reference.components_,
                               atol=1e-10)
    np.testing.assert_allclose(model.explained_variance_, reference.explained_variance_,
                               rtol=1e-10)
    np.testing.assert_allclose(model.transform(X_IRIS) * signs, reference.transform(X_IRIS),
                               atol=1e-10)
    np.testing.assert_allclose(model.fit_transform(X_IRIS) * signs,
                               reference.transform(X_IRIS), atol=1e-10)


def test_pca_with_scaling_is_sklearns_pca_of_standardized_columns() -> None:
    X = X_IRIS * [1.0, 10.0, 100.0, 1000.0]
    standardized = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    reference = decomposition.PCA(n_components=3).fit(standardized)
    model = PCA(n_components=3).fit(X)
    np.testing.assert_allclose(np.abs(model.transform(X)), np.abs(reference.transform(
        standardized)), atol=1e-9)


def test_pipeline_and_grid_search_pick_the_best_ridge_penalty() -> None:
    pipeline = make_pipeline(StandardScaler(), LinearRegression())
    search = GridSearchCV(pipeline, {"linearregression__reg": [1e-3, 10.0, 1000.0]}, cv=3)
    search.fit(X_REG, Y_REG)
    reference = GridSearchCV(make_pipeline(StandardScaler(), linear_model.Ridge()),
                             {"ridge__alpha": [1e-3, 10.0, 1000.0]}, cv=3).fit(X_REG, Y_REG)
    assert search.best_params_["linearregression__reg"] == reference.best_params_["ridge__alpha"]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               reference.cv_results_["mean_test_score"], rtol=1e-8)


def test_pipeline_of_pca_and_logistic_regression_classifies_iris() -> None:
    pipeline = make_pipeline(PCA(n_components=2), LogisticRegression())
    search = GridSearchCV(pipeline, {"logisticregression__reg": [0.01, 1.0]}, cv=3)
    search.fit(X_IRIS, Y_IRIS)
    assert search.best_score_ > 0.85
    assert search.predict(X_IRIS).shape == (150,)


def test_linear_svc_refuses_more_than_two_classes() -> None:
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        LinearSVC().fit(X_IRIS, Y_IRIS)


def test_estimators_on_federated_input_keep_per_row_results_at_the_sites(
    ctx: fl.Context,
) -> None:
    X, y = _scatter(ctx, X_REG), _scatter(ctx, Y_REG)
    reference = linear_model.Ridge(alpha=0.5).fit(X_REG, Y_REG)
    model = LinearRegression(reg=0.5).fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-8)
    predicted = model.predict(X)
    assert isinstance(predicted, fl.Matrix) and predicted.partitioning == fl.Partitioning.ROW
    np.testing.assert_allclose(predicted.compute().ravel(), reference.predict(X_REG), rtol=1e-8)

    X_blobs, _ = make_blobs(n_samples=300, centers=3, cluster_std=0.5, random_state=2)
    clusters = KMeans(n_clusters=3, random_state=0).fit(_scatter(ctx, X_blobs))
    assert isinstance(clusters.labels_, fl.Matrix)
    sk_labels = cluster.KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(X_blobs)
    assert adjusted_rand_score(clusters.labels_.compute().ravel(), sk_labels) == 1.0

    classifier = LogisticRegression().fit(_scatter(ctx, X_IRIS), _scatter(ctx, Y_IRIS + 1.0))
    np.testing.assert_array_equal(classifier.classes_, [1, 2, 3])
    labels = classifier.predict(_scatter(ctx, X_IRIS)).compute().ravel()
    reference_labels = LogisticRegression().fit(X_IRIS, Y_IRIS + 1).predict(X_IRIS)
    np.testing.assert_array_equal(labels, reference_labels)
    assert np.mean(labels == Y_IRIS + 1) > 0.95


def test_predicting_on_a_matrix_with_the_wrong_width_fails() -> None:
    model = LinearRegression().fit(X_REG, Y_REG)
    with pytest.raises(ValueError, match="X has 2 features, but LinearRegression is expecting 5"):
        model.predict(fl.matrix(X_REG[:, :2]))


def test_labels_come_back_as_given_on_arrays_and_on_matrices() -> None:
    X = StandardScaler().fit_transform(X_IRIS)
    reference = linear_model.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(
        X, Y_IRIS).predict(X)
    labels = np.array([-5.0, 2.0, 7.0])
    model = LogisticRegression(reg=0.0, tol=1e-12, max_iter=200).fit(fl.matrix(X),
                                                                      list(labels[Y_IRIS]))
    lazy = model.predict(fl.matrix(X))  # numeric labels: mapped where the rows live
    np.testing.assert_array_equal(lazy.compute().ravel(), labels[reference])
    words = np.array(["setosa", "versicolor", "virginica"])
    svc = LinearSVC().fit(fl.matrix(X), np.where(Y_IRIS == 0, 3.0, 9.0))
    np.testing.assert_array_equal(np.unique(svc.predict(fl.matrix(X)).compute()), [3.0, 9.0])
    text = LogisticRegression().fit(X, words[Y_IRIS])
    assert list(text.predict(X[:1])) == ["setosa"]
    with pytest.raises(TypeError, match="needs numeric class labels.*predict on an array"):
        text.predict(fl.matrix(X))
