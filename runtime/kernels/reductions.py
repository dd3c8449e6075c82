"""Reductions as Dask-style triples: per-block ``partition``, associative ``combine``, ``finalize``.

A worker reduces its block to a partial, a small dict of named statistics (``{"n", "total"}`` for
a mean); the coordinator folds partials with ``combine``, in any tree shape since it is
associative, and ``finalize`` turns the folded partial into the answer. Partials combine across
blocks split *along* the reduced axis (row blocks for axis 0, column blocks for axis 1, any split
for axis None); blocks split across it reduce independently and the coordinator concatenates
their finalized results.

Shapes follow numpy's ``keepdims``: axis None gives 0-d partials and a numpy scalar, axis 0 gives
(1, m), axis 1 gives (n, 1). Sparse blocks count their implicit zeros, give dense results and are
never densified; NaN propagates as in numpy (``argmax``/``argmin`` pick the first NaN).

Dense blocks are reduced with the backend's array-API namespace. Two narrow fallbacks keep numpy's
results where the standard is stricter: bool blocks are summed as int64 (numpy counts the
Trues; the array API sums numbers only), and integer and bool blocks are cast to float64 before
``var`` subtracts their float mean.

References
----------
.. [1] T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a pairwise algorithm for
   computing sample variances", Stanford CS report STAN-CS-79-773, 1979 (the ``var`` combine).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError, UnknownKernelError
from fedla.runtime.kernels.backend import Backend, backend_of
from fedla.runtime.kernels.indexing import block_shape, canonical_csr
from fedla.runtime.kernels.registry import kernel

Partial = dict[str, Any]


@dataclass(frozen=True)
class Reduction:
    """One reduction: how a block is summarised, how summaries merge, how the answer is read.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"var"``.
    partition : callable
        ``partition(backend, x, axis, **partition_attrs) -> Partial`` for one block ``x``.
    combine : callable
        ``combine(a, b) -> Partial``; associative, and ``a`` covers indices before ``b`` when
        the order matters (it does not for any reduction here).
    finalize : callable
        ``finalize(partial, **finalize_attrs) -> result``.
    partition_attrs, finalize_attrs : tuple of str
        Names of the attributes each phase takes (``offset`` for arg-reductions, ``ddof`` for
        ``var``).
    """

    name: str
    partition: Callable[..., Partial]
    combine: Callable[[Partial, Partial], Partial]
    finalize: Callable[..., Any]
    partition_attrs: tuple[str, ...] = ()
    finalize_attrs: tuple[str, ...] = ()

    def split_attrs(self, attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split one attribute dict into the partition's and the finalize's keyword arguments.

        Both phases may be handed the same dict, so each ignores the other's attributes.

        Raises
        ------
        InvalidArgumentError
            If an attribute belongs to neither phase.
        """
        unknown = sorted(set(attrs) - set(self.partition_attrs) - set(self.finalize_attrs))
        if unknown:
            expected = ", ".join(self.partition_attrs + self.finalize_attrs) or "none"
            raise InvalidArgumentError(
                f"{self.name}: unknown attribute(s) {', '.join(map(repr, unknown))}; "
                f"expected: {expected}"
            )
        return (
            {key: attrs[key] for key in self.partition_attrs if key in attrs},
            {key: attrs[key] for key in self.finalize_attrs if key in attrs},
        )


# --- shared pieces ---------------------------------------------------------------------------


def _check_axis(name: str, axis: Any) -> int | None:
    if axis is None:
        return None
    if isinstance(axis, bool) or axis not in (0, 1):
        raise InvalidArgumentError(f"{name}: axis must be None, 0 or 1; got {axis!r} instead")
    return int(axis)


def _keepdims(backend: Backend, values: Any, axis: int | None) -> Any:
    """Put a reduction of an (n, m) block in keepdims form: 0-d, (1, m) or (n, 1)."""
    xp = backend.xp
    if backend.issparse(values):  # scipy's min/max along an axis come back sparse
        values = values.toarray()
    values = xp.asarray(values)  # also turns np.matrix from csr_matrix into ndarray
    if axis is None:
        return xp.reshape(values, ())
    return xp.reshape(values, (1, -1) if axis == 0 else (-1, 1))


def _reduce(backend: Backend, how: str, x: Any, axis: int | None, **kwargs: Any) -> Any:
    """``sum``, ``min`` or ``max`` of a dense or sparse block, implicit zeros included."""
    if backend.issparse(x):
        # canonical first: scipy would otherwise sum duplicates in the caller's block in place
        return _keepdims(backend, getattr(canonical_csr(x), how)(axis=axis, **kwargs), axis)
    reduced = getattr(backend.xp, how)(x, axis=axis, keepdims=axis is not None, **kwargs)
    return _keepdims(backend, reduced, axis)


