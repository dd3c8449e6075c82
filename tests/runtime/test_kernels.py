"""Per-partition kernels against numpy on the dense equivalent.

Every kernel is called through ``run_kernel`` as the worker calls it, on dense blocks, on
``csr_array`` / ``csr_matrix`` blocks and on a non-canonical CSR (unsorted indices, duplicate
entries, explicit zeros), over several dtypes and over 1-row and 1-column blocks.

The environment variable ``FEDLA_ARRAY_API`` picks the array library of the dense blocks:
``numpy`` (the default) or ``strict``, which hands every kernel call whose inputs are all dense
(or scalars) ``array_api_strict`` arrays instead, checks that the result is one too, and
compares it, converted back with ``numpy.asarray``, with the same numpy reference. Calls with a
sparse input run on numpy/scipy in both modes. Cases the array API standard does not define
(``bool + bool``, ``sqrt`` of integers, ``min`` of bools; see ``STRICT_GAPS``) are skipped in
strict mode, with the reason. Run both::

    python -m pytest tests/runtime/test_kernels.py
    FEDLA_ARRAY_API=strict python -m pytest tests/runtime/test_kernels.py
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError, UnknownKernelError
from fedla.runtime.kernels import kernel_names, run_kernel
from fedla.runtime.kernels.elementwise import BINARY_OPS, UNARY_OPS
from fedla.runtime.kernels.reductions import REDUCTIONS, combine_partials, get_reduction

ARRAY_API = os.environ.get("FEDLA_ARRAY_API", "numpy")
if ARRAY_API not in ("numpy", "strict"):
    raise ValueError(f"FEDLA_ARRAY_API must be 'numpy' or 'strict'; got {ARRAY_API!r} instead")
STRICT = ARRAY_API == "strict"
if STRICT:
    import array_api_strict

SEED = 20240611
SHAPES = [(7, 5), (1, 5), (7, 1)]
SHAPE_IDS = ["7x5", "1x5", "7x1"]
DTYPES = [np.float64, np.float32, np.int64, np.bool_]
DTYPE_IDS = ["float64", "float32", "int64", "bool"]
NUMERIC_DTYPES = [np.float64, np.float32, np.int64]
NUMERIC_DTYPE_IDS = ["float64", "float32", "int64"]
ELEMENTWISE_DTYPES = DTYPES
ELEMENTWISE_DTYPE_IDS = DTYPE_IDS


# --- building and comparing blocks -------------------------------------------------------------


def random_dense(shape, dtype, seed=0, density=0.5):
    """Random block with about ``1 - density`` zeros (so sparse formats have implicit zeros)."""
    rng = np.random.default_rng([SEED, seed])
    if dtype == np.bool_:
        values = rng.random(shape) < 0.5
    elif np.issubdtype(dtype, np.integer):
        values = rng.integers(-4, 5, size=shape)
    else:
        values = rng.standard_normal(shape)
    return (values * (rng.random(shape) < density)).astype(dtype)


def noncanonical_csr(dense):
    """CSR equal to ``dense`` with unsorted indices, duplicates and explicit zeros (where the
    rows leave room for them)."""
    data, indices, indptr = [], [], [0]
    for row in dense:
        cols = list(np.flatnonzero(row)[::-1])  # unsorted
        values = [row[c] for c in cols]
        if cols:  # a duplicate of the first entry, holding zero
            cols.append(cols[0])
            values.append(0)
        empty = np.flatnonzero(row == 0)
        if empty.size:  # an explicit zero
            cols.append(empty[-1])
            values.append(0)
        data += values
        indices += cols
        indptr.append(len(indices))
    return sp.csr_array(
        (np.array(data, dtype=dense.dtype), np.array(indices, dtype=np.int32), np.array(indptr)),
        shape=dense.shape,
    )


FORMATS = {
    "dense": np.asarray,
    "csr_array": sp.csr_array,
    "csr_matrix": sp.csr_matrix,
    "csr_noncanonical": noncanonical_csr,
}
ALL_FORMATS = list(FORMATS)


def block(dense, fmt):
    return FORMATS[fmt](dense)


def to_dense(x):
    if np.isscalar(x):
        return x  # keep Python scalars "weak", as numpy treats them (float32 + 0.5 is float32)
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def tolerance(dtype):
    return 1e-4 if dtype == np.float32 else 1e-10


def assert_matches(result, expected):
    """Same kind of result as numpy's (numpy scalar or 2-D block), same dtype, same values."""
    expected = np.asarray(expected) if np.ndim(expected) else expected
    if np.ndim(expected) == 0:
        assert isinstance(result, np.generic), f"expected a numpy scalar, got {type(result)}"
    else:
        assert isinstance(result, (np.ndarray, sp.csr_array)), type(result)
        assert not isinstance(result, np.matrix)
        assert result.ndim == 2
    got = to_dense(result)
    assert got.shape == np.shape(expected)
    assert got.dtype == np.asarray(expected).dtype, (got.dtype, np.asarray(expected).dtype)
    if got.dtype.kind in "fc":
        rtol = tolerance(got.dtype)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)


def snapshot(x):
    """The arrays of a block, to check that a kernel did not modify its input."""
    if sp.issparse(x):
        return [x.data.copy(), x.indices.copy(), x.indptr.copy()]
    return [np.array(x, copy=True)]


def assert_unchanged(x, before):
    for now, then in zip(snapshot(x), before, strict=True):
        np.testing.assert_array_equal(now, then)


