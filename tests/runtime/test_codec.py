"""Round trips of every payload type through the codec and through a real worker (PUT, GET).

Arrays must come back bit for bit: same bytes, same shape, and their dtype in little-endian
byte order, whatever the memory layout or byte order they were sent in.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp

from fedla.runtime.errors import InvalidArgumentError, MalformedRequestError
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.codec import INLINE_LIMIT, MAX_NDIM, Encoder, decode_value
from fedla.runtime.protocol.framing import from_frames, to_frames
from fedla.runtime.protocol.requests import Get, Put

SEED = 20240611

DTYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
    np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128,
]
DTYPE_IDS = [np.dtype(dtype).name for dtype in DTYPES]


def random_array(dtype: type, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values spanning the dtype's range; floats include nan, +-inf and -0.0."""
    rng = np.random.default_rng([SEED, seed])
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        real = random_array(np.float64, shape, seed + 1)
        imag = random_array(np.float64, shape, seed + 2)
        values = np.empty(shape, dtype=dtype)
        values.real, values.imag = real, imag  # not real + 1j * imag: inf * 1j makes nan
        return values
    values = (rng.standard_normal(shape) * 1e3).astype(dtype)
    flat = values.reshape(-1)
    specials = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dtype)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    return values


def _fortran(dtype: type) -> np.ndarray:
    array = np.asfortranarray(random_array(dtype, (5, 7)))
    assert not array.flags.c_contiguous
    return array


def _strided(dtype: type) -> np.ndarray:
    array = random_array(dtype, (9, 8))[1::2, ::3]
    assert not array.flags.c_contiguous and not array.flags.f_contiguous
    return array


def _big_endian(dtype: type) -> np.ndarray:
    array = random_array(dtype, (4, 6))
    return array.astype(array.dtype.newbyteorder(">"))


LAYOUTS = {
    "0d": lambda dtype: random_array(dtype, ()),
    "1d": lambda dtype: random_array(dtype, (17,)),
    "2d": lambda dtype: random_array(dtype, (6, 5)),
    "3d": lambda dtype: random_array(dtype, (2, 3, 4)),
    "empty-0x3": lambda dtype: random_array(dtype, (0, 3)),
    "empty-1d": lambda dtype: random_array(dtype, (0,)),
    "fortran": _fortran,
    "strided-slice": _strided,
    "big-endian": _big_endian,
}


def assert_same_array(got: object, sent: np.ndarray) -> None:
    """``got`` holds exactly ``sent``'s values, as a writable little-endian array.

    A 0-d array comes back as the numpy scalar of its dtype.
    """
    if sent.ndim == 0:
        assert isinstance(got, np.generic), type(got)
    else:
        assert isinstance(got, np.ndarray), type(got)
        assert got.flags.writeable
    assert got.shape == sent.shape
    assert got.dtype == sent.dtype.newbyteorder("<")
    expected = np.ascontiguousarray(sent.astype(sent.dtype.newbyteorder("<")))
    assert got.tobytes() == expected.tobytes()  # bit for bit: nan, -0.0 and all


def assert_same_csr(got: object, sent: object) -> None:
    """``got`` is a CSR array with exactly ``sent``'s stored entries (explicit zeros too)."""
    sent = sp.csr_array(sent)
    assert isinstance(got, sp.csr_array), type(got)
    assert got.shape == sent.shape
    assert got.dtype == sent.dtype
    assert got.nnz == sent.nnz
    np.testing.assert_array_equal(got.indptr, sent.indptr)
    np.testing.assert_array_equal(got.indices, sent.indices)
    np.testing.assert_array_equal(got.data, sent.data)