def _summable(backend: Backend, x: Any) -> Any:
    """A dense bool block as int64, which numpy's sum gives; other blocks unchanged."""
    xp = backend.xp
    if not backend.issparse(x) and xp.isdtype(x.dtype, "bool"):
        return xp.astype(x, xp.int64)
    return x


def _with_data(backend: Backend, x: Any, data: Any) -> Any:
    """Replace the stored values of canonical CSR ``x``, sharing its index arrays."""
    return backend.sparse.csr_array((data, x.indices, x.indptr), shape=x.shape)


def _count(x: Any, axis: int | None) -> np.int64:
    """How many entries each output position reduces over."""
    n, m = x.shape
    return np.int64(n * m if axis is None else x.shape[axis])


def _float_accumulator(backend: Backend, dtype: Any) -> Any:
    """float64 for integer and bool blocks, as numpy's ``mean`` and ``var`` use; else None."""
    xp = backend.xp
    return xp.float64 if xp.isdtype(dtype, ("bool", "integral")) else None


def _isnan(xp: Any, values: Any) -> Any:
    if xp.isdtype(values.dtype, ("real floating", "complex floating")):
        return xp.isnan(values)
    return xp.zeros(values.shape, dtype=xp.bool)  # isnan has no bool loop; ints are never NaN


def _result(value: Any) -> Any:
    """Turn a 0-d result into a numpy scalar (``np.float64``, ``np.int64``); keep blocks."""
    return value[()] if value.ndim == 0 else value


def _shape(value: Any) -> tuple[int, ...]:
    """Shape of a partial's statistic: ``()`` for Python and numpy scalars."""
    return tuple(getattr(value, "shape", ()))


def _add(*keys: str) -> Callable[[Partial, Partial], Partial]:
    def combine(a: Partial, b: Partial) -> Partial:
        return {key: a[key] + b[key] for key in keys}

    return combine


def _finalize_key(key: str) -> Callable[[Partial], Any]:
    def finalize(partial: Partial) -> Any:
        return _result(partial[key])

    return finalize


# --- sum, sumsq, nnz -------------------------------------------------------------------------


def _sum_partition(backend: Backend, x: Any, axis: int | None) -> Partial:
    return {"total": _reduce(backend, "sum", _summable(backend, x), axis)}


def _sumsq_partition(backend: Backend, x: Any, axis: int | None) -> Partial:
    if backend.issparse(x):
        x = canonical_csr(x)
        squares = _with_data(backend, x, backend.array_module.square(x.data))
        return {"total": _reduce(backend, "sum", squares, axis)}
    return {"total": _reduce(backend, "sum", backend.xp.square(_summable(backend, x)), axis)}


def _nnz_partition(backend: Backend, x: Any, axis: int | None) -> Partial:
    xp = backend.xp
    if backend.issparse(x):
        x = canonical_csr(x)
        stored = _with_data(backend, x, x.data != 0)  # explicit zeros do not count
        count = _reduce(backend, "sum", stored, axis)
    else:
        count = _keepdims(backend, xp.count_nonzero(x, axis=axis), axis)
    return {"count": xp.astype(count, xp.int64)}


# --- min, max --------------------------------------------------------------------------------


def _extreme_partition(how: str) -> Callable[[Backend, Any, int | None], Partial]:
    def partition(backend: Backend, x: Any, axis: int | None) -> Partial:
        return {"value": _reduce(backend, how, x, axis)}

    return partition


def _extreme_combine(how: str) -> Callable[[Partial, Partial], Partial]:
    def combine(a: Partial, b: Partial) -> Partial:
        xp = backend_of(a["value"], b["value"]).xp
        return {"value": getattr(xp, how)(a["value"], b["value"])}  # NaN-propagating

    return combine


# --- mean, var -------------------------------------------------------------------------------


def _mean_partition(backend: Backend, x: Any, axis: int | None) -> Partial:
    accumulator = _float_accumulator(backend, x.dtype)
    total = _reduce(backend, "sum", _summable(backend, x), axis, dtype=accumulator)
    return {"n": _count(x, axis), "total": total}


def _mean_finalize(partial: Partial) -> Any:
    return _result(partial["total"] / int(partial["n"]))  # a Python int keeps float32 float32


