"""Lineage keys: one canonical binary encoding of values, hashed to 128 bits.

``lineage_key(*parts)`` keys a computation by what determines its result (an op name, its
attributes, the keys or values of its inputs); ``content_key(value)`` keys a local array, CSR
matrix or scalar by its content. Both write every part as a type tag followed by length-prefixed
content and hash the bytes with BLAKE2b, so:

- equal values give equal keys in every process and numpy version (no ``repr``, which elides
  large arrays and changes between versions);
- values of different types differ (``1``, ``1.0``, ``True``, ``"1"`` and ``np.int64(1)`` are
  five keys), as do arrays differing in one element, dtype or shape, and lists in another order;
- dict keys are sorted (strings as strings, other keys by their encoding), so insertion order
  does not matter;
- tuples and lists encode alike (the wire turns one into the other);
- a CSR matrix is keyed in canonical form (duplicates summed, indices sorted, int64 indices),
  so equal matrices give equal keys however they were built.

Arrays contribute their dtype, shape and a BLAKE2b digest of their C-contiguous bytes; numpy
scalars and 0-d arrays are 0-d arrays of their dtype. ``Enum`` members count by value.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np
import scipy.sparse as sp

KEY_BYTES = 16
"""Bytes of a key (128 bits; 32 hex digits)."""

Sink = Callable[[bytes], None]


def lineage_key(*parts: Any) -> str:
    """The 128-bit hex key of ``parts``, in order.

    Parameters
    ----------
    *parts : str, bytes, bool, int, float, None, tuple, list, dict, Enum, ndarray, numpy scalar \