# --- strict mode ------------------------------------------------------------------------------

# Dtypes each op is defined for by the array API standard, where numpy accepts more.
_REAL = ("int64", "float32", "float64")  # "real-valued": no bool
_FLOATING = ("float32", "float64")
STRICT_GAPS = {
    **{("binary", op): _REAL for op in (
        "add", "sub", "mul", "pow", "mod", "floordiv", "minimum", "maximum", "lt", "le", "gt", "ge"
    )},
    ("binary", "div"): _FLOATING,
    **{("unary", op): _FLOATING for op in (
        "sqrt", "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh"
    )},
    **{("unary", op): _REAL for op in ("neg", "abs", "sign", "round", "floor", "ceil", "square")},
    **{("reduce", name): _REAL for name in ("min", "max", "argmax", "argmin")},
}


def skip_strict_gap(kernel_name, op, dtype, *operands):
    """In strict mode, skip a case whose dense operands have a dtype the standard excludes."""
    allowed = STRICT_GAPS.get((kernel_name, op))
    dtype_name = np.dtype(dtype).name
    if STRICT and allowed and dtype_name not in allowed and not any(map(sp.issparse, operands)):
        pytest.skip(
            f"array API defines {kernel_name} {op!r} for {'/'.join(allowed)} only; "
            f"numpy also takes {dtype_name}"
        )


def to_strict(x):
    return array_api_strict.asarray(x) if isinstance(x, np.ndarray) else x


def from_strict(x):
    """A strict result as numpy: arrays via ``numpy.asarray``, 0-d as a numpy scalar."""
    if isinstance(x, dict):
        return {key: from_strict(value) for key, value in x.items()}
    if type(x).__module__.startswith("array_api_strict"):
        return np.asarray(x)[()] if x.ndim == 0 else np.asarray(x)
    return x


def run(name, inputs, attrs, keep=False):
    """``run_kernel`` in the mode's array library; the result comes back as numpy.

    In strict mode, dense inputs (and array attributes) become array-api-strict arrays when no
    input is sparse, and the result must be a strict array (or a dict of them). ``keep`` returns
    it unconverted, for ``combine_partials``.
    """
    if not STRICT or any(map(sp.issparse, [*inputs, *attrs.values()])):
        return run_kernel(name, inputs, attrs)
    strict_inputs = [to_strict(x) for x in inputs]
    if not any(type(x).__module__.startswith("array_api_strict") for x in strict_inputs):
        return run_kernel(name, inputs, attrs)  # scalars only: nothing to run under strict
    result = run_kernel(name, strict_inputs, {k: to_strict(v) for k, v in attrs.items()})
    values = result.values() if isinstance(result, dict) else [result]
    for value in values:
        if not isinstance(value, (int, np.integer)):  # partial counts are host integers
            assert type(value).__module__.startswith("array_api_strict"), type(value)
    return result if keep else from_strict(result)


def test_all_kernels_registered():
    expected = {
        "matmul",
        "tsmm",
        "mmchain",
        "binary",
        "unary",
        "where",
        "reduce",
        "reduce_partial",
        "slice",
        "transpose",
        "cbind",
        "rbind",
        "assemble",
        "fused",
    }
    assert expected <= set(kernel_names())


# --- matmul ----------------------------------------------------------------------------------

MATMUL_SHAPES = [((7, 4), (4, 3)), ((1, 4), (4, 1)), ((7, 1), (1, 3))]
MATMUL_SHAPE_IDS = ["7x4@4x3", "1x4@4x1", "7x1@1x3"]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=MATMUL_SHAPE_IDS)
@pytest.mark.parametrize("dtype", NUMERIC_DTYPES, ids=NUMERIC_DTYPE_IDS)
@pytest.mark.parametrize("fmt_b", ["dense", "csr_array", "csr_noncanonical"])
@pytest.mark.parametrize("fmt_a", ["dense", "csr_matrix", "csr_noncanonical"])
def test_matmul(fmt_a, fmt_b, dtype, shapes):
    a = random_dense(shapes[0], dtype, seed=1)
    b = random_dense(shapes[1], dtype, seed=2)
    block_a, block_b = block(a, fmt_a), block(b, fmt_b)
    before_a, before_b = snapshot(block_a), snapshot(block_b)
    result = run("matmul", [block_a, block_b], {})
    assert_matches(result, a @ b)
    assert_unchanged(block_a, before_a)
    assert_unchanged(block_b, before_b)
    both_sparse = fmt_a != "dense" and fmt_b != "dense"
    assert isinstance(result, sp.csr_array if both_sparse else np.ndarray)


def test_matmul_shape_mismatch():
    with pytest.raises(ShapeMismatchError) as info:
        run("matmul", [np.ones((3, 4)), sp.csr_array(np.ones((5, 2)))], {})
    assert str(info.value) == "matmul: shapes (3, 4) and (5, 2) are not aligned (4 != 5)"


def test_matmul_rejects_vectors():
    with pytest.raises(InvalidArgumentError, match="2-D block"):
        run("matmul", [np.ones((3, 4)), np.ones(4)], {})


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("left", [True, False], ids=["left", "right"])
@pytest.mark.parametrize("dtype", NUMERIC_DTYPES, ids=NUMERIC_DTYPE_IDS)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_tsmm(fmt, dtype, left, shape):
    x = random_dense(shape, dtype, seed=3)
    x_block = block(x, fmt)
    before = snapshot(x_block)
    result = run("tsmm", [x_block], {"left": left})
    assert isinstance(result, np.ndarray)
    assert_matches(result, x.T @ x if left else x @ x.T)
    assert_unchanged(x_block, before)