def assert_same_value(got: object, sent: object) -> None:
    """Structural equality; tuples come back as lists, numpy scalars keep their dtype."""
    if isinstance(sent, (np.ndarray, np.generic)):
        assert_same_array(got, np.asarray(sent))
    elif sp.issparse(sent):
        assert_same_csr(got, sent)
    elif isinstance(sent, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(sent)
        for got_item, sent_item in zip(got, sent):
            assert_same_value(got_item, sent_item)
    elif isinstance(sent, dict):
        assert isinstance(got, dict) and got.keys() == sent.keys()
        for key in sent:
            assert_same_value(got[key], sent[key])
    elif isinstance(sent, float) and np.isnan(sent):
        assert isinstance(got, float) and np.isnan(got)
    else:
        assert got == sent and type(got) is type(sent), (got, sent)


def wire_round_trip(value: object) -> object:
    """Encode ``value`` into a PUT, cut it into frames, reassemble and decode it."""
    encoder = Encoder()
    message = encoder.value(value)
    envelope = pb.BatchRequest(
        tenant="codec-test",
        requests=[pb.Request(put=pb.Put(var="x", value=message))],
        buffer_sizes=[len(buffer) for buffer in encoder.buffers],
    )
    received, buffers = from_frames(to_frames(envelope, encoder.buffers), pb.BatchRequest)
    return decode_value(received.requests[0].put.value, buffers)


def worker_round_trip(client, tenant: str, value: object) -> object:
    meta, got = client.execute(tenant, [Put("x", value), Get("x")])
    if isinstance(value, np.ndarray):
        assert meta.shape == value.shape
        assert meta.dtype == value.dtype.newbyteorder("<").str
        assert not meta.sparse
    return got


# --- arrays ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_array_codec_round_trip(dtype, layout):
    sent = LAYOUTS[layout](dtype)
    assert_same_array(wire_round_trip(sent), sent)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_array_worker_round_trip(client, tenant, dtype, layout):
    sent = LAYOUTS[layout](dtype)
    assert_same_array(worker_round_trip(client, tenant, sent), sent)


@pytest.mark.parametrize(
    ("nbytes", "inline"),
    [(8, True), (INLINE_LIMIT, True), (INLINE_LIMIT + 8, False), (8 * INLINE_LIMIT, False)],
    ids=["tiny", "at-limit", "over-limit", "large"],
)
def test_small_arrays_travel_inline_large_ones_as_buffers(client, tenant, nbytes, inline):
    sent = np.arange(nbytes // 8, dtype=np.float64)
    encoder = Encoder()
    message = encoder.array(sent)
    assert message.WhichOneof("data") == ("inline" if inline else "buffer")
    assert len(encoder.buffers) == (0 if inline else 1)
    if not inline:
        assert len(encoder.buffers[0]) == nbytes
    assert_same_array(wire_round_trip(sent), sent)
    assert_same_array(worker_round_trip(client, tenant, sent), sent)


def test_large_non_contiguous_array_travels_as_one_buffer():
    base = random_array(np.float64, (400, 300))
    sent = base[::2, ::3]  # 200 x 100 float64 = 160 kB, strided
    encoder = Encoder()
    assert encoder.array(sent).WhichOneof("data") == "buffer"
    assert len(encoder.buffers[0]) == sent.nbytes
    assert_same_array(wire_round_trip(sent), sent)


def test_many_buffers_in_one_value_keep_their_order(client, tenant):
    sent = {
        "a": np.full(20_000, 1.0),
        "b": [np.full(30_000, 2, dtype=np.int32), np.arange(3)],
        "c": np.full((100, 200), 3 + 4j, dtype=np.complex64),
    }
    encoder = Encoder()
    encoder.value(sent)
    assert len(encoder.buffers) == 3
    assert_same_value(wire_round_trip(sent), sent)
    assert_same_value(worker_round_trip(client, tenant, sent), sent)


@pytest.mark.parametrize("dim", [MAX_NDIM], ids=["max-ndim"])
def test_array_with_max_ndim(dim):
    sent = np.zeros((1,) * dim, dtype=np.int8)
    assert_same_array(wire_round_trip(sent), sent)


# --- sparse ----------------------------------------------------------------------------------


def _csr_with_explicit_zeros() -> sp.csr_array:
    data = np.array([1.5, 0.0, -2.0, 0.0])
    indices = np.array([0, 2, 1, 3])
    indptr = np.array([0, 2, 2, 4])
    matrix = sp.csr_array((data, indices, indptr), shape=(3, 4))
    assert matrix.nnz == 4
    return matrix


def _noncanonical_csr() -> sp.csr_array:
    # Unsorted column indices and a duplicate entry: valid CSR, kept as sent.
    return sp.csr_array(
        (np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2]), np.array([0, 3, 3])), shape=(2, 3)
    )