def _var_partition(backend: Backend, x: Any, axis: int | None) -> Partial:
    xp, am = backend.xp, backend.array_module
    n = _count(x, axis)
    accumulator = _float_accumulator(backend, x.dtype)
    if not backend.issparse(x):
        if accumulator is not None:  # x - mean would mix integers and floats
            x = xp.astype(x, accumulator)
        mean = _reduce(backend, "sum", x, axis) / int(n)
        return {"n": n, "mean": mean, "m2": _reduce(backend, "sum", xp.square(x - mean), axis)}
    mean = _reduce(backend, "sum", x, axis, dtype=accumulator) / int(n)
    # m2 = sum over stored entries of (x - mean)^2 + (number of implicit zeros) * mean^2
    x = canonical_csr(x)
    if axis is None:
        mean_at = mean
    elif axis == 1:
        mean_at = am.repeat(mean[:, 0], am.diff(x.indptr))
    else:
        mean_at = mean[0, x.indices]
    stored = _reduce(backend, "sum", _with_data(backend, x, am.square(x.data - mean_at)), axis)
    ones = am.ones(x.data.size, dtype=am.int64)
    n_stored = _reduce(backend, "sum", _with_data(backend, x, ones), axis)
    implicit = (n - n_stored).astype(mean.dtype)  # int64 counts would promote float32 to float64
    return {"n": n, "mean": mean, "m2": stored + implicit * am.square(mean)}


def _var_combine(a: Partial, b: Partial) -> Partial:
    """Merge two (n, mean, m2) summaries with the pairwise update of Chan et al. [1]_.

    ``delta = mean_b - mean_a``, ``mean = mean_a + delta * n_b / n`` and
    ``m2 = m2_a + m2_b + delta**2 * n_a * n_b / n`` with ``n = n_a + n_b``.
    """
    n_a, n_b = int(a["n"]), int(b["n"])  # Python numbers keep float32 statistics float32
    n = n_a + n_b
    delta = b["mean"] - a["mean"]
    return {
        "n": np.int64(n),
        "mean": a["mean"] + delta * (n_b / n),
        "m2": a["m2"] + b["m2"] + delta * delta * (n_a * n_b / n),
    }


def _var_finalize(partial: Partial, ddof: float = 0) -> Any:
    if isinstance(ddof, bool) or not isinstance(ddof, numbers.Real) or ddof < 0:
        raise InvalidArgumentError(f"var: ddof must be a number >= 0; got {ddof!r} instead")
    # like numpy: n - ddof <= 0 divides by zero (inf or nan, with a RuntimeWarning)
    return _result(partial["m2"] / float(max(int(partial["n"]) - ddof, 0)))


# --- argmax, argmin --------------------------------------------------------------------------


def _sparse_arg(backend: Backend, x: Any, axis: int, largest: bool) -> tuple[Any, Any]:
    """Index and value of the first maximum (minimum) of each row or column of a sparse block.

    Vectorised over lines; scipy's own ``argmax`` loops in Python over lines and ignores NaN.
    A line's answer is its best stored entry unless an implicit zero beats it, or ties it at a
    lower index; the lowest implicit zero of a line is its first column missing from the sorted
    indices.
    """
    am = backend.array_module
    x = canonical_csr(x)
    lines = x if axis == 1 else x.tocsc()  # CSC of a canonical CSR is canonical too
    n_lines, length = (x.shape[0], x.shape[1]) if axis == 1 else (x.shape[1], x.shape[0])
    indptr, indices, data = lines.indptr, lines.indices, lines.data
    counts = am.diff(indptr)
    index = am.zeros(n_lines, dtype=am.int64)  # an empty line's first zero is at 0
    value = am.zeros(n_lines, dtype=x.dtype)
    filled = am.flatnonzero(counts)
    if filled.size == 0:
        return index, value
    starts = indptr[filled]
    extreme = (am.maximum if largest else am.minimum).reduceat(data, starts)  # NaN wins
    line_of = am.repeat(am.arange(n_lines), counts)
    extreme_at = am.zeros(n_lines, dtype=x.dtype)
    extreme_at[filled] = extreme
    extreme_at = extreme_at[line_of]
    both_nan = _isnan(backend.xp, data) & _isnan(backend.xp, extreme_at)
    hits = am.flatnonzero((data == extreme_at) | both_nan)
    best = indices[hits[am.unique(line_of[hits], return_index=True)[1]]]
    position = am.arange(data.size) - indptr[line_of]
    first_gap = am.minimum(
        am.minimum.reduceat(am.where(indices != position, position, length), starts),
        counts[filled],
    )
    zero = x.dtype.type(0)
    beats = am.greater if largest else am.less
    # a NaN extreme is never beaten: every comparison with NaN is False
    zero_wins = (first_gap < length) & (
        beats(zero, extreme) | ((extreme == zero) & (first_gap < best))
    )
    index[filled] = am.where(zero_wins, first_gap, best)
    value[filled] = am.where(zero_wins, zero, extreme)
    return index, value


