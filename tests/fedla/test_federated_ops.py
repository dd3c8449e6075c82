"""Every matrix operation on federated matrices, against numpy, on both executors.

The sites are real worker processes (gRPC) or in-process request handlers running the same worker
code; both must give identical results. Each case scatters the same data over a partitioning
(ROW or COL; 1, 2 or 3 workers; even, uneven, with a 1-row/1-column block, or with more blocks
than workers) as dense float64 or as a ~10%-dense ``csr_array``, and every operation is compared
with numpy on the dense equivalent: value, shape and dtype, and the dtype the lazy plan announced
before computing.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import fedla as fl
from fedla import Partitioning
from tests.conftest import assert_matches

N, M = 17, 12  # rows and columns of the scattered data
SEED = 20240611


# --- data and local operands -----------------------------------------------------------------


def _rng(*salt: int) -> np.random.Generator:
    return np.random.default_rng([SEED, *salt])


A_DENSE = _rng(0).standard_normal((N, M))
A_SPARSE = sp.random_array((N, M), density=0.1, format="csr", rng=_rng(1))
B = _rng(2).standard_normal((N, M))  # a second full matrix, local or federated
ROW_VEC = _rng(3).uniform(0.5, 2.0, size=(1, M))  # nonzero, so it can divide
COL_VEC = _rng(4).uniform(0.5, 2.0, size=(N, 1))
W = _rng(5).standard_normal((M, 3))  # X @ W
W_LEFT = _rng(6).standard_normal((4, N))  # W_LEFT @ X
V = _rng(7).standard_normal((M, 1))  # X.T @ (X @ V)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


# numpy under fedla's function names, so one lambda describes an op for both
NP = types.SimpleNamespace(
    exp=np.exp, log=np.log, sqrt=np.sqrt, abs=np.abs, sign=np.sign, round=np.round,
    sigmoid=_sigmoid, maximum=np.maximum, minimum=np.minimum, where=np.where,
    hstack=np.hstack, vstack=np.vstack,
)


# --- partitionings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How a case scatters its data: axis, number of workers, and ``parts`` or ``sizes``."""

    axis: int
    workers: int
    parts: int | None = None
    sizes: tuple[int, ...] | None = None


LAYOUTS = {
    "row-1w": Layout(0, 1),
    "row-2w-uneven": Layout(0, 2, sizes=(12, 5)),
    "row-3w": Layout(0, 3),
    "row-3w-1row": Layout(0, 3, sizes=(8, 1, 8)),
    "row-5parts-3w": Layout(0, 3, parts=5),
    "col-1w": Layout(1, 1),
    "col-2w-uneven": Layout(1, 2, sizes=(3, 9)),
    "col-3w": Layout(1, 3),
    "col-3w-1col": Layout(1, 3, sizes=(5, 1, 6)),
    "col-5parts-3w": Layout(1, 3, parts=5),
}


@pytest.fixture(scope="module", params=["grpc", "in-process"])
def contexts(request: pytest.FixtureRequest, workers: list[str]) -> Iterator[dict[int, fl.Context]]:
    """One tenant over 1, 2 and 3 sites, shared by this module's cases: the first session
    workers (gRPC), or in-process sites."""
    if request.param == "grpc":
        opened = {n: fl.Context(workers=workers[:n]) for n in (1, 2, 3)}
    else:
        opened = {n: fl.Context(local_workers=n, executor="in-process") for n in (1, 2, 3)}
    yield opened
    for context in opened.values():
        context.close()


@dataclass
class Case:
    """Federated operands of one partitioning and their numpy references.

    ``X`` holds ``A`` (dense or sparse), ``Y`` holds ``B`` in exactly ``X``'s layout (aligned)
    and ``Z`` holds ``B`` split along the other axis (not aligned with ``X``).
    """

    ctx: fl.Context
    layout: Layout
    X: fl.Matrix
    Y: fl.Matrix
    Z: fl.Matrix
    A: np.ndarray

    def scatter(self, data: Any) -> fl.Matrix:
        """Scatter ``data`` exactly like ``X`` (so the result is aligned with it)."""
        lay = self.layout
        return self.ctx.scatter(data, axis=lay.axis, parts=lay.parts, sizes=lay.sizes)


