"""Factor a symmetric matrix once, solve with it, and read its inertia from the factor.

NumPy arrays use LAPACK's Bunch-Kaufman ``?sytrf``/``?sytrs`` through
``scipy.linalg.get_lapack_funcs`` (``scipy.linalg.ldl`` builds a dense ``D``
and is several times slower). The inertia (positive, negative, zero
eigenvalues) is read from ``D``: a 1x1 pivot by its sign, a 2x2 pivot by the
signs of its determinant and trace. By Sylvester's law of inertia this is
the inertia of the matrix itself, so no eigenvalue decomposition is needed.

Before factoring, the matrix is equilibrated symmetrically, ``S K S`` with
``S`` diagonal (a congruence: the inertia is unchanged), so that a zero pivot
can be told from a small one by a threshold relative to one: barrier terms
span twenty orders of magnitude near active bounds, and an unscaled
threshold would call the pivots of the small entries zero.

Positive definite matrices (no rows) go through Cholesky, which is also an
inertia test: it succeeds exactly when all eigenvalues are positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import array_api_compat as compat

from .._backend.host import all_finite
from .._backend.names import machine_eps
from .._errors import FactorizationError
from .factor import lapack_cholesky, lapack_cholesky_solve, scipy_linalg

__all__ = ["SymmetricFactor", "factor_symmetric", "factor_positive", "equilibrate"]


@dataclass(frozen=True)
class SymmetricFactor:
    """A factored symmetric matrix ``K``: ``solve(b) = K^{-1} b`` and its inertia.

    ``inertia`` is ``(positive, negative, zero)`` eigenvalue counts; ``zero``
    counts pivots below the relative threshold, which the solve cannot trust.
    """

    kind: str
    scale: Any  # the diagonal S of the equilibration (K = S^-1 Ks S^-1)
    factor: Any
    inertia: tuple[int, int, int]
    xp: Any

    def solve(self, b: Any) -> Any:
        xp = self.xp
        vector = b.ndim == 1
        scale = self.scale[:, None]
        rhs = (b[:, None] if vector else b) * scale
        out = _SOLVES[self.kind](self, rhs) * scale
        if not all_finite(xp, out):
            raise FactorizationError("the solve gave NaN or Inf (a singular system)")
        return out[:, 0] if vector else out


def equilibrate(K: Any, xp: Any, sweeps: int = 3) -> tuple[Any, Any]:
    """``(S K S, S)``: a few symmetric Ruiz sweeps so that every row's largest entry is ~1."""
    n = K.shape[0]
    scale = xp.ones((n,), dtype=K.dtype, device=compat.device(K))
    Ks = K
    for _ in range(sweeps):
        largest = xp.max(xp.abs(Ks), axis=1)
        step = xp.where(largest > 0, 1.0 / xp.sqrt(xp.where(largest > 0, largest, 1.0)), 1.0)
        Ks = Ks * step[:, None] * step[None, :]
        scale = scale * step
    return Ks, scale


def factor_symmetric(K: Any, xp: Any) -> SymmetricFactor:
    """Bunch-Kaufman ``L D L^T`` of the symmetric NumPy matrix ``K`` with its inertia.

    Raises `FactorizationError` when ``K`` has NaN or Inf entries or LAPACK
    reports an illegal argument.
    """
    import numpy as np
    from scipy.linalg import get_lapack_funcs

    if not bool(xp.all(xp.isfinite(K))):
        raise FactorizationError("the matrix has NaN or Inf entries")
    Ks, scale = equilibrate(K, xp)
    n = Ks.shape[0]
    a = np.asarray(Ks)
    sytrf, sytrf_lwork = get_lapack_funcs(("sytrf", "sytrf_lwork"), (a,))
    work, info = sytrf_lwork(n, lower=1)
    lwork = max(int(np.real(work)), 1) if info == 0 else max(n, 1)
    ldu, ipiv, info = sytrf(a, lower=1, lwork=lwork)
    if info < 0:
        raise FactorizationError(f"LAPACK sytrf rejected argument {-info}")
    inertia = _inertia_from_pivots(ldu, ipiv, a.dtype)
    return SymmetricFactor("sytrf", scale, (ldu, ipiv), inertia, xp)