def _arg_partition(largest: bool, name: str) -> Callable[..., Partial]:
    def partition(backend: Backend, x: Any, axis: int | None, offset: int = 0) -> Partial:
        if axis is None:
            raise InvalidArgumentError(
                f"{name}: axis must be 0 or 1; got None instead (a flat index over a federated "
                f"matrix needs its global shape: reduce along an axis first)"
            )
        if isinstance(offset, bool) or not isinstance(offset, numbers.Integral) or offset < 0:
            raise InvalidArgumentError(
                f"{name}: offset must be an integer >= 0 (the block's first global index along "
                f"axis {axis}); got {offset!r} instead"
            )
        xp = backend.xp
        if backend.issparse(x):
            index, value = _sparse_arg(backend, x, axis, largest)
            index, value = _keepdims(backend, index, axis), _keepdims(backend, value, axis)
        else:
            arg = xp.argmax if largest else xp.argmin
            index = arg(x, axis=axis, keepdims=True)
            value = xp.take_along_axis(x, index, axis=axis)
        return {"index": xp.astype(index, xp.int64) + offset, "value": value}

    return partition


def _arg_combine(largest: bool) -> Callable[[Partial, Partial], Partial]:
    def combine(a: Partial, b: Partial) -> Partial:
        # numpy's rule: the first NaN wins, else the best value, ties going to the lower index
        xp = backend_of(a["value"], b["value"]).xp
        a_nan, b_nan = _isnan(xp, a["value"]), _isnan(xp, b["value"])
        lower = b["index"] < a["index"]
        beats = xp.greater if largest else xp.less
        take_b = xp.where(
            a_nan,
            b_nan & lower,
            b_nan | beats(b["value"], a["value"]) | ((b["value"] == a["value"]) & lower),
        )
        return {
            "index": xp.where(take_b, b["index"], a["index"]),
            "value": xp.where(take_b, b["value"], a["value"]),
        }

    return combine


# --- the table -------------------------------------------------------------------------------

REDUCTIONS: dict[str, Reduction] = {
    reduction.name: reduction
    for reduction in (
        Reduction("sum", _sum_partition, _add("total"), _finalize_key("total")),
        Reduction("sumsq", _sumsq_partition, _add("total"), _finalize_key("total")),
        Reduction(
            "min", _extreme_partition("min"), _extreme_combine("minimum"), _finalize_key("value")
        ),
        Reduction(
            "max", _extreme_partition("max"), _extreme_combine("maximum"), _finalize_key("value")
        ),
        Reduction("mean", _mean_partition, _add("n", "total"), _mean_finalize),
        Reduction("var", _var_partition, _var_combine, _var_finalize, finalize_attrs=("ddof",)),
        Reduction(
            "argmax",
            _arg_partition(True, "argmax"),
            _arg_combine(True),
            _finalize_key("index"),
            partition_attrs=("offset",),
        ),
        Reduction(
            "argmin",
            _arg_partition(False, "argmin"),
            _arg_combine(False),
            _finalize_key("index"),
            partition_attrs=("offset",),
        ),
        Reduction("nnz", _nnz_partition, _add("count"), _finalize_key("count")),
    )
}


def get_reduction(name: str) -> Reduction:
    """Return the reduction called ``name``.

    Parameters
    ----------
    name : str
        One of ``REDUCTIONS``: sum, sumsq, min, max, mean, var, argmax, argmin, nnz.

    Returns
    -------
    Reduction

    Raises
    ------
    UnknownKernelError
        If there is no such reduction.
    """
    try:
        return REDUCTIONS[name]
    except (KeyError, TypeError):
        raise UnknownKernelError(
            f"unknown reduction {name!r}; known reductions: {', '.join(REDUCTIONS)}"
        ) from None


