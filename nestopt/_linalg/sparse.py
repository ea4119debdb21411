"""Sparse Hessians: recognizing them, and factoring a sparse symmetric block once.

A level's ``hess`` may return a ``scipy.sparse`` matrix (NumPy backend) or a
``cupyx.scipy.sparse`` one (CuPy). The own block of the bottom level is then
factored by SuperLU in symmetric mode (``scipy.sparse.linalg.splu`` with
diagonal pivoting), whose ``U`` diagonal carries the block's inertia
(Sylvester): positive pivots prove a strict minimum as a Cholesky factor
would. Elsewhere a sparse Hessian is used through products.
"""

from __future__ import annotations

import sys
from typing import Any

import array_api_compat as compat

__all__ = [
    "is_sparse",
    "to_dense",
    "sparse_factor",
    "sparse_extremes",
    "identity_like",
]


def is_sparse(a: Any) -> bool:
    """Whether ``a`` is a SciPy or CuPy sparse matrix (without importing either)."""
    scipy_sparse = sys.modules.get("scipy.sparse")
    if scipy_sparse is not None and scipy_sparse.issparse(a):
        return True
    cupy_sparse = sys.modules.get("cupyx.scipy.sparse")
    return cupy_sparse is not None and cupy_sparse.issparse(a)


def to_dense(a: Any) -> Any:
    return a.toarray() if is_sparse(a) else a


def sparse_factor(a: Any, method: str) -> tuple[Any, int, Any]:
    """SuperLU of ``a`` in symmetric mode, its number of negative pivots, the pivots.

    Raises ``RuntimeError`` (SuperLU's) when the matrix is exactly singular.
    """
    import numpy as np
    import scipy.sparse as sp
    import scipy.sparse.linalg as sl

    if method not in ("cholesky", "lu"):
        raise ValueError(
            f"linear_solver={method!r} needs a dense block; a sparse Hessian is factored "
            "with 'cholesky' (positive pivots required) or 'lu'"
        )
    matrix = sp.csc_matrix(a)
    lu = sl.splu(
        matrix,
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    pivots = lu.U.diagonal()
    return lu, int(np.sum(pivots < 0)), pivots


def sparse_extremes(a: Any) -> tuple[float, float]:
    """Smallest and largest eigenvalue of a sparse symmetric ``a`` (for messages)."""
    import numpy as np
    import scipy.sparse.linalg as sl

    n = a.shape[0]
    if n <= 200:
        values = np.linalg.eigvalsh(a.toarray())
        return float(values[0]), float(values[-1])
    small = sl.eigsh(a, k=1, which="SA", return_eigenvectors=False)[0]
    large = sl.eigsh(a, k=1, which="LA", return_eigenvectors=False)[0]
    return float(small), float(large)


def identity_like(a: Any, xp: Any) -> Any:
    """The identity of ``a``'s size and kind (sparse or dense, its dtype and device)."""
    if is_sparse(a):
        import scipy.sparse as sp

        return sp.identity(a.shape[0], format="csc", dtype=a.dtype)
    return xp.eye(a.shape[0], dtype=a.dtype, device=compat.device(a))
