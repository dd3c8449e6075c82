"""``lineage_key``/``content_key``: one canonical encoding, equal values <-> equal keys."""

from __future__ import annotations

import copy
import enum
import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from fedla.runtime.lineage import content_key, lineage_key

DTYPES = st.sampled_from(["<f8", "<f4", "<i8", "<i4", "<u1", "|b1", "<c16"])
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
VALUES = st.recursive(
    SCALARS | st.binary() | ARRAYS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


class Color(enum.Enum):
    RED = "red"


@given(VALUES)
def test_equal_values_give_equal_keys(value):
    assert lineage_key(value) == lineage_key(copy.deepcopy(value))
    assert content_key(value) == lineage_key(value)


@given(ARRAYS)
def test_memory_layout_and_byte_order_do_not_matter(array):
    assert content_key(np.array(array, order="F")) == content_key(array)
    if array.ndim:
        assert content_key(array[::-1][::-1]) == content_key(array)
    swapped = array.astype(array.dtype.newbyteorder(">"))
    assert content_key(swapped) == content_key(array)


@given(ARRAYS.filter(lambda a: a.size > 0), st.data())
def test_changing_one_element_changes_the_key(array, data):
    index = data.draw(st.integers(0, array.size - 1))
    changed = array.copy()
    flat = changed.reshape(-1)
    with np.errstate(all="ignore"):  # uint8 255 + 1 wraps to 0: still a change
        flat[index] = not flat[index] if array.dtype.kind == "b" else flat[index] + 1
    assume(changed.tobytes() != array.tobytes())
    assert content_key(changed) != content_key(array)


@given(ARRAYS, DTYPES)
def test_changing_the_dtype_changes_the_key(array, dtype):
    assume(np.dtype(dtype) != array.dtype)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        converted = array.astype(dtype)
    assert content_key(converted) != content_key(array)


@given(hnp.arrays("<f8", st.sampled_from([(6,), (2, 3), (3, 2), (1, 6), (6, 1), (1, 2, 3)])))
def test_changing_the_shape_changes_the_key(array):
    for shape in [(6,), (2, 3), (3, 2), (1, 6), (6, 1), (1, 2, 3)]:
        if shape != array.shape:
            assert content_key(array.reshape(shape)) != content_key(array)


@given(st.lists(VALUES, min_size=2, max_size=5))
def test_order_of_list_items_matters(items):
    keys = [lineage_key(item) for item in items]
    assume(keys != keys[::-1])
    assert lineage_key(items[::-1]) != lineage_key(items)
    assert lineage_key(*items[::-1]) != lineage_key(*items)


@given(st.dictionaries(st.text(max_size=4), SCALARS, min_size=2))
def test_dict_insertion_order_does_not_matter(mapping):
    assert lineage_key(dict(reversed(mapping.items()))) == lineage_key(mapping)


@given(st.integers(-(2**70), 2**70))
def test_types_are_told_apart(n):
    variants = [n, float(n), str(n), np.int64(n) if -(2**63) <= n < 2**63 else str(n) + "x",
                np.array([n], dtype=float), [n], {"n": n}]
    if n in (0, 1):
        variants.append(bool(n))
    assert len({lineage_key(v) for v in variants}) == len(variants)


@pytest.mark.parametrize(
    "a, b",
    [(1, 1.0), (1, True), (1, "1"), (1.0, np.float64(1.0)), (True, np.bool_(True)),
     (np.float64(1.0), np.float32(1.0)), (0.0, -0.0), ("ab", b"ab"), (None, ()), ((), {}),
     (("a", "b"), ("ab",)), (("a", ""), ("", "a")), (Color.RED, "red")],
    ids=["int-float", "int-bool", "int-str", "float-float64", "bool-bool_", "float64-float32",
         "zero-negzero", "str-bytes", "none-empty", "tuple-dict", "split-strs", "str-order",
         "enum-value"],
)
def test_distinct_values_that_repr_or_compare_alike(a, b):
    assert lineage_key(a) != lineage_key(b)


def test_numpy_scalars_are_0d_arrays_of_their_dtype():
    assert content_key(np.float64(1.5)) == content_key(np.array(1.5))
    assert content_key(np.float64(1.5)) != content_key(np.array([1.5]))


def test_tuples_and_lists_key_alike_because_the_wire_does_not_tell_them_apart():
    assert lineage_key((1, "a")) == lineage_key([1, "a"])


def test_enums_count_by_value():
    assert lineage_key(Color.RED) == lineage_key(Color("red"))


def test_large_arrays_are_keyed_by_all_of_their_content():
    array = np.zeros(10**6)
    changed = array.copy()
    changed[500_000] = 1e-300  # repr would elide the middle of the array
    assert content_key(changed) != content_key(array)


def test_equal_sparse_matrices_have_equal_keys_however_built():
    dense = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]])
    with_duplicates = sp.csr_array(
        (np.array([1.0, 1.0, 3.0, 1.0]), np.array([1, 1, 2, 0]), np.array([0, 2, 4])),
        shape=(2, 3),
    )
    keys = {content_key(m) for m in (sp.csr_array(dense), sp.coo_matrix(dense), with_duplicates)}
    assert len(keys) == 1
    assert not with_duplicates.has_canonical_format  # the key did not change the caller's matrix
    assert content_key(sp.csr_array(dense)) != content_key(dense)
    changed = sp.csr_array(dense * np.array([1.0, 1.0, 2.0]))
    assert content_key(changed) != content_key(sp.csr_array(dense))


@pytest.mark.parametrize(
    "value, fragment",
    [({1, 2}, "builtins.set"), (object(), "builtins.object"),
     (np.array([{"a": 1}], dtype=object), "dtype object"), ([1, lambda: 0], "function")],
    ids=["set", "object", "object-array", "nested-function"],
)
def test_other_types_are_refused(value, fragment):
    with pytest.raises(TypeError, match=fragment):
        lineage_key(value)


def test_large_plain_containers_are_keyed_by_content_and_type() -> None:
    """Containers of many plain items take a faster (JSON) encoding with the same guarantees."""
    ints = list(range(40))
    assert lineage_key(ints) == lineage_key(tuple(ints))
    assert lineage_key(ints) != lineage_key([float(i) for i in ints])
    bits = [i % 2 for i in ints]
    assert lineage_key(bits) != lineage_key([bool(b) for b in bits])
    assert lineage_key(ints) != lineage_key([str(i) for i in ints])
    assert lineage_key(ints) != lineage_key(ints[::-1])
    forward = {f"k{i}": i for i in range(40)}
    backward = {f"k{i}": i for i in reversed(range(40))}
    assert lineage_key(forward) == lineage_key(backward)
    assert lineage_key(forward) != lineage_key({**forward, "k0": 0.0})
    # a numpy scalar among many plain items is not a float: it takes the typed encoding
    assert lineage_key([1.0] * 39 + [np.float64(1.0)]) != lineage_key([1.0] * 40)
    # the size that switches the encoding does not make two values equal
    assert lineage_key([0] * 16) != lineage_key([0] * 17)