def test_tsmm_rejects_non_bool_left():
    with pytest.raises(InvalidArgumentError, match="left must be True or False"):
        run("tsmm", [np.ones((2, 2))], {"left": "yes"})


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_mmchain(fmt, dtype, weighted, shape):
    x = random_dense(shape, dtype, seed=4)
    v = random_dense((shape[1], 2), dtype, seed=5, density=1.0)
    attrs = {}
    expected = x.T @ (x @ v)
    if weighted:
        w = random_dense((shape[0], 1), dtype, seed=6, density=1.0)
        attrs["w"] = w
        expected = x.T @ (w * (x @ v))
    result = run("mmchain", [block(x, fmt), v], attrs)
    assert isinstance(result, np.ndarray)
    assert_matches(result, expected)


def test_mmchain_shape_errors():
    x = np.ones((5, 3))
    with pytest.raises(ShapeMismatchError, match=r"mmchain: shapes \(5, 3\) and \(4, 1\)"):
        run("mmchain", [x, np.ones((4, 1))], {})
    with pytest.raises(ShapeMismatchError, match=r"w must be a column of shape \(5, 1\)"):
        run("mmchain", [x, np.ones((3, 1))], {"w": np.ones((5, 2))})


# --- binary ----------------------------------------------------------------------------------

N, M = 6, 4


def operand(kind, dtype, seed):
    """An operand of ``kind`` for a (N, M) result: a block in some format, a vector or a scalar."""
    if kind == "scalar":
        return {np.float64: 0.75, np.float32: -1.25, np.int64: 3, np.bool_: True}[dtype]
    shape = {"row": (1, M), "col": (N, 1), "one": (1, 1), "sparse_row": (1, M)}.get(kind, (N, M))
    dense = random_dense(shape, dtype, seed=seed)
    if kind == "sparse_row":
        return sp.csr_array(dense)
    return block(dense, kind) if kind in FORMATS else dense


BINARY_LAYOUTS = [
    ("dense", "dense"),
    ("csr_array", "csr_array"),
    ("csr_matrix", "csr_noncanonical"),
    ("csr_array", "dense"),
    ("dense", "csr_matrix"),
    ("csr_noncanonical", "row"),
    ("col", "csr_array"),
    ("csr_array", "one"),
    ("csr_array", "scalar"),
    ("scalar", "csr_matrix"),
    ("dense", "scalar"),
    ("row", "col"),
    ("sparse_row", "csr_array"),
]


def numpy_binary(op):
    names = {
        "sub": "subtract",
        "mul": "multiply",
        "div": "true_divide",
        "pow": "power",
        "mod": "remainder",
        "floordiv": "floor_divide",
        "eq": "equal",
        "ne": "not_equal",
        "lt": "less",
        "le": "less_equal",
        "gt": "greater",
        "ge": "greater_equal",
        "and": "logical_and",
        "or": "logical_or",
    }
    return getattr(np, names.get(op, op))


def expected_or_error(fn, *args):
    """numpy's answer, or the exception class the kernel must raise when numpy refuses."""
    try:
        with np.errstate(all="ignore"):
            return fn(*args), None
    except (TypeError, ValueError):
        return None, InvalidArgumentError


@pytest.mark.parametrize("layout", BINARY_LAYOUTS, ids=["-".join(k) for k in BINARY_LAYOUTS])
@pytest.mark.parametrize("dtype", ELEMENTWISE_DTYPES, ids=ELEMENTWISE_DTYPE_IDS)
@pytest.mark.parametrize("op", BINARY_OPS)
def test_binary_matches_numpy(op, dtype, layout):
    a, b = operand(layout[0], dtype, seed=7), operand(layout[1], dtype, seed=8)
    expected, error = expected_or_error(numpy_binary(op), to_dense(a), to_dense(b))
    if error is None:
        skip_strict_gap("binary", op, dtype, a, b)
    with np.errstate(all="ignore"):
        if error is not None:
            with pytest.raises(error, match=f"binary '{op}'"):
                run("binary", [a, b], {"op": op})
            return
        result = run("binary", [a, b], {"op": op})
    assert_matches(result, expected)


SPARSE = sp.csr_array(np.array([[0.0, 2.0, 0.0], [-1.5, 0.0, 4.0]]))
SPARSE_CASES = [
    ("mul", SPARSE, np.full((2, 3), 3.0), True),
    ("mul", np.arange(3.0).reshape(1, 3), SPARSE, True),
    ("mul", SPARSE, np.inf, False),  # 0 * inf is nan
    ("add", SPARSE, SPARSE, True),
    ("sub", SPARSE, sp.csr_matrix(SPARSE), True),
    ("add", SPARSE, 1.0, False),
    ("div", SPARSE, 2.0, True),
    ("div", SPARSE, 0.0, False),
    ("div", 1.0, SPARSE, False),
    ("pow", SPARSE, 2.0, True),
    ("pow", SPARSE, 0.0, False),
    ("minimum", SPARSE, SPARSE * 2, True),
    ("maximum", SPARSE, -1.0, True),
    ("maximum", SPARSE, 1.0, False),
    ("gt", SPARSE, 0.5, True),
    ("lt", SPARSE, 0.5, False),
    ("ne", SPARSE, SPARSE, True),
    ("eq", SPARSE, SPARSE, False),
    ("and", SPARSE, np.ones((2, 1)), True),
    ("or", SPARSE, 0.0, True),
    ("mul", sp.csr_array(np.ones((1, 3))), np.ones((2, 3)), False),  # broadcast sparse row
]