@kernel("reduce_partial")
def reduce_partial(
    backend: Backend, x: Any, reduction: str, axis: int | None = None, **attrs: Any
) -> Partial:
    """Summarise one block for a reduction that the coordinator finishes.

    Parameters
    ----------
    backend : Backend
        Array libraries of ``x``.
    x : ndarray or scipy.sparse CSR of shape (n, m)
        The block.
    reduction : str
        A name in ``REDUCTIONS``.
    axis : {None, 0, 1}, default None
        Axis to reduce over.
    **attrs
        ``offset`` (int, default 0): for ``argmax``/``argmin``, the global index of this block's
        first row (axis 0) or column (axis 1). ``ddof`` is accepted and left to the finalize.

    Returns
    -------
    dict of str to array
        The partial: 0-d values for axis None, (1, m) for axis 0, (n, 1) for axis 1; see
        ``combine_partials``.

    Raises
    ------
    UnknownKernelError
        If ``reduction`` is unknown.
    InvalidArgumentError
        If ``axis`` or an attribute is invalid.
    """
    spec = get_reduction(reduction)
    partition_attrs, _ = spec.split_attrs(attrs)
    block_shape(x, reduction)
    return spec.partition(backend, x, _check_axis(reduction, axis), **partition_attrs)


@kernel("reduce")
def reduce_block(
    backend: Backend, x: Any, reduction: str, axis: int | None = None, **attrs: Any
) -> Any:
    """Reduce one block completely: ``finalize(partition(x))``.

    Parameters
    ----------
    backend : Backend
        Array libraries of ``x``.
    x : ndarray or scipy.sparse CSR of shape (n, m)
        The block.
    reduction : str
        A name in ``REDUCTIONS``.
    axis : {None, 0, 1}, default None
        Axis to reduce over.
    **attrs
        ``offset`` for ``argmax``/``argmin`` (added to the indices), ``ddof`` for ``var``
        (default 0, numpy's population variance).

    Returns
    -------
    numpy scalar or ndarray of shape (1, m) or (n, 1)
        Same value and dtype as the numpy reduction with ``keepdims=True`` (a scalar for axis
        None); ``argmax``/``argmin``/``nnz`` give int64.

    Raises
    ------
    UnknownKernelError
        If ``reduction`` is unknown.
    InvalidArgumentError
        If ``axis`` or an attribute is invalid.
    """
    spec = get_reduction(reduction)
    partition_attrs, finalize_attrs = spec.split_attrs(attrs)
    block_shape(x, reduction)
    partial = spec.partition(backend, x, _check_axis(reduction, axis), **partition_attrs)
    return spec.finalize(partial, **finalize_attrs)


def combine_partials(reduction: str, partials: list[Partial], **attrs: Any) -> Any:
    """Fold the partials of blocks split along the reduced axis and finalize them.

    Parameters
    ----------
    reduction : str
        A name in ``REDUCTIONS``.
    partials : list of dict
        Outputs of ``reduce_partial`` for the same reduction and axis, in block order.
    **attrs
        ``ddof`` for ``var``; ``offset`` is accepted and ignored (it was applied per block).

    Returns
    -------
    numpy scalar or ndarray
        The reduction of the blocks stacked along the reduced axis.

    Raises
    ------
    UnknownKernelError
        If ``reduction`` is unknown.
    InvalidArgumentError
        If ``partials`` is empty or a partial lacks a statistic.
    ShapeMismatchError
        If the partials have different shapes (blocks not split along the reduced axis).

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.runtime.kernels import run_kernel
    >>> x = np.arange(6.0).reshape(3, 2)
    >>> parts = [run_kernel("reduce_partial", [b], {"reduction": "var", "axis": 0})
    ...          for b in (x[:1], x[1:])]
    >>> combine_partials("var", parts, ddof=1)
    array([[4., 4.]])
    """
    spec = get_reduction(reduction)
    _, finalize_attrs = spec.split_attrs(attrs)
    if not partials:
        raise InvalidArgumentError(f"{reduction}: expected at least one partial; got none")
    first = partials[0]
    for partial in partials[1:]:
        if set(partial) != set(first):
            raise InvalidArgumentError(
                f"{reduction}: partials hold different statistics: {sorted(first)} and "
                f"{sorted(partial)}"
            )
        for key, value in partial.items():
            shape, first_shape = _shape(value), _shape(first[key])
            if shape != first_shape:
                raise ShapeMismatchError(
                    f"{reduction}: cannot combine partials of shapes {first_shape} and "
                    f"{shape}; partials combine only across blocks split along the "
                    "reduced axis (concatenate per-block results otherwise)"
                )
    return spec.finalize(functools.reduce(spec.combine, partials), **finalize_attrs)
