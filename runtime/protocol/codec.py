"""Typed payload codec: Python values <-> ``Value`` messages plus out-of-line byte buffers.

Arrays travel as raw little-endian bytes with their dtype and shape, CSR matrices as their three
arrays, scalars, lists and string-keyed dicts as themselves. Arrays up to ``INLINE_LIMIT`` bytes
ride inside the envelope; larger ones become numbered buffers that ``framing`` streams in chunks
and decodes straight into preallocated arrays. Only numeric and bool dtypes are accepted: nothing
is ever unpickled.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedla.runtime.errors import InvalidArgumentError, MalformedRequestError
from fedla.runtime.protocol import fedla_pb2 as pb

INLINE_LIMIT = 64 * 1024
"""Arrays of at most this many bytes travel inside the envelope instead of as a buffer.

Larger ones go out of line: assigning a large bytes field costs ~5 ms/MB in protobuf's Python
runtime, while the hand-written chunk frames move them at memory speed.
"""

MAX_DIMENSION = 2**63 - 1
"""Largest extent of one dimension (numpy and scipy index with signed 64-bit integers)."""

MAX_SPARSE_DIMENSION = 2**40
"""Largest extent of a CSR matrix's dimension: a transpose allocates an index array of the
other dimension's length, which scipy refuses with an untyped error far below 2**63."""

MAX_NDIM = 32
MAX_NESTING = 32
"""Deepest list/dict nesting a value may have (protobuf refuses to parse ~100 levels)."""
_ALLOWED_KINDS = "biufc"


class Encoder:
    """Turns Python values into ``Value`` messages, collecting large arrays as buffers.

    One encoder serves one envelope: the buffer indices it hands out refer to ``buffers``.
    """

    def __init__(self) -> None:
        self.buffers: list[memoryview] = []

    def value(self, obj: Any, depth: int = 0) -> pb.Value:
        """Encode ``obj`` (ndarray, CSR, scalar, None, str, list/tuple, dict) as a ``Value``."""
        if depth > MAX_NESTING:
            raise InvalidArgumentError(
                f"value nests lists/dicts more than {MAX_NESTING} levels deep; flatten it or "
                "send an array"
            )
        if obj is None:
            return pb.Value(none=pb.NoneValue())
        if isinstance(obj, (np.generic, complex)):  # keeps its dtype: a 0-d array on the wire
            return pb.Value(array=self.array(np.asarray(obj)))
        if isinstance(obj, bool):
            return pb.Value(bool_value=obj)
        if isinstance(obj, int):
            if not -(2**63) <= int(obj) < 2**63:
                raise InvalidArgumentError(f"integer {obj} does not fit in 64 bits")
            return pb.Value(int_value=int(obj))
        if isinstance(obj, float):
            return pb.Value(float_value=float(obj))
        if isinstance(obj, str):
            return pb.Value(str_value=obj)
        if isinstance(obj, np.ndarray):
            return pb.Value(array=self.array(obj))
        if sp.issparse(obj):
            return pb.Value(csr=self.csr(obj))
        if isinstance(obj, (list, tuple)):
            items = [self.value(item, depth + 1) for item in obj]
            return pb.Value(list=pb.ValueList(items=items))
        if isinstance(obj, dict):
            for key in obj:
                if not isinstance(key, str):
                    raise InvalidArgumentError(f"dict keys must be str to be sent; got {key!r}")
            entries = {key: self.value(item, depth + 1) for key, item in obj.items()}
            return pb.Value(map=pb.ValueMap(items=entries))
        raise InvalidArgumentError(
            f"cannot send a value of type {type(obj).__name__}; send an ndarray, a scipy CSR "
            "matrix, a scalar, a str, None, or a list/dict of those"
        )

    def array(self, arr: np.ndarray) -> pb.Array:
        """Encode a numeric/bool array: inline when small, else as a buffer (no copy if C-order)."""
        _check_dtype(arr.dtype)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        if not arr.flags.c_contiguous:  # not ascontiguousarray: it turns 0-d into 1-d
            arr = arr.copy(order="C")
        message = pb.Array(dtype=arr.dtype.str, shape=arr.shape)
        raw = memoryview(arr.reshape(-1)).cast("B")  # type: ignore[arg-type]
        if arr.nbytes <= INLINE_LIMIT:
            message.inline = bytes(raw)
        else:
            message.buffer = len(self.buffers)
            self.buffers.append(raw)
        return message

    def csr(self, matrix: Any) -> pb.Sparse:
        """Encode any scipy sparse matrix as CSR."""
        csr = sp.csr_array(matrix)
        return pb.Sparse(
            shape=csr.shape,
            data=self.array(csr.data),
            indices=self.array(csr.indices),
            indptr=self.array(csr.indptr),
        )