@pytest.mark.parametrize(
    ("op", "a", "b", "stays_sparse"),
    SPARSE_CASES,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(SPARSE_CASES)],
)
def test_binary_sparsity(op, a, b, stays_sparse):
    with np.errstate(all="ignore"):
        result = run("binary", [a, b], {"op": op})
        expected = numpy_binary(op)(to_dense(a), to_dense(b))
    assert isinstance(result, sp.csr_array if stays_sparse else np.ndarray)
    assert_matches(result, expected)
    if stays_sparse:  # zeros the op produced are not stored
        assert np.all(result.data != 0)


def test_binary_does_not_modify_inputs():
    a = noncanonical_csr(random_dense((N, M), np.float64, seed=9))
    b = noncanonical_csr(random_dense((N, M), np.float64, seed=10))
    before_a, before_b = snapshot(a), snapshot(b)
    for op in ("add", "mul", "gt"):
        run("binary", [a, b], {"op": op})
        run("binary", [a, 2.0], {"op": op})
    assert_unchanged(a, before_a)
    assert_unchanged(b, before_b)


def test_binary_shape_mismatch():
    with pytest.raises(ShapeMismatchError) as info:
        run("binary", [np.ones((3, 4)), sp.csr_array(np.ones((2, 4)))], {"op": "add"})
    message = str(info.value)
    assert message.startswith("binary 'add': shapes (3, 4) and (2, 4) do not broadcast")
    assert "3 != 2 along axis 0" in message


def test_binary_unknown_op():
    with pytest.raises(InvalidArgumentError) as info:
        run("binary", [np.ones((2, 2)), 1.0], {"op": "foo"})
    assert str(info.value).startswith(
        "binary: unknown op 'foo'; expected one of add, sub, mul, div, pow"
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [(np.ones(3), np.ones((3, 3))), (1.0, 2.0), ("x", np.ones((2, 2)))],
    ids=["vector", "two-scalars", "string"],
)
def test_binary_rejects_non_blocks(a, b):
    with pytest.raises(InvalidArgumentError, match="binary"):
        run("binary", [a, b], {"op": "add"})


def test_binary_numpy_refusal_is_invalid_argument():
    # numpy's own message, so numpy inputs in both modes
    with pytest.raises(InvalidArgumentError, match="binary 'sub': .*boolean subtract"):
        run_kernel("binary", [np.ones((2, 2), dtype=bool), True], {"op": "sub"})


# --- unary -----------------------------------------------------------------------------------


def numpy_unary(op):
    if op == "sigmoid":

        def sigmoid(x):
            x = x if x.dtype.kind in "fc" else x.astype(np.float64)
            return 1 / (1 + np.exp(-x))

        return sigmoid
    names = {"neg": "negative", "abs": "absolute", "not": "logical_not"}
    return getattr(np, names.get(op, op))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("op", UNARY_OPS)
def test_unary_matches_numpy(op, fmt, dtype):
    dense = random_dense((N, M), dtype, seed=11)
    x = block(dense, fmt)
    before = snapshot(x)
    expected, error = expected_or_error(numpy_unary(op), dense)
    if error is None:
        skip_strict_gap("unary", op, dtype, x)
    with np.errstate(all="ignore"):
        if error is not None:
            with pytest.raises(error, match=f"unary '{op}'"):
                run("unary", [x], {"op": op})
            return
        result = run("unary", [x], {"op": op})
        zero_stays_zero = not np.any(numpy_unary(op)(np.zeros(1, dtype=dtype)))
    assert_matches(result, expected)
    stays_sparse = fmt != "dense" and zero_stays_zero and expected.dtype != np.float16
    assert isinstance(result, sp.csr_array if stays_sparse else np.ndarray)
    assert_unchanged(x, before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_sigmoid_is_stable(dtype):
    x = np.array([[-1000.0, -30.0, 0.0, 30.0, 1000.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run("unary", [x], {"op": "sigmoid"})
    assert result.dtype == dtype
    np.testing.assert_allclose(result, [[0.0, 9.357623e-14, 0.5, 1.0, 1.0]], rtol=1e-5, atol=0)


def test_round_is_half_to_even():
    x = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, 0.49]])
    np.testing.assert_array_equal(
        run("unary", [x], {"op": "round"}), [[0.0, 2.0, 2.0, -0.0, -2.0, 0.0]]
    )


def test_unary_unknown_op():
    with pytest.raises(InvalidArgumentError, match="unary: unknown op 'cube'; expected one of neg"):
        run("unary", [np.ones((2, 2))], {"op": "cube"})


# --- where -----------------------------------------------------------------------------------

WHERE_LAYOUTS = [
    ("dense", "dense", "dense"),
    ("csr_array", "scalar", "dense"),
    ("col", "csr_matrix", "scalar"),
    ("scalar", "row", "csr_noncanonical"),
    ("row", "one", "col"),
]


@pytest.mark.parametrize("layout", WHERE_LAYOUTS, ids=["-".join(k) for k in WHERE_LAYOUTS])
@pytest.mark.parametrize("dtype", ELEMENTWISE_DTYPES, ids=ELEMENTWISE_DTYPE_IDS)
def test_where_matches_numpy(dtype, layout):
    cond = operand(layout[0], np.float64, seed=12)  # nonzero (float) counts as True
    a, b = operand(layout[1], dtype, seed=13), operand(layout[2], dtype, seed=14)
    result = run("where", [cond, a, b], {})
    assert isinstance(result, np.ndarray)
    assert_matches(result, np.where(to_dense(cond), to_dense(a), to_dense(b)))


def test_where_errors():
    with pytest.raises(ShapeMismatchError, match=r"where: shapes \(3, 2\), \(2, 2\) and scalar"):
        run("where", [np.ones((3, 2)), np.ones((2, 2)), 0.0], {})
    with pytest.raises(InvalidArgumentError, match="at least one operand must be a 2-D block"):
        run("where", [True, 1.0, 0.0], {})


# --- reductions ------------------------------------------------------------------------------

AXIS_IDS = {None: "all", 0: "axis0", 1: "axis1"}
ARG_REDUCTIONS = ("argmax", "argmin")  # no flat index: axis None is an error, tested apart
REDUCE_CASES = [
    (name, axis)
    for name in REDUCTIONS
    for axis in AXIS_IDS
    if not (axis is None and name in ARG_REDUCTIONS)
]
REDUCE_IDS = [f"{name}-{AXIS_IDS[axis]}" for name, axis in REDUCE_CASES]


def numpy_reduce(name, x, axis, ddof=0):
    keepdims = axis is not None
    if name == "sumsq":
        return np.sum(np.square(x), axis=axis, keepdims=keepdims)
    if name == "var":
        return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)
    if name in ("argmax", "argmin"):
        return getattr(np, name)(x, axis=axis, keepdims=True).astype(np.int64)
    if name == "nnz":
        count = np.count_nonzero(x, axis=axis, keepdims=keepdims)
        return np.int64(count) if axis is None else count.astype(np.int64)
    return getattr(np, name)(x, axis=axis, keepdims=keepdims)