or scipy sparse matrix
        Nested containers of these are fine.

    Returns
    -------
    str
        32 hex digits.

    Raises
    ------
    TypeError
        If a part (or an item inside one) has another type, or is an array of objects.
    """
    # Part by part (not as one container): a part that is plain is checked and written once.
    pieces: list[bytes] = [b"L" + _length(len(parts))]
    for part in parts:
        _write(part, pieces.append)
    return hashlib.blake2b(b"".join(pieces), digest_size=KEY_BYTES).hexdigest()


def content_key(value: Any) -> str:
    """The key of a local value (array, CSR matrix, scalar): ``lineage_key(value)``."""
    return lineage_key(value)


_length: Callable[[int], bytes] = struct.Struct("<Q").pack
_double: Callable[[float], bytes] = struct.Struct("<d").pack


def _write(value: Any, sink: Sink, small: bool = False) -> None:  # noqa: C901 - one per tag
    # The exact built-in types first: keys are mostly strings and tuples of them, and a plan
    # writes thousands (subclasses, e.g. IntEnum or np.float64, take the checks below).
    # ``small``: the value lies inside a plain container of at most _JSON_FROM items, so none
    # of its own containers is large enough for JSON (no need to measure them again).
    kind = type(value)
    if kind is str:
        raw = value.encode("utf-8", "surrogatepass")
        sink(b"S" + _length(len(raw)) + raw)
        return
    size = -1
    if not small and (kind is tuple or kind is list or kind is dict):
        size = _plain_size(value)
    small = small or size >= 0
    if size > _JSON_FROM:
        # Large containers of plain Python values (fused programs, long key lists): JSON
        # written in C, with sorted keys; tuples and lists alike, 1, 1.0, True and "1" apart.
        raw = json.dumps(value, sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8", "surrogatepass")
        sink(b"J" + _length(len(raw)) + raw)
        return
    if kind is tuple or kind is list:
        sink(b"L" + _length(len(value)))
        for item in value:
            _write(item, sink, small)
        return
    if kind is int:
        raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        sink(b"I" + _length(len(raw)) + raw)
        return
    if kind is float:
        sink(b"D" + _double(value))
        return
    if kind is dict and all(type(key) is str for key in value):
        # String keys sort as strings; any other keys by their encoding (below).
        sink(b"M" + _length(len(value)))
        for key in sorted(value):
            _write(key, sink)
            _write(value[key], sink, small)
        return
    # numpy scalars next: np.float64 is a float and np.bool_ would otherwise miss ``bool``.
    if isinstance(value, (np.ndarray, np.generic)):
        _write_array(np.asarray(value), sink)
    elif sp.issparse(value):
        _write_sparse(value, sink)
    elif value is None:
        sink(b"N")
    elif isinstance(value, Enum):
        sink(b"E")
        _write(value.value, sink)
    elif isinstance(value, bool):
        sink(b"T" if value else b"F")
    elif isinstance(value, int):
        raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        sink(b"I" + _length(len(raw)) + raw)
    elif isinstance(value, float):
        sink(b"D" + _double(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        sink(b"S" + _length(len(raw)) + raw)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        sink(b"Y" + _length(len(raw)) + raw)
    elif isinstance(value, (tuple, list)):
        sink(b"L" + _length(len(value)))
        for item in value:
            _write(item, sink)
    elif isinstance(value, dict):
        sink(b"M" + _length(len(value)))
        for key_bytes, item in sorted(((_encoded(key), item) for key, item in value.items()),
                                      key=lambda pair: pair[0]):
            sink(key_bytes)
            _write(item, sink)
    else:
        raise TypeError(
            f"cannot compute a lineage key of a {type(value).__module__}.{type(value).__name__}; "
            "keys cover str, bytes, bool, int, float, None, tuple, list, dict, Enum, numpy "
            "arrays and scalars, and scipy sparse matrices"
        )


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


_JSON_FROM = 16
"""Containers of more plain items than this are written as JSON (its fixed cost is ~4 us)."""


def is_plain(value: Any) -> bool:
    """Whether ``value`` holds only exact str/int/float/bool/None, lists, tuples, str-keyed dicts.

    Exact types: a numpy scalar is a ``float`` subclass that JSON would write as a float. A
    plain value holds no array, so a result computed from plain constants and shared files may
    be shared across tenants.
    """
    return _plain_size(value) >= 0


def _plain_size(value: Any) -> int:
    """The number of items of a plain ``value`` (see ``is_plain``), or -1 if it is not plain."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        size += 1
        kind = type(item)
        if kind in _PLAIN_SCALARS:
            continue
        if kind is list or kind is tuple:
            stack.extend(item)
        elif kind is dict:
            for key in item:
                if type(key) is not str:
                    return -1
            stack.extend(item.values())
        else:
            return -1
    return size


def _encoded(value: Any) -> bytes:
    pieces: list[bytes] = []
    _write(value, pieces.append)
    return b"".join(pieces)


def _write_array(array: np.ndarray, sink: Sink) -> None:
    if array.dtype.hasobject or array.dtype.fields is not None:
        raise TypeError(
            f"cannot compute a lineage key of an array of dtype {array.dtype}; only arrays of "
            "plain bool, number, string or datetime dtypes have a content to key"
        )
    if array.dtype.byteorder == ">":  # equal values, equal keys, whatever the byte order
        array = array.astype(array.dtype.newbyteorder("<"))
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    dtype = array.dtype.str.encode()
    content = hashlib.blake2b(memoryview(array.reshape(-1)).cast("B"),  # type: ignore[arg-type]
                              digest_size=KEY_BYTES)
    sink(b"A" + _length(len(dtype)) + dtype + _length(array.ndim))
    sink(b"".join(_length(n) for n in array.shape) + content.digest())


def _write_sparse(matrix: Any, sink: Sink) -> None:
    csr = sp.csr_array(matrix)
    if not csr.has_canonical_format:
        csr = csr.copy()  # sum_duplicates sorts and sums in place: keep the caller's matrix
        csr.sum_duplicates()
    sink(b"C" + b"".join(_length(n) for n in csr.shape))
    _write_array(csr.data, sink)
    _write_array(csr.indices.astype(np.int64, copy=False), sink)
    _write_array(csr.indptr.astype(np.int64, copy=False), sink)
