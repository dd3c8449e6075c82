"""Kernels that cut, flip and join blocks: slice, transpose, cbind, rbind and assemble.

A federated matrix is a grid of blocks, so these are the per-block halves of indexing and
concatenation; the coordinator works out which block ranges to ask for. ``assemble`` is the
receiving half of a ``Repartition``: it puts the pieces a site is sent (and the ones it kept) into
one block by their offsets. Sparse blocks stay CSR
(``scipy.sparse.csr_array``) whenever every input is sparse. The module also holds
:func:`canonical_csr`, the one place that turns any sparse block into a CSR with sorted, unique
column indices, which the elementwise and reduction kernels need before touching ``.data``,
and :func:`block_shape`, the shared check that an operand is a 2-D block.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from fedla.runtime.kernels.backend import Backend
from fedla.runtime.kernels.registry import kernel


def canonical_csr(x: Any) -> Any:
    """Return sparse ``x`` as CSR with sorted, duplicate-free column indices.

    Parameters
    ----------
    x : scipy.sparse matrix or array
        A 2-D sparse block in any format.

    Returns
    -------
    scipy.sparse.csr_array or scipy.sparse.csr_matrix
        ``x`` itself when it already is canonical CSR, otherwise a new CSR; ``x`` is never
        modified, so kernels can work on ``.data``, ``.indices`` and ``.indptr`` directly.
    """
    if x.format != "csr":
        return x.tocsr()  # conversion sums duplicates and sorts
    if x.has_canonical_format:
        return x
    x = x.copy()  # sum_duplicates works in place; the caller's block must not change
    x.sum_duplicates()
    return x


def block_shape(block: Any, name: str) -> tuple[int, int]:
    """Return the shape of a 2-D block, or fail as an invalid argument of kernel ``name``.

    Parameters
    ----------
    block : ndarray or scipy.sparse matrix or array
        Anything with a ``shape``; scalars and 1-D arrays are rejected.
    name : str
        Kernel name for the error message.

    Returns
    -------
    tuple of int
        ``(n, m)``.

    Raises
    ------
    InvalidArgumentError
        If ``block`` is not 2-D.
    """
    shape = getattr(block, "shape", None)
    if shape is None or len(shape) != 2:
        raise InvalidArgumentError(
            f"{name}: expected a 2-D block; got {type(block).__name__} of shape {shape} instead"
        )
    return int(shape[0]), int(shape[1])


def _range(bounds: Sequence[int] | None, size: int, what: str, shape: tuple[int, int]) -> slice:
    """Validate a half-open ``(start, stop)`` range against a dimension of length ``size``."""
    if bounds is None:
        return slice(0, size)
    try:
        start, stop = (operator.index(bound) for bound in bounds)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"slice: {what} must be a pair of integers (start, stop) or None; "
            f"got {bounds!r} instead"
        ) from None
    if not 0 <= start <= stop <= size:
        raise InvalidArgumentError(
            f"slice: {what}=({start}, {stop}) is out of range for a block of shape {shape}; "
            f"expected 0 <= start <= stop <= {size}"
        )
    return slice(start, stop)


@kernel("slice")
def slice_block(
    backend: Backend,
    x: Any,
    rows: Sequence[int] | None = None,
    cols: Sequence[int] | None = None,
) -> Any:
    """Cut the contiguous sub-block ``x[rows[0]:rows[1], cols[0]:cols[1]]``.

    Parameters
    ----------
    backend : Backend
        Array libraries of ``x``.
    x : ndarray or scipy.sparse CSR of shape (n, m)
        The block.
    rows, cols : (start, stop) or None, default None
        Half-open ranges local to this block, ``0 <= start <= stop <= n`` (resp. ``m``);
        None keeps the whole dimension.

    Returns
    -------
    ndarray or scipy.sparse.csr_array of shape (rows[1] - rows[0], cols[1] - cols[0])
        A view for dense ``x`` (no copy; it keeps ``x`` alive), a ``csr_array`` for sparse ``x``.

    Raises
    ------
    InvalidArgumentError
        If a range is not a pair of integers or does not fit the block.
    """
    shape = block_shape(x, "slice")
    index = (_range(rows, shape[0], "rows", shape), _range(cols, shape[1], "cols", shape))
    if backend.issparse(x):
        return backend.sparse.csr_array(canonical_csr(x)[index])
    return x[index]


@kernel("transpose")
def transpose(backend: Backend, x: Any) -> Any:
    """Transpose a block.

    Parameters
    ----------
    backend : Backend
        Array libraries of ``x``.
    x : ndarray or scipy.sparse CSR of shape (n, m)
        The block.

    Returns
    -------
    ndarray or scipy.sparse.csr_array of shape (m, n)
        ``x.T`` (a view) for dense ``x``; a new ``csr_array`` for sparse ``x``.
    """
    block_shape(x, "transpose")
    if backend.issparse(x):
        return backend.sparse.csr_array(x.T)  # x.T is CSC; csr_array converts it
    return x.T


def _bind(backend: Backend, blocks: tuple[Any, ...], axis: int, name: str) -> Any:
    """Concatenate ``blocks`` along ``axis`` after checking the other dimension agrees."""
    if not blocks:
        raise InvalidArgumentError(f"{name}: expected at least one block; got none")
    shapes = [block_shape(block, name) for block in blocks]
    kept = 1 - axis
    for shape in shapes[1:]:
        if shape[kept] != shapes[0][kept]:
            what = "row" if kept == 0 else "column"
            raise ShapeMismatchError(
                f"{name}: blocks of shapes {shapes[0]} and {shape} have different {what} counts "
                f"({shapes[0][kept]} != {shape[kept]})"
            )
    sparse = backend.sparse
    if all(sparse.issparse(block) for block in blocks):
        stack = sparse.hstack if axis == 1 else sparse.vstack
        return sparse.csr_array(stack(blocks, format="csr"))
    dense = [block.toarray() if sparse.issparse(block) else block for block in blocks]
    return backend.xp.concat(dense, axis=axis)


@kernel("cbind")
def cbind(backend: Backend, *blocks: Any) -> Any:
    """Join blocks side by side (``hstack``).

    Parameters
    ----------
    backend : Backend
        Array libraries of the blocks.
    *blocks : ndarray or scipy.sparse CSR, each of shape (n, m_i)
        At least one block; all with the same number of rows.

    Returns
    -------
    ndarray or scipy.sparse.csr_array of shape (n, sum(m_i))
        A ``csr_array`` when every block is sparse, otherwise a dense ndarray.

    Raises
    ------
    ShapeMismatchError
        If the row counts differ.
    """
    return _bind(backend, blocks, axis=1, name="cbind")


@kernel("rbind")
def rbind(backend: Backend, *blocks: Any) -> Any:
    """Stack blocks on top of each other (``vstack``).

    Parameters
    ----------
    backend : Backend
        Array libraries of the blocks.
    *blocks : ndarray or scipy.sparse CSR, each of shape (n_i, m)
        At least one block; all with the same number of columns.

    Returns
    -------
    ndarray or scipy.sparse.csr_array of shape (sum(n_i), m)
        A ``csr_array`` when every block is sparse, otherwise a dense ndarray.

    Raises
    ------
    ShapeMismatchError
        If the column counts differ.
    """
    return _bind(backend, blocks, axis=0, name="rbind")


def _pair(value: Any, what: str) -> tuple[int, int]:
    """``value`` as a pair of integers >= 0, or fail naming ``what``."""
    try:
        first, second = (operator.index(item) for item in value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"assemble: {what} must be a pair of integers [row, col]; got {value!r} instead"
        ) from None
    if first < 0 or second < 0:
        raise InvalidArgumentError(f"assemble: {what} must be >= 0; got {value!r} instead")
    return first, second


def _tiles(
    pieces: tuple[Any, ...], shape: Any, offsets: Any
) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """Check that the pieces tile ``shape``; return it and each piece's (row, col, n, m)."""
    if not pieces:
        raise InvalidArgumentError("assemble: expected at least one piece; got none")
    rows, cols = _pair(shape, "shape")
    if not isinstance(offsets, Sequence) or len(offsets) != len(pieces):
        raise InvalidArgumentError(
            f"assemble: offsets must list one [row, col] per piece ({len(pieces)}); "
            f"got {offsets!r:.200} instead"
        )
    tiles = []
    for number, (piece, offset) in enumerate(zip(pieces, offsets)):
        row, col = _pair(offset, f"offsets[{number}]")
        n, m = block_shape(piece, "assemble")
        if row + n > rows or col + m > cols:
            raise ShapeMismatchError(
                f"assemble: piece {number} of shape {(n, m)} at offset {[row, col]} reaches "
                f"{[row + n, col + m]}, outside the result of shape {[rows, cols]}"
            )
        tiles.append((row, col, n, m))
    area = sum(n * m for _, _, n, m in tiles)
    if area != rows * cols:
        raise ShapeMismatchError(
            f"assemble: the pieces cover {area} entries but the result of shape {[rows, cols]} "
            f"has {rows * cols}; the pieces must tile it exactly (shapes and offsets: "
            f"{[((n, m), [r, c]) for r, c, n, m in tiles]!r:.300})"
        )
    # equal area and no overlap (inside the bounds) leave no gap; k pieces, k^2 / 2 tests
    for first in range(len(tiles)):
        r0, c0, n0, m0 = tiles[first]
        for second in range(first + 1, len(tiles)):
            r1, c1, n1, m1 = tiles[second]
            if r0 < r1 + n1 and r1 < r0 + n0 and c0 < c1 + m1 and c1 < c0 + m0:
                raise ShapeMismatchError(
                    f"assemble: piece {second} of shape {(n1, m1)} at offset {[r1, c1]} overlaps "
                    f"piece {first} of shape {(n0, m0)} at offset {[r0, c0]}"
                )
    return (rows, cols), tiles