def reduce_attrs(name, axis, **extra):
    return {"reduction": name, "axis": axis, **extra}


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize(("name", "axis"), REDUCE_CASES, ids=REDUCE_IDS)
def test_reduce_matches_numpy(name, axis, fmt, dtype, shape):
    dense = random_dense(shape, dtype, seed=15)
    x = block(dense, fmt)
    skip_strict_gap("reduce", name, dtype, x)
    before = snapshot(x)
    result = run("reduce", [x], reduce_attrs(name, axis))
    assert_matches(result, numpy_reduce(name, dense, axis))
    assert_unchanged(x, before)


ROW_BOUNDS = [0, 1, 4, 11]  # uneven, with a 1-row block
COL_BOUNDS = [0, 3, 4, 7]  # uneven, with a 1-column block
ALONG = [(None, "rows"), (None, "cols"), (0, "rows"), (1, "cols")]  # partials combine
ACROSS = [(0, "cols"), (1, "rows")]  # per-block results are concatenated


def split_cases(splits):
    cases = [
        (name, axis, how)
        for name in REDUCTIONS
        for axis, how in splits
        if not (axis is None and name in ARG_REDUCTIONS)
    ]
    return cases, [f"{name}-{AXIS_IDS[axis]}-{how}-split" for name, axis, how in cases]


SPLIT_CASES, SPLIT_IDS = split_cases(ALONG + ACROSS)
ALONG_CASES, ALONG_IDS = split_cases(ALONG)


def split(dense, how):
    bounds = ROW_BOUNDS if how == "rows" else COL_BOUNDS
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        yield start, (dense[start:stop] if how == "rows" else dense[:, start:stop])


def federated_reduce(name, dense, fmt, axis, how, reverse=False, **attrs):
    """Reduce block by block as the coordinator does: combine along the axis, concat across.

    ``reverse`` combines the partials last block first, which none of the combines minds.
    """
    along = axis is None or (axis == 0) == (how == "rows")
    if along:
        partials = [
            run(
                "reduce_partial",
                [block(part, fmt)],
                reduce_attrs(name, axis, **({"offset": start} if "arg" in name else {})),
                keep=True,
            )
            for start, part in split(dense, how)
        ]
        return from_strict(
            combine_partials(name, partials[::-1] if reverse else partials, **attrs)
        )
    results = [
        run("reduce", [block(part, fmt)], reduce_attrs(name, axis, **attrs))
        for _, part in split(dense, how)
    ]
    return np.concatenate(results, axis=1 - axis)


@pytest.mark.parametrize("dtype", [np.float64, np.int64], ids=["float64", "int64"])
@pytest.mark.parametrize("fmt", ["dense", "csr_array", "csr_noncanonical"])
@pytest.mark.parametrize(("name", "axis", "how"), SPLIT_CASES, ids=SPLIT_IDS)
def test_combined_partials_match_numpy(name, axis, how, fmt, dtype):
    dense = random_dense((11, 7), dtype, seed=16, density=0.4)  # int64: many ties, many zeros
    assert_matches(federated_reduce(name, dense, fmt, axis, how), numpy_reduce(name, dense, axis))