def _inertia_from_pivots(ldu: Any, ipiv: Any, dtype: Any) -> tuple[int, int, int]:
    """Count eigenvalue signs of the block diagonal ``D`` (LAPACK's lower storage)."""
    import numpy as np

    n = ldu.shape[0]
    eps = float(np.finfo(dtype).eps)
    diagonal = np.abs(np.diagonal(ldu)) if n else np.zeros(0)
    # Relative to the equilibrated matrix (entries at most one): a pivot this small
    # is rounding, not information.
    zero_tol = 10.0 * max(n, 1) * eps * max(1.0, float(np.max(diagonal)) if n else 1.0)
    pos = neg = zero = 0
    k = 0
    while k < n:
        if ipiv[k] > 0 or k == n - 1:
            d = float(ldu[k, k])
            if abs(d) <= zero_tol:
                zero += 1
            elif d > 0:
                pos += 1
            else:
                neg += 1
            k += 1
            continue
        a, b, c = float(ldu[k, k]), float(ldu[k + 1, k]), float(ldu[k + 1, k + 1])
        det, trace = a * c - b * b, a + c
        size = max(abs(a), abs(b), abs(c))
        if abs(det) <= zero_tol * size:
            zero += 1
            if abs(trace) <= zero_tol:
                zero += 1
            elif trace > 0:
                pos += 1
            else:
                neg += 1
        elif det < 0:
            pos += 1
            neg += 1
        elif trace > 0:
            pos += 2
        else:
            neg += 2
        k += 2
    return pos, neg, zero


def factor_positive(H: Any, xp: Any) -> SymmetricFactor:
    """Cholesky of the symmetric ``H`` (Jacobi-scaled first); an inertia test as well.

    Returns a factor with inertia ``(n, 0, 0)``; raises `FactorizationError`
    when ``H`` is not numerically positive definite.
    """
    n = H.shape[0]
    if not all_finite(xp, H):
        raise FactorizationError("the matrix has NaN or Inf entries")
    diag = xp.linalg.diagonal(H) if n else H[:, 0]
    if n and not bool(xp.all(diag > 0)):
        raise FactorizationError("a diagonal entry is not positive")
    scale = 1.0 / xp.sqrt(diag)
    Hs = H * scale[:, None] * scale[None, :]
    eps = machine_eps(xp, H.dtype)
    if compat.is_numpy_namespace(xp) and scipy_linalg() is not None:
        potrf, potrs = lapack_cholesky(Hs)  # LAPACK directly: its wrappers cost more here
        c, info = potrf(Hs, lower=1, clean=1, overwrite_a=0)
        if info != 0:
            raise FactorizationError(f"not positive definite (LAPACK potrf info {info})")
        factor, kind, low = (c, potrs), "scipy_cholesky", c
    else:
        try:
            low = xp.linalg.cholesky(Hs)
        except Exception as exc:  # each library has its own LinAlgError
            raise FactorizationError(f"not positive definite ({exc})") from None
        factor, kind = Hs, "dense"
    pivots = xp.linalg.diagonal(low) if n else diag
    if n:
        smallest = float(xp.min(pivots))
        if not smallest > 0.0 or not all_finite(xp, pivots):
            raise FactorizationError("not positive definite (a non-positive pivot)")
        # After Jacobi scaling the diagonal is one: a pivot near sqrt(eps) leaves no digits.
        if smallest**2 <= 10.0 * n * eps:
            raise FactorizationError("numerically singular")
    return SymmetricFactor(kind, scale, factor, (n, 0, 0), xp)


def _solve_sytrf(f: SymmetricFactor, b: Any) -> Any:
    import numpy as np
    from scipy.linalg import get_lapack_funcs

    ldu, ipiv = f.factor
    (sytrs,) = get_lapack_funcs(("sytrs",), (ldu,))
    out, info = sytrs(ldu, ipiv, np.asarray(b), lower=1)
    if info != 0:
        raise FactorizationError(f"LAPACK sytrs failed (info {info})")
    return out


def _solve_cholesky(f: SymmetricFactor, b: Any) -> Any:
    return lapack_cholesky_solve(f.factor, b)


def _solve_dense(f: SymmetricFactor, b: Any) -> Any:
    try:
        return f.xp.linalg.solve(f.factor, b)
    except Exception as exc:  # each library has its own LinAlgError
        raise FactorizationError(f"singular ({exc})") from None


_SOLVES = {"sytrf": _solve_sytrf, "scipy_cholesky": _solve_cholesky, "dense": _solve_dense}