def random_csr(shape: tuple[int, int], density: float, seed: int = 0) -> sp.csr_array:
    rng = np.random.default_rng([SEED, seed])
    return sp.csr_array(rng.standard_normal(shape) * (rng.random(shape) < density))


SPARSE = {
    "csr_array": lambda: random_csr((30, 20), 0.2),
    "csr_matrix": lambda: sp.csr_matrix(random_csr((30, 20), 0.2)),
    "empty": lambda: sp.csr_array((5, 7)),
    "no-rows": lambda: sp.csr_array((0, 7)),
    "explicit-zeros": _csr_with_explicit_zeros,
    "noncanonical": _noncanonical_csr,
    "int32-data": lambda: sp.csr_array(np.array([[0, 3], [-4, 0]], dtype=np.int32)),
    "bool-data": lambda: sp.csr_array(np.array([[False, True], [True, False]])),
    "complex-data": lambda: sp.csr_array(np.array([[0, 1 + 2j], [3j, 0]])),
    "int64-indices": lambda: sp.csr_array(
        (np.ones(2), np.array([0, 1], dtype=np.int64), np.array([0, 1, 2], dtype=np.int64)),
        shape=(2, 2),
    ),
    "large-buffers": lambda: random_csr((2_000, 1_000), 0.01),
    "coo-input": lambda: sp.coo_array(np.array([[0.0, 1.0], [2.0, 0.0]])),
    "csc-input": lambda: sp.csc_matrix(np.array([[0.0, 1.0], [2.0, 0.0]])),
}


@pytest.mark.parametrize("name", list(SPARSE))
def test_sparse_codec_round_trip(name):
    sent = SPARSE[name]()
    assert_same_csr(wire_round_trip(sent), sent)


@pytest.mark.parametrize("name", list(SPARSE))
def test_sparse_worker_round_trip(client, tenant, name):
    sent = SPARSE[name]()
    meta, got = client.execute(tenant, [Put("s", sent), Get("s")])
    assert meta.sparse and meta.shape == sent.shape and meta.nnz == sent.nnz
    assert_same_csr(got, sent)


# --- scalars, strings, None, containers --------------------------------------------------------


SCALARS = {
    "none": None,
    "true": True,
    "false": False,
    "numpy-bool": np.bool_(True),
    "zero": 0,
    "int64-max": 2**63 - 1,
    "int64-min": -(2**63),
    "numpy-int32": np.int32(-7),
    "numpy-uint64": np.uint64(2**64 - 1),
    "numpy-complex": np.complex128(1 - 2j),
    "numpy-float16": np.float16(-0.5),
    "float": 2.5,
    "float-max": np.finfo(np.float64).max,
    "float-tiny": 5e-324,
    "nan": float("nan"),
    "inf": float("inf"),
    "numpy-float32": np.float32(1.5),
    "str": "X1.csv",
    "str-empty": "",
    "str-unicode": "Zürich ✓ 東京",
    "str-long": "x" * 100_000,
    # An envelope over the one-frame limit with no buffers: streamed up, fetched by ticket.
    "str-over-unary-limit": "y" * (6 * 2**20),
}