@pytest.mark.parametrize("fmt", ["dense", "csr_array"])
@pytest.mark.parametrize(("axis", "how"), ALONG, ids=[f"{AXIS_IDS[a]}-{h}-split" for a, h in ALONG])
def test_var_ddof_combined(axis, how, fmt):
    dense = random_dense((11, 7), np.float64, seed=17)
    result = federated_reduce("var", dense, fmt, axis, how, ddof=1)
    assert_matches(result, numpy_reduce("var", dense, axis, ddof=1))


@pytest.mark.parametrize("fmt", ["dense", "csr_array", "csr_noncanonical"])
@pytest.mark.parametrize(("name", "axis", "how"), ALONG_CASES, ids=ALONG_IDS)
def test_nan_propagates_like_numpy(name, axis, how, fmt):
    dense = random_dense((11, 7), np.float64, seed=18)
    dense[[0, 5, 5, 9], [2, 2, 6, 0]] = np.nan  # some lines hold a NaN only in a later block
    with np.errstate(invalid="ignore"):
        expected = numpy_reduce(name, dense, axis)
        assert_matches(federated_reduce(name, dense, fmt, axis, how), expected)
        assert_matches(federated_reduce(name, dense, fmt, axis, how, reverse=True), expected)
        assert_matches(
            run("reduce", [block(dense, fmt)], reduce_attrs(name, axis)), expected
        )


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_combine_is_associative(name):
    axis = 0
    dense = random_dense((11, 7), np.int64, seed=19)
    spec = get_reduction(name)
    p0, p1, p2 = (
        run(
            "reduce_partial",
            [part],
            reduce_attrs(name, axis, **({"offset": start} if "arg" in name else {})),
            keep=True,
        )
        for start, part in split(dense, "rows")
    )
    tree = from_strict(spec.finalize(spec.combine(p0, spec.combine(p1, p2))))
    fold = from_strict(combine_partials(name, [p0, p1, p2]))
    assert_matches(tree, numpy_reduce(name, dense, axis))
    np.testing.assert_allclose(tree, fold)


@pytest.mark.parametrize("fmt", ["csr_array", "csr_noncanonical", "dense"])
def test_arg_reductions_break_ties_like_numpy(fmt):
    # rows: explicit zero before the first implicit one; implicit zero first; all negative;
    # empty; zero ties with a stored zero of a later column
    dense = np.array(
        [
            [-1.0, 0.0, 0.0, -2.0],
            [-1.0, 0.0, -3.0, 0.0],
            [-3.0, -1.0, -1.0, -2.0],
            [0.0, 0.0, 0.0, 0.0],
            [2.0, 0.0, 2.0, 1.0],
        ]
    )
    x = sp.csr_array(dense)
    if fmt == "csr_array":  # store explicit zeros at (0, 1) and (1, 3)
        x = sp.csr_array(
            (np.r_[x.data, 0.0, 0.0], (np.r_[x.tocoo().row, 0, 1], np.r_[x.tocoo().col, 1, 3])),
            shape=dense.shape,
        )
    elif fmt == "csr_noncanonical":
        x = noncanonical_csr(dense)
    else:
        x = dense
    for name in ("argmax", "argmin"):
        for axis in (0, 1):
            result = run("reduce", [x], reduce_attrs(name, axis, offset=10))
            assert_matches(result, numpy_reduce(name, dense, axis) + 10)


def test_reduction_errors():
    x = np.ones((3, 2))
    with pytest.raises(UnknownKernelError, match="reduction 'median'; known reductions: sum"):
        run("reduce", [x], {"reduction": "median"})
    with pytest.raises(UnknownKernelError, match="known reductions: sum, sumsq, min, max"):
        get_reduction("prod")
    with pytest.raises(InvalidArgumentError, match="axis must be None, 0 or 1; got 2"):
        run("reduce", [x], {"reduction": "sum", "axis": 2})
    with pytest.raises(InvalidArgumentError, match="unknown attribute.*'ddof'; expected: offset"):
        run("reduce", [x], {"reduction": "argmax", "axis": 0, "ddof": 1})
    with pytest.raises(InvalidArgumentError, match="offset must be an integer >= 0"):
        run("reduce_partial", [x], {"reduction": "argmin", "axis": 1, "offset": -1})
    with pytest.raises(InvalidArgumentError, match="ddof must be a number >= 0; got 'a'"):
        run("reduce", [x], {"reduction": "var", "ddof": "a"})
    with pytest.raises(InvalidArgumentError, match="expected at least one partial"):
        combine_partials("sum", [])
    parts = [
        run("reduce_partial", [b], {"reduction": "sum", "axis": 0})
        for b in (x, np.ones((3, 4)))
    ]
    with pytest.raises(ShapeMismatchError, match=r"partials of shapes \(1, 2\) and \(1, 4\)"):
        combine_partials("sum", parts)


@pytest.mark.parametrize("name", ARG_REDUCTIONS)
def test_arg_reduction_needs_axis(name):
    with pytest.raises(InvalidArgumentError, match=f"{name}: axis must be 0 or 1; got None"):
        run("reduce", [np.ones((2, 2))], {"reduction": name})


def test_reduce_partial_accepts_finalize_attrs():
    x = random_dense((5, 3), np.float64, seed=20)
    partial = run("reduce_partial", [x], {"reduction": "var", "axis": 1, "ddof": 1})
    assert set(partial) == {"n", "mean", "m2"}
    assert_matches(
        combine_partials("var", [partial], ddof=1), np.var(x, axis=1, ddof=1, keepdims=True)
    )


# --- indexing --------------------------------------------------------------------------------