@pytest.fixture(scope="module", params=["dense", "sparse"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module", params=list(LAYOUTS), ids=list(LAYOUTS))
def case(request: pytest.FixtureRequest, contexts: dict[int, fl.Context], kind: str) -> Case:
    lay = LAYOUTS[request.param]
    ctx = contexts[lay.workers]
    data = A_DENSE if kind == "dense" else A_SPARSE
    X = ctx.scatter(data, axis=lay.axis, parts=lay.parts, sizes=lay.sizes)
    Y = ctx.scatter(B, axis=lay.axis, parts=lay.parts, sizes=lay.sizes)
    Z = ctx.scatter(B, axis=1 - lay.axis)
    A = data.toarray() if sp.issparse(data) else data
    return Case(ctx, lay, X, Y, Z, A)


def check(result: fl.Matrix, expected: Any, rtol: float = 1e-10, atol: float = 1e-12) -> Any:
    """Compute ``result``; compare value, shape and dtype with ``expected`` and the plan's dtype."""
    value = result.compute()
    expected = np.asarray(expected)
    assert_matches(value, expected, rtol=rtol, atol=atol)
    assert value.dtype == expected.dtype, (value.dtype, expected.dtype)
    assert result.dtype == expected.dtype, ("announced", result.dtype, expected.dtype)
    assert result.shape == expected.shape
    return value


def reference(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a numpy reference quietly (0/0, log(0) and friends are part of some cases)."""
    with np.errstate(all="ignore"):
        return fn(*args)


def test_case_layout_is_what_was_asked(case: Case) -> None:
    X, lay = case.X, case.layout
    assert X.shape == (N, M)
    assert X.partitioning is (Partitioning.ROW if lay.axis == 0 else Partitioning.COL)
    blocks = X.node.layout.blocks
    spans = [b.rows if lay.axis == 0 else b.cols for b in blocks]
    sizes = [hi - lo for lo, hi in spans]
    assert sum(sizes) == (N, M)[lay.axis]
    if lay.sizes:
        assert tuple(sizes) == lay.sizes
    expected_blocks = lay.parts or (len(lay.sizes) if lay.sizes else lay.workers)
    assert len(blocks) == expected_blocks
    assert len({b.site for b in blocks}) == min(len(blocks), lay.workers)
    check(X, case.A)


# --- elementwise -----------------------------------------------------------------------------

# op(m, X, Y, Z): m is ``fl`` or ``NP``; X, Y, Z are the case's matrices (or A, B, B)
ELEMENTWISE: dict[str, Callable[..., Any]] = {
    # with scalars, on either side
    "add-scalar": lambda m, X, Y, Z: X + 1.5,
    "radd-scalar": lambda m, X, Y, Z: 1.5 + X,
    "sub-scalar": lambda m, X, Y, Z: X - 0.25,
    "rsub-scalar": lambda m, X, Y, Z: 2 - X,
    "mul-scalar": lambda m, X, Y, Z: X * 3,
    "rmul-scalar": lambda m, X, Y, Z: -0.5 * X,
    "div-scalar": lambda m, X, Y, Z: X / 4,
    "rdiv-scalar": lambda m, X, Y, Z: 2 / X,
    "pow-scalar": lambda m, X, Y, Z: X**2,
    "rpow-scalar": lambda m, X, Y, Z: 2.0**X,
    "mod-scalar": lambda m, X, Y, Z: X % 0.7,
    "rmod-scalar": lambda m, X, Y, Z: 5.0 % X,
    "floordiv-scalar": lambda m, X, Y, Z: X // 0.3,
    "rfloordiv-scalar": lambda m, X, Y, Z: 1.0 // X,
    "gt-scalar": lambda m, X, Y, Z: X > 0.2,
    "le-scalar": lambda m, X, Y, Z: X <= 0,
    "eq-scalar": lambda m, X, Y, Z: X == 0,
    "ne-scalar": lambda m, X, Y, Z: X != 0,
    "reflected-lt-scalar": lambda m, X, Y, Z: 0.5 < X,
    # with a (1, n) row and an (n, 1) column vector
    "add-row": lambda m, X, Y, Z: X + ROW_VEC,
    "rsub-row": lambda m, X, Y, Z: ROW_VEC - X,
    "div-row": lambda m, X, Y, Z: X / ROW_VEC,
    "ge-row": lambda m, X, Y, Z: X >= ROW_VEC - 1.5,
    "sub-col": lambda m, X, Y, Z: X - COL_VEC,
    "rmul-col": lambda m, X, Y, Z: COL_VEC * X,
    "div-col": lambda m, X, Y, Z: X / COL_VEC,
    # with a full local matrix, on either side
    "add-local": lambda m, X, Y, Z: X + B,
    "rsub-local": lambda m, X, Y, Z: B - X,
    "mul-local": lambda m, X, Y, Z: X * B,
    "lt-local": lambda m, X, Y, Z: X < B,
    # with aligned federated matrices
    "mul-self": lambda m, X, Y, Z: X * X,
    "sub-aligned": lambda m, X, Y, Z: X - Y,
    "center-columns": lambda m, X, Y, Z: X - X.mean(axis=0),
    "add-double-transpose": lambda m, X, Y, Z: X + X.T.T,
    # with a federated matrix split the other way (not aligned: it is gathered)
    "add-crosswise": lambda m, X, Y, Z: X + Z,
    "rsub-crosswise": lambda m, X, Y, Z: Z - X,
    # unary
    "neg": lambda m, X, Y, Z: -X,
    "builtin-abs": lambda m, X, Y, Z: abs(X),
    "exp": lambda m, X, Y, Z: m.exp(X),
    "log": lambda m, X, Y, Z: m.log(m.abs(X) + 1),
    "log-of-zero": lambda m, X, Y, Z: m.log(X * X),
    "sqrt": lambda m, X, Y, Z: m.sqrt(m.abs(X)),
    "abs": lambda m, X, Y, Z: m.abs(X),
    "sign": lambda m, X, Y, Z: m.sign(X),
    "round": lambda m, X, Y, Z: m.round(X * 3),
    "sigmoid": lambda m, X, Y, Z: m.sigmoid(X),
    # maximum, minimum, where
    "maximum-scalar": lambda m, X, Y, Z: m.maximum(X, 0),
    "minimum-scalar": lambda m, X, Y, Z: m.minimum(0.1, X),
    "maximum-row": lambda m, X, Y, Z: m.maximum(X, ROW_VEC - 1),
    "minimum-col": lambda m, X, Y, Z: m.minimum(COL_VEC - 1, X),
    "maximum-aligned": lambda m, X, Y, Z: m.maximum(X, Y),
    "minimum-local": lambda m, X, Y, Z: m.minimum(X, B),
    "where-scalars": lambda m, X, Y, Z: m.where(X > 0, 1.0, -1.0),
    "where-relu": lambda m, X, Y, Z: m.where(X > 0, X, 0),
    "where-local-cond": lambda m, X, Y, Z: m.where(B > 0, X, -X),
    "where-col-cond": lambda m, X, Y, Z: m.where(COL_VEC > 1, X, Y),
    "where-crosswise": lambda m, X, Y, Z: m.where(X > 0, Z, X),
    # chains
    "standardize": lambda m, X, Y, Z: (X - X.mean(axis=0)) / m.sqrt(X.var(axis=0, ddof=1)),
    "affine-chain": lambda m, X, Y, Z: m.sigmoid(X * 2 + 1) - 0.5,
}


@pytest.mark.parametrize("op", ELEMENTWISE.values(), ids=list(ELEMENTWISE))
def test_elementwise(case: Case, op: Callable[..., Any]) -> None:
    result = op(fl, case.X, case.Y, case.Z)
    expected = reference(op, NP, case.A, B, B)
    check(result, expected)


def test_elementwise_with_reductions_of_federated(case: Case) -> None:
    """Row and column statistics of X and Y, federated or gathered, broadcast back over X."""
    X, Y, A = case.X, case.Y, case.A
    check(X - X.mean(axis=1), A - A.mean(axis=1, keepdims=True))
    check(X / fl.abs(Y).sum(axis=1), A / np.abs(B).sum(axis=1, keepdims=True))
    check(X.max(axis=0) - X, A.max(axis=0, keepdims=True) - A)
    check(X * Y.min(axis=1) + Y.sum(axis=0),
          A * B.min(axis=1, keepdims=True) + B.sum(axis=0, keepdims=True))


def test_outer_products_of_federated_vectors(case: Case) -> None:
    """A federated (n, 1) or (1, m) statistic broadcast against a local vector the other way."""
    X, A = case.X, case.A
    row_sums, col_sums = A.sum(axis=1, keepdims=True), A.sum(axis=0, keepdims=True)
    check(X.sum(axis=1) * ROW_VEC, row_sums * ROW_VEC)
    check(COL_VEC - X.sum(axis=0), COL_VEC - col_sums)
    check(fl.where(X.max(axis=1) > 0, ROW_VEC, 0.0),
          np.where(A.max(axis=1, keepdims=True) > 0, ROW_VEC, 0.0))


def test_sparse_and_wrapped_local_operands(case: Case) -> None:
    X, A = case.X, case.A
    local = sp.random_array((N, M), density=0.3, format="csr", rng=_rng(10))
    dense = local.toarray()
    check(X * local, A * dense)
    check(X + local, A + dense)
    check(X @ sp.csr_array(W), A @ W)
    check(sp.csr_array(W_LEFT) @ X, W_LEFT @ A)
    check(X - fl.matrix(B), A - B)
    check(fl.matrix(W_LEFT) @ X, W_LEFT @ A)
    check(fl.hstack([fl.matrix(B), X]), np.hstack([B, A]))


def test_transposed_then_cut(case: Case) -> None:
    X, A = case.X, case.A
    check(X.T[2:5, :], A.T[2:5, :])
    check(X.T[:, 3], A.T[:, 3:4])
    check(X.T[1:11, 4:16] @ COL_VEC[4:16], A.T[1:11, 4:16] @ COL_VEC[4:16])
    check(fl.vstack([X, X]).T @ np.ones((2 * N, 1)), np.vstack([A, A]).T @ np.ones((2 * N, 1)))


def test_elementwise_result_stays_federated(case: Case) -> None:
    X = case.X
    for result in (X * 2, X + ROW_VEC, X - COL_VEC, X * case.Y, fl.exp(X), X - X.mean(axis=0)):
        assert result.partitioning is X.partitioning


def test_chain_reduced_after_elementwise(case: Case) -> None:
    """``(X * 2 + 1).sum(axis=0)``: the elementwise chain runs at the sites, then reduces."""
    check((case.X * 2 + 1).sum(axis=0), (case.A * 2 + 1).sum(axis=0, keepdims=True))


# --- reductions ------------------------------------------------------------------------------

REDUCTIONS = [
    (name, axis, {})
    for name in ("sum", "mean", "min", "max", "var")
    for axis in (None, 0, 1)
] + [("var", axis, {"ddof": 1}) for axis in (None, 0, 1)] + [
    (name, axis, {}) for name in ("argmax", "argmin") for axis in (0, 1)
]
REDUCTION_IDS = [
    f"{name}-axis{axis}" + ("-ddof1" if kwargs else "") for name, axis, kwargs in REDUCTIONS
]


@pytest.mark.parametrize(("name", "axis", "kwargs"), REDUCTIONS, ids=REDUCTION_IDS)
def test_reduction(case: Case, name: str, axis: int | None, kwargs: dict[str, Any]) -> None:
    result = getattr(case.X, name)(axis=axis, **kwargs)
    expected = getattr(np, name)(case.A, axis=axis, keepdims=axis is not None, **kwargs)
    value = check(result, expected, rtol=1e-12 if name in ("mean", "var") else 1e-10)
    if axis is None:
        assert np.ndim(value) == 0


@pytest.mark.parametrize("axis", [0, 1], ids=["axis0", "axis1"])
def test_reduction_along_the_kept_axis_stays_federated(case: Case, axis: int) -> None:
    """A row-partitioned matrix summed over each row keeps its row blocks (and COL/axis 0)."""
    result = case.X.sum(axis=axis)
    keeps = axis == (1 if case.layout.axis == 0 else 0)
    assert result.partitioning is (case.X.partitioning if keeps else Partitioning.LOCAL)
    check(result * 2, case.A.sum(axis=axis, keepdims=True) * 2)


def test_scalar_results(case: Case) -> None:
    X, A = case.X, case.A
    assert float(X.sum()) == pytest.approx(A.sum(), rel=1e-12)
    assert int((X > 0).sum()) == int((A > 0).sum())
    check(X.sum() / X.mean() - 1, A.sum() / A.mean() - 1, rtol=1e-8)  # scalar arithmetic
    check(fl.sqrt(X.var()) * 2, np.sqrt(A.var()) * 2)


def test_nnz_and_shape(case: Case) -> None:
    X, A = case.X, case.A
    assert X.shape == A.shape and X.ndim == 2
    assert X.nnz == np.count_nonzero(A)
    assert (X * 2).nnz == np.count_nonzero(A)
    assert (X > 0).nnz == np.count_nonzero(A > 0)
    assert X.sum().shape == () and X.sum(axis=0).shape == (1, M) and X.sum(axis=1).shape == (N, 1)


# --- matrix products -------------------------------------------------------------------------

MATMUL: dict[str, Callable[..., Any]] = {
    "X@W": lambda X, Y, Z: X @ W,
    "W@X": lambda X, Y, Z: W_LEFT @ X,
    "XT@X": lambda X, Y, Z: X.T @ X,
    "XT@(X@v)": lambda X, Y, Z: X.T @ (X @ V),
    "XT@Y-aligned": lambda X, Y, Z: X.T @ Y,
    "X@XT": lambda X, Y, Z: X @ X.T,
    "XT@Z-not-aligned": lambda X, Y, Z: X.T @ Z,
    "X@ZT-not-aligned": lambda X, Y, Z: X @ Z.T,
    "transpose": lambda X, Y, Z: X.T,
    "(X@W)-federated-chain": lambda X, Y, Z: (X @ W) * 2 - 1,
    "XT@X+1": lambda X, Y, Z: X.T @ X + 1,
    "gram-of-centered": lambda X, Y, Z: (X - X.mean(axis=0)).T @ (X - X.mean(axis=0)),
    "XT@(X@W)-W-chain": lambda X, Y, Z: W.T @ (X.T @ (X @ W)),
}


@pytest.mark.parametrize("op", MATMUL.values(), ids=list(MATMUL))
def test_matmul(case: Case, op: Callable[..., Any]) -> None:
    check(op(case.X, case.Y, case.Z), op(case.A, B, B), rtol=1e-10, atol=1e-10)


def test_matmul_results_keep_computing(case: Case) -> None:
    """Products that stay federated (or not) feed reductions, then ``compute``."""
    X, A = case.X, case.A
    check((X @ W).sum(axis=0), (A @ W).sum(axis=0, keepdims=True), atol=1e-10)
    check((W_LEFT @ X).max(axis=1), (W_LEFT @ A).max(axis=1, keepdims=True), atol=1e-10)
    check((X.T @ X).sum(axis=1), (A.T @ A).sum(axis=1, keepdims=True), atol=1e-10)
    check((X @ W).argmax(axis=1), (A @ W).argmax(axis=1, keepdims=True))


def test_gathered_results_keep_computing(case: Case) -> None:
    """Operations on results that came back to the coordinator run there, on any operation."""
    X, A = case.X, case.A
    G, s0, m0 = A.T @ A, A.sum(axis=0, keepdims=True), A.max(axis=0, keepdims=True)
    check((X.T @ X)[1:3, :], G[1:3, :], atol=1e-10)
    check((X.T @ X).T - (X.T @ X), G.T - G, atol=1e-10)
    check(X.sum(axis=0).T, s0.T)
    check(X.sum(axis=0) @ W, s0 @ W)
    check(fl.vstack([X.sum(axis=0), X.max(axis=0)]), np.vstack([s0, m0]))
    check(fl.hstack([X.T @ X, X.T @ COL_VEC]), np.hstack([G, A.T @ COL_VEC]), atol=1e-10)
    check(fl.where(X.sum(axis=0) > 0, X.sum(axis=0), -1.0), np.where(s0 > 0, s0, -1.0))
    check(fl.exp(X.mean()) + X.sum(axis=0).max(), np.exp(A.mean()) + s0.max())


def test_matmul_placement(case: Case) -> None:
    """Which products stay at the sites: ROW @ local by rows, local @ COL by columns."""
    X = case.X
    row = case.layout.axis == 0
    assert (X @ W).partitioning is (Partitioning.ROW if row else Partitioning.LOCAL)
    assert (W_LEFT @ X).partitioning is (Partitioning.LOCAL if row else Partitioning.COL)
    assert (X.T @ X).partitioning is Partitioning.LOCAL
    assert X.T.partitioning is (Partitioning.COL if row else Partitioning.ROW)


def test_federated_vector_aligned(case: Case) -> None:
    """``X.T @ y`` with ``y`` scattered by the same rows; ROW only (COL splits X's columns)."""
    if case.layout.axis == 1:
        y = case.ctx.scatter(COL_VEC, axis=0)
    else:
        y = case.scatter(COL_VEC)
    check(case.X.T @ y, case.A.T @ COL_VEC)
    check(case.X.T @ (y - y.mean()), case.A.T @ (COL_VEC - COL_VEC.mean()))


# --- slicing ---------------------------------------------------------------------------------

SLICES: dict[str, Callable[[Any], Any]] = {
    "block": lambda X: X[2:9, 1:4],
    "row-range": lambda X: X[3:15, :],
    "col-range": lambda X: X[:, 2:11],
    "last-rows": lambda X: X[-4:, 5:],
    "everything": lambda X: X[:, :],
    "one-entry": lambda X: X[6:7, 4:5],
    "rows-only": lambda X: X[1:16],
}
INDEXED: dict[str, tuple[Callable[[Any], Any], Callable[[np.ndarray], np.ndarray]]] = {
    "row-i": (lambda X: X[5, :], lambda A: A[5:6, :]),
    "row-i-short": (lambda X: X[5], lambda A: A[5:6, :]),
    "row-negative": (lambda X: X[-1, :], lambda A: A[-1:, :]),
    "col-j": (lambda X: X[:, 3], lambda A: A[:, 3:4]),
    "col-negative": (lambda X: X[:, -1], lambda A: A[:, -1:]),
    "entry": (lambda X: X[16, 11], lambda A: A[16:17, 11:12]),
}


@pytest.mark.parametrize("cut", SLICES.values(), ids=list(SLICES))
def test_slice(case: Case, cut: Callable[[Any], Any]) -> None:
    check(cut(case.X), cut(case.A))


@pytest.mark.parametrize(("cut", "ref"), INDEXED.values(), ids=list(INDEXED))
def test_index(case: Case, cut: Callable[[Any], Any], ref: Callable[[Any], Any]) -> None:
    check(cut(case.X), ref(case.A))


BOUNDARY_SLICES = {
    # partitions of 17 rows / 12 columns split (5, 4, 8) / (5, 4, 3): edges at 5 and 9
    "inside-first": ((1, 4), 1),
    "inside-middle": ((6, 8), 1),
    "exactly-one-part": ((5, 9), 1),
    "last-of-a-part": ((4, 5), 1),
    "first-of-a-part": ((9, 10), 1),
    "across-one-edge": ((3, 7), 2),
    "across-two-edges": ((4, 10), 3),
    "from-an-edge-on": ((5, 12), 2),
}


@pytest.mark.parametrize("kind_", ["dense", "sparse"])
@pytest.mark.parametrize("axis", [0, 1], ids=["rows", "cols"])
@pytest.mark.parametrize(("span", "parts"), BOUNDARY_SLICES.values(), ids=list(BOUNDARY_SLICES))
def test_slices_against_partition_boundaries(
    contexts: dict[int, fl.Context], kind_: str, axis: int, span: tuple[int, int], parts: int
) -> None:
    """Slices inside one partition keep one block; slices across edges keep a piece of each."""
    data = A_DENSE if kind_ == "dense" else A_SPARSE
    A = A_DENSE if kind_ == "dense" else A_SPARSE.toarray()
    sizes = (5, 4, 8) if axis == 0 else (5, 4, 3)
    X = contexts[3].scatter(data, axis=axis, sizes=sizes)
    lo, hi = span
    index = (slice(lo, hi), slice(1, 11)) if axis == 0 else (slice(2, 15), slice(lo, hi))
    cut, cut_ref = X[index], A[index]
    assert cut.partitioning is X.partitioning
    check(cut, cut_ref)
    check(cut.sum(axis=axis), cut_ref.sum(axis=axis, keepdims=True))
    check(cut.T @ cut, cut_ref.T @ cut_ref)
    # the number of blocks the slice touches shows in the requests of one EXEC per block
    before = contexts[3].stats()
    (cut * 2).compute()
    after = contexts[3].stats()
    touched = sum(after[a]["requests"] - before[a]["requests"] > 0 for a in after)
    assert touched == parts


def test_slice_then_compute_at_sites(case: Case) -> None:
    X, A = case.X, case.A
    check(X[3:15, 1:10].sum(axis=0), A[3:15, 1:10].sum(axis=0, keepdims=True))
    check(X[3:15].T @ X[3:15], A[3:15].T @ A[3:15])
    check(X[:, 0:3] @ W[:3], A[:, 0:3] @ W[:3])
    check(X[2:9, 1:4] * B[2:9, 1:4] + X[5, 1:4], A[2:9, 1:4] * B[2:9, 1:4] + A[5:6, 1:4])
    check(X[5, :] + B, A[5:6, :] + B)  # a 1-row federated slice broadcast over a local matrix
    check(X[:, 3] + B, A[:, 3:4] + B)


# --- stacking --------------------------------------------------------------------------------

STACKS: dict[str, Callable[..., Any]] = {
    "hstack-self": lambda m, X, Y, Z: m.hstack([X, X]),
    "hstack-aligned": lambda m, X, Y, Z: m.hstack([X, Y]),
    "hstack-local": lambda m, X, Y, Z: m.hstack([X, COL_VEC, B[:, :2]]),
    "hstack-local-first": lambda m, X, Y, Z: m.hstack([COL_VEC, X]),
    "hstack-crosswise": lambda m, X, Y, Z: m.hstack([X, Z]),
    "vstack-self": lambda m, X, Y, Z: m.vstack([X, X]),
    "vstack-aligned": lambda m, X, Y, Z: m.vstack([X, Y]),
    "vstack-local": lambda m, X, Y, Z: m.vstack([X, ROW_VEC]),
    "vstack-local-first": lambda m, X, Y, Z: m.vstack([B[:3], X]),
    "vstack-crosswise": lambda m, X, Y, Z: m.vstack([Z, X]),
}


@pytest.mark.parametrize("op", STACKS.values(), ids=list(STACKS))
def test_stack(case: Case, op: Callable[..., Any]) -> None:
    stacked = op(fl, case.X, case.Y, case.Z)
    expected = op(NP, case.A, B, B)
    check(stacked, expected)
    # and keep computing on the stacked matrix
    check(stacked.sum(axis=0), expected.sum(axis=0, keepdims=True))
    check(stacked.T @ stacked, expected.T @ expected)
    check(stacked * 2 - expected, expected)


def test_stack_placement(case: Case) -> None:
    """Blocks bind in place along the partitioned axis and simply follow each other across it."""
    X = case.X
    if case.layout.axis == 0:
        assert fl.hstack([X, X]).partitioning is Partitioning.ROW
        assert fl.hstack([X, COL_VEC]).partitioning is Partitioning.ROW
        assert fl.vstack([X, X]).partitioning is Partitioning.ROW
    else:
        assert fl.vstack([X, X]).partitioning is Partitioning.COL
        assert fl.vstack([X, ROW_VEC]).partitioning is Partitioning.COL
        assert fl.hstack([X, X]).partitioning is Partitioning.COL


# --- other dtypes ----------------------------------------------------------------------------

INT_A = _rng(8).integers(-5, 6, size=(N, M)).astype(np.int64)
BOOL_A = _rng(9).random((N, M)) < 0.4

INT_OPS: dict[str, Callable[..., Any]] = {
    "add": lambda m, X: X + 3,
    "rsub": lambda m, X: 1 - X,
    "mul-row": lambda m, X: X * np.arange(M).reshape(1, M),
    "floordiv": lambda m, X: X // 2,
    "mod": lambda m, X: X % 3,
    "pow": lambda m, X: X**2,
    "div-is-float": lambda m, X: X / 2,
    "cmp": lambda m, X: X >= 1,
    "neg-abs": lambda m, X: -m.abs(X),
    "sign": lambda m, X: m.sign(X),
    "maximum": lambda m, X: m.maximum(X, 0),
    "where": lambda m, X: m.where(X > 0, X, 0),
    "exp-is-float": lambda m, X: m.exp(X),
    "gram": lambda m, X: X.T @ X,
    "matmul-int": lambda m, X: X @ np.arange(2 * M).reshape(M, 2),
    "slice": lambda m, X: X[3:10, 2:5],
    "hstack": lambda m, X: m.hstack([X, X]),
}
BOOL_OPS: dict[str, Callable[..., Any]] = {
    "and-via-mul": lambda m, X: X * X,
    "eq": lambda m, X: X == True,  # noqa: E712 - elementwise comparison
    "add-int": lambda m, X: X + 1,
    "where": lambda m, X: m.where(X, 2.5, -1.0),
    "slice": lambda m, X: X[3:10, 2:5],
}
INT_REDUCTIONS = [("sum", None), ("sum", 0), ("max", 1), ("min", None), ("mean", 0),
                  ("var", 1), ("argmax", 0), ("argmin", 1)]
BOOL_REDUCTIONS = [("sum", None), ("sum", 1), ("max", 0), ("mean", None), ("argmax", 1)]
INT_LAYOUTS = {
    "row-3w-1row": Layout(0, 3, sizes=(8, 1, 8)),
    "col-2w-uneven": Layout(1, 2, sizes=(3, 9)),
}


@pytest.fixture(scope="module", params=list(INT_LAYOUTS), ids=list(INT_LAYOUTS))
def int_case(request: pytest.FixtureRequest, contexts: dict[int, fl.Context]) -> tuple[Any, ...]:
    lay = INT_LAYOUTS[request.param]
    ctx = contexts[lay.workers]
    scatter = dict(axis=lay.axis, sizes=lay.sizes)
    return ctx.scatter(INT_A, **scatter), ctx.scatter(BOOL_A, **scatter)


@pytest.mark.parametrize("op", INT_OPS.values(), ids=list(INT_OPS))
def test_int64(int_case: tuple[Any, ...], op: Callable[..., Any]) -> None:
    X, _ = int_case
    assert X.dtype == np.int64
    check(op(fl, X), reference(op, NP, INT_A))


@pytest.mark.parametrize("op", BOOL_OPS.values(), ids=list(BOOL_OPS))
def test_bool(int_case: tuple[Any, ...], op: Callable[..., Any]) -> None:
    _, X = int_case
    assert X.dtype == np.bool_
    check(op(fl, X), reference(op, NP, BOOL_A))


@pytest.mark.parametrize(("name", "axis"), INT_REDUCTIONS,
                         ids=[f"{n}-axis{a}" for n, a in INT_REDUCTIONS])
def test_int64_reduction(int_case: tuple[Any, ...], name: str, axis: int | None) -> None:
    X, _ = int_case
    expected = getattr(np, name)(INT_A, axis=axis, keepdims=axis is not None)
    check(getattr(X, name)(axis=axis), expected, rtol=1e-12)


@pytest.mark.parametrize(("name", "axis"), BOOL_REDUCTIONS,
                         ids=[f"{n}-axis{a}" for n, a in BOOL_REDUCTIONS])
def test_bool_reduction(int_case: tuple[Any, ...], name: str, axis: int | None) -> None:
    _, X = int_case
    expected = getattr(np, name)(BOOL_A, axis=axis, keepdims=axis is not None)
    check(getattr(X, name)(axis=axis), expected, rtol=1e-12)
