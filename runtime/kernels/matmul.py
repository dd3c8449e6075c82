"""Matrix-product kernels: ``matmul``, ``tsmm`` (``X^T X``) and ``mmchain`` (``X^T (w * (X v))``).

``tsmm`` and ``mmchain`` are the fused patterns that dominate least squares and GLM solvers
(SystemDS's ``tsmm`` and ``mmchain`` operators): a worker returns the small ``m x m`` or
``m x k`` product instead of shipping ``X`` or materialising ``X^T``. Sparse@sparse keeps CSR;
every other result is a dense 2-D ndarray.
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from fedla.runtime.kernels.backend import Backend
from fedla.runtime.kernels.indexing import block_shape
from fedla.runtime.kernels.registry import kernel


def _check_aligned(name: str, left: tuple[int, int], right: tuple[int, int]) -> None:
    if left[1] != right[0]:
        raise ShapeMismatchError(
            f"{name}: shapes {left} and {right} are not aligned ({left[1]} != {right[0]})"
        )


def _dense(backend: Backend, result: Any) -> Any:
    """Return a product as a 2-D dense array (``csr_matrix @ x`` can yield ``np.matrix``)."""
    return backend.xp.asarray(result.toarray() if backend.issparse(result) else result)


def _product(backend: Backend, a: Any, b: Any) -> Any:
    """``a @ b``: ``xp.matmul`` for two dense blocks, scipy's ``@`` when one is sparse."""
    if backend.issparse(a) or backend.issparse(b):
        return a @ b
    return backend.xp.matmul(a, b)


@kernel("matmul")
def matmul(backend: Backend, a: Any, b: Any) -> Any:
    """Matrix product ``a @ b``.

    Parameters
    ----------
    backend : Backend
        Array libraries of the operands.
    a : ndarray or scipy.sparse CSR of shape (n, k)
        Left operand.
    b : ndarray or scipy.sparse CSR of shape (k, m)
        Right operand.

    Returns
    -------
    ndarray or scipy.sparse.csr_array of shape (n, m)
        A ``csr_array`` when both operands are sparse, otherwise a dense ndarray.

    Raises
    ------
    ShapeMismatchError
        If the inner dimensions differ.
    """
    _check_aligned("matmul", block_shape(a, "matmul"), block_shape(b, "matmul"))
    if backend.issparse(a) and backend.issparse(b):
        return backend.sparse.csr_array(a @ b)
    return _dense(backend, _product(backend, a, b))


@kernel("tsmm")
def tsmm(backend: Backend, x: Any, left: bool = True) -> Any:
    """Transpose-self matrix product ``x.T @ x`` (``left``) or ``x @ x.T``.

    Parameters
    ----------
    backend : Backend
        Array libraries of ``x``.
    x : ndarray or scipy.sparse CSR of shape (n, m)
        The block.
    left : bool, default True
        True for the Gram matrix of the columns, ``x.T @ x`` of shape (m, m); False for
        ``x @ x.T`` of shape (n, n).

    Returns
    -------
    ndarray of shape (m, m) or (n, n)
        Always dense: the product of a sparse block with itself fills in quickly.

    Notes
    -----
    For dense ``x`` both operands are the same buffer, one of them a transposed view, which
    numpy's ``matmul`` hands to BLAS ``syrk`` (half the flops of ``gemm``, no copy of ``x``).
    """
    block_shape(x, "tsmm")
    if not isinstance(left, bool):
        raise InvalidArgumentError(f"tsmm: left must be True or False; got {left!r} instead")
    product = _product(backend, x.T, x) if left else _product(backend, x, x.T)
    return _dense(backend, product)


@kernel("mmchain")
def mmchain(backend: Backend, x: Any, v: Any, w: Any = None) -> Any:
    """Matrix-multiplication chain ``x.T @ (x @ v)`` or ``x.T @ (w * (x @ v))``.

    Parameters
    ----------
    backend : Backend
        Array libraries of the operands.
    x : ndarray or scipy.sparse CSR of shape (n, m)
        The data block.
    v : ndarray of shape (m, k)
        Right-hand vectors (a sparse ``v`` is densified; it is small).
    w : ndarray of shape (n, 1), optional
        Per-row weights, e.g. the IRLS weights of a GLM.

    Returns
    -------
    ndarray of shape (m, k)
        Dense.

    Raises
    ------
    ShapeMismatchError
        If ``v`` has not ``m`` rows or ``w`` is not an (n, 1) column.

    Notes
    -----
    Evaluated right to left so the intermediate is only (n, k). ``x.T`` is a view (dense) or a
    CSC reinterpretation sharing ``x``'s arrays (sparse); neither copies ``x``.
    """
    shape = block_shape(x, "mmchain")
    _check_aligned("mmchain", shape, block_shape(v, "mmchain"))
    q = _product(backend, x, _dense(backend, v))
    if w is not None:
        w_shape = block_shape(w, "mmchain")
        if w_shape != (shape[0], 1):
            raise ShapeMismatchError(
                f"mmchain: w must be a column of shape ({shape[0]}, 1) to weight the rows of x "
                f"of shape {shape}; got {w_shape} instead"
            )
        q = _dense(backend, w) * _dense(backend, q)
    return _dense(backend, _product(backend, x.T, q))