SLICES = [((1, 4), (0, 3)), (None, (2, 3)), ((6, 7), None), (None, None), ((2, 2), (0, 5))]
SLICE_IDS = ["rows-cols", "cols-only", "last-row", "all", "empty-rows"]


@pytest.mark.parametrize(("rows", "cols"), SLICES, ids=SLICE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_slice(fmt, dtype, rows, cols):
    dense = random_dense((7, 5), dtype, seed=21)
    result = run("slice", [block(dense, fmt)], {"rows": rows, "cols": cols})
    assert isinstance(result, np.ndarray if fmt == "dense" else sp.csr_array)
    row_slice = slice(*rows) if rows else slice(None)
    col_slice = slice(*cols) if cols else slice(None)
    assert_matches(result, dense[row_slice, col_slice])


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"rows": (2, 9)}, r"slice: rows=\(2, 9\) is out of range for a block of shape \(7, 5\)"),
        ({"cols": (3, 1)}, r"slice: cols=\(3, 1\) is out of range .*0 <= start <= stop <= 5"),
        ({"rows": (-1, 2)}, r"rows=\(-1, 2\) is out of range"),
        ({"cols": (0.5, 2)}, r"cols must be a pair of integers .*got \(0.5, 2\)"),
        ({"rows": (1, 2, 3)}, r"rows must be a pair of integers"),
    ],
    ids=["rows-past-end", "cols-reversed", "negative", "float", "triple"],
)
def test_slice_errors(attrs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        run("slice", [np.ones((7, 5))], attrs)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_transpose(fmt, shape):
    dense = random_dense(shape, np.float64, seed=22)
    result = run("transpose", [block(dense, fmt)], {})
    assert isinstance(result, np.ndarray if fmt == "dense" else sp.csr_array)
    assert_matches(result, dense.T)


BIND_FORMATS = [
    ("dense", "dense", "dense"),
    ("csr_array", "csr_matrix", "csr_noncanonical"),
    ("csr_array", "dense", "csr_array"),
]


@pytest.mark.parametrize("fmts", BIND_FORMATS, ids=["-".join(fmts) for fmts in BIND_FORMATS])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kernel_name", ["cbind", "rbind"])
def test_bind(kernel_name, dtype, fmts):
    widths = [3, 1, 2]
    shapes = [(4, w) for w in widths] if kernel_name == "cbind" else [(w, 4) for w in widths]
    parts = [random_dense(shape, dtype, seed=23 + i) for i, shape in enumerate(shapes)]
    result = run(kernel_name, [block(p, f) for p, f in zip(parts, fmts, strict=True)], {})
    all_sparse = "dense" not in fmts
    assert isinstance(result, sp.csr_array if all_sparse else np.ndarray)
    stack = np.hstack if kernel_name == "cbind" else np.vstack
    assert_matches(result, stack(parts))


def test_bind_errors():
    with pytest.raises(
        ShapeMismatchError,
        match=r"cbind: blocks of shapes \(3, 2\) and \(4, 1\) "
        r"have different row counts \(3 != 4\)",
    ):
        run("cbind", [np.ones((3, 2)), sp.csr_array(np.ones((4, 1)))], {})
    with pytest.raises(ShapeMismatchError, match=r"rbind: .* different column counts \(2 != 3\)"):
        run("rbind", [np.ones((3, 2)), np.ones((3, 3))], {})
    with pytest.raises(InvalidArgumentError, match="rbind: expected at least one block"):
        run("rbind", [], {})


def test_unknown_kernel():
    with pytest.raises(UnknownKernelError, match="unknown operation 'qr'"):
        run("qr", [np.ones((2, 2))], {})


def test_reductions_table_is_consistent():
    assert list(REDUCTIONS) == [
        "sum",
        "sumsq",
        "min",
        "max",
        "mean",
        "var",
        "argmax",
        "argmin",
        "nnz",
    ]
    assert all(spec.name == name for name, spec in REDUCTIONS.items())


# --- assemble --------------------------------------------------------------------------------

WHOLE = np.arange(20.0).reshape(5, 4)  # the result every layout below rebuilds
ASSEMBLE_LAYOUTS = {  # pieces as (rows, cols) ranges of WHOLE, deliberately not in order
    "row-strips": [((2, 5), (0, 4)), ((0, 2), (0, 4))],
    "col-strips": [((0, 5), (1, 4)), ((0, 5), (0, 1))],
    "2x2-grid": [((2, 5), (3, 4)), ((0, 2), (0, 3)), ((2, 5), (0, 3)), ((0, 2), (3, 4))],
    "one-piece": [((0, 5), (0, 4))],
}
PIECE_FORMATS = {"dense": ["dense"], "sparse": ["csr_array", "csr_noncanonical"],
                 "mixed": ["csr_matrix", "dense"]}


@pytest.mark.parametrize("formats", list(PIECE_FORMATS))
@pytest.mark.parametrize("layout", list(ASSEMBLE_LAYOUTS))
def test_assemble_layouts(layout, formats):
    ranges = ASSEMBLE_LAYOUTS[layout]
    cycle = PIECE_FORMATS[formats]
    pieces = [
        block(WHOLE[r0:r1, c0:c1], cycle[i % len(cycle)])
        for i, ((r0, r1), (c0, c1)) in enumerate(ranges)
    ]
    offsets = [[r0, c0] for (r0, _), (c0, _) in ranges]
    result = run("assemble", pieces, {"shape": [5, 4], "offsets": offsets})
    all_sparse = all(sp.issparse(piece) for piece in pieces)
    assert isinstance(result, sp.csr_array if all_sparse else np.ndarray)
    assert_matches(result, WHOLE)


def test_assemble_by_hand():
    # [[1 2 | 7]      int64 piece at (0, 0), float32 sparse column at (0, 2),
    #  [3 4 | 8]      a bool row at (2, 0): float64 overall, as numpy's result_type
    #  [T F   T]]
    pieces = [
        np.array([[1, 2], [3, 4]], dtype=np.int64),
        sp.csr_array(np.array([[7.0], [8.0]], dtype=np.float32)),
        np.array([[True, False, True]]),
    ]
    result = run_kernel(
        "assemble", pieces, {"shape": (3, 3), "offsets": [(0, 0), (0, 2), (2, 0)]}
    )
    assert_matches(result, np.array([[1.0, 2.0, 7.0], [3.0, 4.0, 8.0], [1.0, 0.0, 1.0]]))


def test_assemble_sparse_pieces_stay_sparse_and_canonical():
    top = sp.csr_array(np.array([[0, 5], [0, 0]], dtype=np.int64))
    bottom = sp.csr_matrix(np.array([[6, 0]], dtype=np.int32))
    result = run_kernel("assemble", [bottom, top], {"shape": [3, 2], "offsets": [[2, 0], [0, 0]]})
    assert isinstance(result, sp.csr_array) and result.has_canonical_format
    assert_matches(result, np.array([[0, 5], [0, 0], [6, 0]], dtype=np.int64))


ONES = np.ones((2, 2))
BAD_TILINGS = [
    ([ONES, ONES], [2, 4], [[0, 0], [0, 1]], ShapeMismatchError,
     r"piece 1 of shape \(2, 2\) at offset \[0, 1\] overlaps piece 0 .* at offset \[0, 0\]"),
    ([ONES, ONES, np.ones((1, 1))], [3, 3], [[0, 0], [1, 1], [2, 0]],  # the area adds up
     ShapeMismatchError, r"piece 1 of shape \(2, 2\) at offset \[1, 1\] overlaps piece 0"),
    ([ONES], [2, 3], [[0, 0]], ShapeMismatchError,
     r"the pieces cover 4 entries but the result of shape \[2, 3\] has 6"),
    ([ONES, ONES], [2, 4], [[0, 0], [1, 2]], ShapeMismatchError,
     r"piece 1 of shape \(2, 2\) at offset \[1, 2\] reaches \[3, 4\], outside .* \[2, 4\]"),
    ([ONES, ONES], [2, 4], [[0, 0]], InvalidArgumentError,
     r"offsets must list one \[row, col\] per piece \(2\); got \[\[0, 0\]\]"),
    ([ONES], [2, 2], [[0.5, 0]], InvalidArgumentError,
     r"offsets\[0\] must be a pair of integers \[row, col\]; got \[0.5, 0\]"),
    ([ONES], [2, 2], [[-1, 0]], InvalidArgumentError, r"offsets\[0\] must be >= 0; got \[-1, 0\]"),
    ([ONES], [2], [[0, 0]], InvalidArgumentError, r"shape must be a pair of integers .*got \[2\]"),
    ([], [0, 0], [], InvalidArgumentError, "expected at least one piece; got none"),
    ([np.ones(4)], [2, 2], [[0, 0]], InvalidArgumentError, "expected a 2-D block"),
]


@pytest.mark.parametrize(
    ("pieces", "shape", "offsets", "error", "message"),
    BAD_TILINGS,
    ids=["overlap", "overlap-and-gap", "gap", "out-of-bounds", "too-few-offsets",
         "float-offset", "negative-offset", "bad-shape", "no-pieces", "vector-piece"],
)
def test_assemble_rejects_bad_tilings(pieces, shape, offsets, error, message):
    with pytest.raises(error, match=f"^assemble: {message}"):
        run("assemble", pieces, {"shape": shape, "offsets": offsets})


# --- fused -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["dense", "csr_array"])
def test_fused_runs_its_steps_through_the_registry(fmt):
    x = random_dense((N, M), np.float64, seed=24)
    m, s = random_dense((1, M), np.float64, seed=25, density=1.0), 2.0
    program = [  # sigmoid((x - m) / s) > 0.5
        {"kernel": "binary", "attrs": {"op": "sub"}, "args": [["in", 0], ["in", 1]]},
        {"kernel": "binary", "attrs": {"op": "div"}, "args": [["step", 0], ["in", 2]]},
        {"kernel": "unary", "attrs": {"op": "sigmoid"}, "args": [["step", 1]]},
        {"kernel": "where", "args": [["step", 2], ["step", 1], ["in", 2]]},
    ]
    result = run("fused", [block(x, fmt), m, s], {"program": program})
    scaled = (x - m) / s
    assert_matches(result, np.where(1 / (1 + np.exp(-scaled)), scaled, s))


def test_fused_errors():
    with pytest.raises(InvalidArgumentError, match="fused: step 0 must run one of binary"):
        run("fused", [np.ones((2, 2))], {"program": [{"kernel": "matmul", "args": []}]})
    with pytest.raises(InvalidArgumentError, match=r"fused: step 0 refers to \['step', 0\]"):
        program = [{"kernel": "unary", "attrs": {"op": "neg"}, "args": [["step", 0]]}]
        run("fused", [np.ones((2, 2))], {"program": program})