def decode_value(value: pb.Value, buffers: list[np.ndarray]) -> Any:
    """Decode a ``Value``; arrays backed by buffers reuse the buffer's memory (no copy)."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "none":
        return None
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "float_value":
        return value.float_value
    if kind == "str_value":
        return value.str_value
    if kind == "array":
        return decode_array(value.array, buffers)
    if kind == "csr":
        return _decode_csr(value.csr, buffers)
    if kind == "list":
        return [decode_value(item, buffers) for item in value.list.items]
    return {key: decode_value(item, buffers) for key, item in value.map.items.items()}


def decode_array(message: pb.Array, buffers: list[np.ndarray]) -> np.ndarray | np.generic:
    """Decode an ``Array``, validating dtype, shape and byte count; 0-d gives a numpy scalar."""
    try:
        dtype = np.dtype(message.dtype)
    except (TypeError, ValueError):
        raise MalformedRequestError(f"unknown dtype {message.dtype!r}") from None
    _check_dtype(dtype)
    if dtype.byteorder == ">" or dtype.subdtype is not None:
        raise MalformedRequestError(
            f"dtype {message.dtype!r} is not a little-endian scalar type as the protocol requires"
        )
    shape = tuple(int(n) for n in message.shape)
    if len(shape) > MAX_NDIM:
        raise MalformedRequestError(f"array has {len(shape)} dimensions; at most {MAX_NDIM}")
    _check_extents(shape, "array")
    expected = dtype.itemsize * math.prod(shape)  # Python ints: no overflow
    if message.WhichOneof("data") == "buffer":
        if message.buffer >= len(buffers):
            raise MalformedRequestError(
                f"array refers to buffer {message.buffer} but only {len(buffers)} were sent"
            )
        raw = buffers[message.buffer]
    else:
        # Copy the small inline payload so results are writable like any numpy array.
        raw = np.frombuffer(message.inline, dtype=np.uint8).copy()
    if raw.nbytes != expected:
        raise MalformedRequestError(
            f"array of dtype {dtype} and shape {shape} needs {expected} bytes; got {raw.nbytes}"
        )
    try:
        array = raw.view(dtype).reshape(shape)
    except (ValueError, OverflowError) as exc:  # e.g. a zero-size array with an absurd shape
        raise MalformedRequestError(f"array of shape {shape} cannot be built: {exc}") from None
    return array[()] if array.ndim == 0 else array  # 0-d arrays arrive as numpy scalars


def _decode_csr(message: pb.Sparse, buffers: list[np.ndarray]) -> sp.csr_array:
    shape = tuple(int(n) for n in message.shape)
    if len(shape) != 2:
        raise MalformedRequestError(f"a CSR matrix must be 2-D; got shape {shape}")
    _check_extents(shape, "CSR matrix")
    if any(n > MAX_SPARSE_DIMENSION for n in shape):
        raise MalformedRequestError(
            f"CSR matrix of shape {shape} has a dimension over {MAX_SPARSE_DIMENSION} (2**40)"
        )
    data = decode_array(message.data, buffers)
    indices = decode_array(message.indices, buffers)
    indptr = decode_array(message.indptr, buffers)
    try:
        matrix = sp.csr_array((data, indices, indptr), shape=shape)
        # A full check keeps corrupt index arrays from reaching scipy's unchecked C++ loops.
        matrix.check_format(full_check=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise MalformedRequestError(f"invalid CSR matrix of shape {shape}: {exc}") from None
    return matrix


def _check_extents(shape: tuple[int, ...], what: str) -> None:
    if any(n > MAX_DIMENSION for n in shape):
        raise MalformedRequestError(
            f"{what} of shape {shape} has a dimension over {MAX_DIMENSION} (2**63 - 1)"
        )


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.hasobject:
        raise InvalidArgumentError(
            f"dtype {dtype} cannot be sent; only bool, integer, float and complex arrays can"
        )