@pytest.mark.parametrize("name", list(SCALARS))
def test_scalar_round_trip(client, tenant, name):
    sent = SCALARS[name]
    assert_same_value(wire_round_trip(sent), sent)
    assert_same_value(worker_round_trip(client, tenant, sent), sent)


def test_negative_zero_keeps_its_sign(client, tenant):
    got = worker_round_trip(client, tenant, -0.0)
    assert got == 0.0 and np.signbit(got)


CONTAINERS = {
    "empty-list": [],
    "empty-dict": {},
    "tuple": (1, 2.0, "three"),
    "mixed-list": [1, 2.5, None, "s", True, np.arange(3)],
    "nested": {
        "weights": [np.ones((2, 2)), {"bias": np.zeros(2), "meta": {"epoch": 3, "tag": ""}}],
        "csr": sp.csr_array(np.eye(3)),
        "": [[[]]],
    },
    "list-of-large-arrays": [np.arange(50_000.0), np.arange(40_000, dtype=np.int16)],
}


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_container_round_trip(client, tenant, name):
    sent = CONTAINERS[name]
    assert_same_value(wire_round_trip(sent), sent)
    assert_same_value(worker_round_trip(client, tenant, sent), sent)


# --- what the codec refuses ------------------------------------------------------------------


UNSENDABLE_ARRAYS = {
    "object": np.array([{"a": 1}, None], dtype=object),
    "structured": np.zeros(3, dtype=[("x", "<i4"), ("y", "<f8")]),
    "void": np.zeros(3, dtype="V8"),
    "unicode": np.array(["a", "bc"]),
    "bytes": np.array([b"a", b"bc"]),
    "datetime": np.array(["2024-01-01"], dtype="datetime64[D]"),
    "timedelta": np.array([1], dtype="timedelta64[s]"),
}


@pytest.mark.parametrize("name", list(UNSENDABLE_ARRAYS))
def test_encoder_refuses_non_numeric_dtypes(name):
    array = UNSENDABLE_ARRAYS[name]
    with pytest.raises(InvalidArgumentError, match="cannot be sent; only bool, integer, float"):
        Encoder().value(array)
    with pytest.raises(InvalidArgumentError, match="cannot be sent"):
        Encoder().value({"nested": [array]})


def test_python_complex_travels_as_a_complex128_scalar(client, tenant):
    back = client.execute(tenant, [Put("z", 1 + 2j), Get("z")])[1]
    assert back == 1 + 2j and back.dtype == np.complex128


def test_encoder_refuses_too_deep_nesting():
    value: list = [1.0]
    for _ in range(40):
        value = [value]
    with pytest.raises(InvalidArgumentError, match="nests lists/dicts more than 32 levels"):
        Encoder().value(value)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (2**63, "does not fit in 64 bits"),
        (-(2**63) - 1, "does not fit in 64 bits"),
        ({1: "a"}, "dict keys must be str"),
        ({"a", "b"}, "cannot send a value of type set"),
        (object(), "cannot send a value of type object"),
        (b"raw", "cannot send a value of type bytes"),
        (np.datetime64("2024-01-01"), "cannot be sent"),
    ],
    ids=[
        "int-too-big", "int-too-small", "int-dict-key", "set", "object", "bytes",
        "numpy-datetime",
    ],
)
def test_encoder_refuses_unsupported_values(value, match):
    with pytest.raises(InvalidArgumentError, match=match):
        Encoder().value(value)


def _array_message(dtype: str, shape: list[int], inline: bytes) -> pb.Value:
    return pb.Value(array=pb.Array(dtype=dtype, shape=shape, inline=inline))