@kernel("assemble")
def assemble(backend: Backend, *pieces: Any, shape: Any, offsets: Any) -> Any:
    """Put pieces together into one block by their top-left corners (for ``Repartition``).

    Parameters
    ----------
    backend : Backend
        Array libraries of the pieces.
    *pieces : ndarray or scipy.sparse, each of shape (n_i, m_i)
        At least one piece; dense and sparse may be mixed.
    shape : [rows, cols]
        Shape of the result.
    offsets : list of [row, col]
        Where each piece's top-left corner goes, one per piece. The pieces must tile the
        result exactly: inside its bounds, no overlaps, no gaps.

    Returns
    -------
    ndarray or scipy.sparse.csr_array of shape (rows, cols)
        A ``csr_array`` when every piece is sparse, otherwise a dense array; the dtype is the
        ``result_type`` of the pieces' dtypes.

    Raises
    ------
    InvalidArgumentError
        If there is no piece, ``shape`` or an offset is not a pair of integers >= 0, the
        number of offsets differs from the number of pieces, or a piece is not 2-D.
    ShapeMismatchError
        If a piece reaches outside the result, two pieces overlap, or the pieces leave a gap.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.runtime.kernels import run_kernel
    >>> top, bottom = np.ones((1, 3)), np.zeros((2, 3))
    >>> run_kernel("assemble", [bottom, top], {"shape": [3, 3], "offsets": [[1, 0], [0, 0]]})
    array([[1., 1., 1.],
           [0., 0., 0.],
           [0., 0., 0.]])
    """
    (rows, cols), tiles = _tiles(pieces, shape, offsets)
    xp, sparse = backend.xp, backend.sparse
    dtype = xp.result_type(*(piece.dtype for piece in pieces))
    if all(sparse.issparse(piece) for piece in pieces):
        am = backend.array_module
        coos = [piece.tocoo() for piece in pieces]
        data = am.concatenate([coo.data.astype(dtype, copy=False) for coo in coos])
        row_ids = am.concatenate(
            [coo.row.astype(am.int64) + r for coo, (r, _, _, _) in zip(coos, tiles)]
        )
        col_ids = am.concatenate(
            [coo.col.astype(am.int64) + c for coo, (_, c, _, _) in zip(coos, tiles)]
        )
        return sparse.csr_array((data, (row_ids, col_ids)), shape=(rows, cols))
    result = xp.empty((rows, cols), dtype=dtype)  # every entry is written: the tiling is exact
    for piece, (r, c, n, m) in zip(pieces, tiles):
        dense = piece.toarray() if sparse.issparse(piece) else piece
        result[r : r + n, c : c + m] = xp.astype(dense, dtype, copy=False)
    return result