@pytest.mark.parametrize(
    ("message", "error", "match"),
    [
        (_array_message("O", [1], b"\0" * 8), InvalidArgumentError, "dtype object cannot be sent"),
        (_array_message("|V8", [1], b"\0" * 8), InvalidArgumentError, "dtype |V8 cannot be sent"),
        (_array_message("<U2", [1], b"\0" * 8), InvalidArgumentError, "dtype <U2 cannot be sent"),
        (_array_message("i4,i4", [1], b"\0" * 8), InvalidArgumentError, "cannot be sent"),
        (_array_message("M8[s]", [1], b"\0" * 8), InvalidArgumentError, "cannot be sent"),
        (_array_message("bogus", [1], b"\0" * 8), MalformedRequestError, "unknown dtype 'bogus'"),
        (_array_message("<f8", [3], b"\0" * 16), MalformedRequestError, "needs 24 bytes; got 16"),
        (_array_message("<f8", [2**40, 2**40], b""), MalformedRequestError, "bytes; got 0"),
        (
            _array_message("<f8", [1] * (MAX_NDIM + 1), b"\0" * 8),
            MalformedRequestError,
            "33 dimensions",
        ),
        (
            pb.Value(array=pb.Array(dtype="<f8", shape=[4], buffer=3)),
            MalformedRequestError,
            "refers to buffer 3 but only 0 were sent",
        ),
        (
            pb.Value(csr=pb.Sparse(shape=[2, 2, 2])),
            MalformedRequestError,
            "CSR matrix must be 2-D",
        ),
    ],
    ids=[
        "object", "void", "unicode", "structured", "datetime", "unknown-dtype", "short-inline",
        "huge-shape", "too-many-dims", "missing-buffer", "3d-csr",
    ],
)
def test_decoder_refuses_invalid_arrays(message, error, match):
    with pytest.raises(error, match=match):
        decode_value(message, [])


def _csr_message(data, indices, indptr, shape) -> pb.Value:
    encoder = Encoder()
    return pb.Value(
        csr=pb.Sparse(
            shape=shape,
            data=encoder.array(np.asarray(data, dtype=np.float64)),
            indices=encoder.array(np.asarray(indices, dtype=np.int32)),
            indptr=encoder.array(np.asarray(indptr, dtype=np.int32)),
        )
    )


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (_csr_message([1, 2], [0, 7], [0, 1, 2], [2, 3]), "indices must be < 3"),
        (_csr_message([1, 2], [0, -1], [0, 1, 2], [2, 3]), "indices must be"),
        (_csr_message([1, 2], [0, 1], [0, 2, 1], [2, 3]), "non-decreasing"),
        (_csr_message([1, 2], [0, 1], [0, 1, 2], [5, 3]), "index pointer size 3 should be 6"),
        (_csr_message([1, 2], [0, 1], [0, 1, 9], [2, 3]), "invalid CSR matrix of shape"),
        (_csr_message([1, 2, 3], [0, 1], [0, 1, 2], [2, 3]), "invalid CSR matrix of shape"),
    ],
    ids=[
        "index-too-large", "negative-index", "decreasing-indptr", "indptr-length",
        "indptr-past-end", "data-indices-length",
    ],
)
def test_decoder_refuses_corrupt_csr(message, match):
    with pytest.raises(MalformedRequestError, match=match):
        decode_value(message, [])


# --- a value far over gRPC's default 4 MB message limit ---------------------------------------


def test_300mb_array_put_and_get_intact(client, tenant):
    sent = np.arange(300 * 2**20 // 8, dtype=np.float64)  # every 8-byte word distinct
    sent[::4097] *= -1.5  # and not only increasing
    start = time.perf_counter()
    (meta,) = client.execute(tenant, [Put("big", sent)])
    assert meta.shape == sent.shape and meta.dtype == "<f8"
    (got,) = client.execute(tenant, [Get("big")])
    elapsed = time.perf_counter() - start
    assert got.shape == sent.shape and got.dtype == sent.dtype
    assert np.array_equal(got, sent)
    client.execute(tenant, [Put("big", 0)])  # free the worker's copy now
    # Far from a benchmark; catches a regression to protobuf's slow path (~0.2 GB/s).
    assert elapsed < 15, f"PUT + GET of 300 MB took {elapsed:.1f} s"
