"""Krylov solves with an operator: the field's solvers, a portable fallback for the rest.

NumPy arrays go to ``scipy.sparse.linalg`` (``cg``, ``minres``) and CuPy
arrays to ``cupyx.scipy.sparse.linalg``, each with a ``LinearOperator``
around nestopt's matrix-vector product. Backends without one (torch,
``array_api_strict``, registered libraries) use the small CG and MINRES below,
written against the array API standard. Every solve reports its iterations
and the relative residual it reached, recomputed with one more product.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat as compat

from .factor import scipy_linalg

__all__ = ["KrylovResult", "krylov_solve", "KRYLOV_METHODS"]

KRYLOV_METHODS = ("cg", "minres")


@dataclass(frozen=True)
class KrylovResult:
    """``x`` with ``A x ~ b``: ``iterations``, the relative ``residual``, and ``converged``."""

    x: Any
    iterations: int
    residual: float
    converged: bool
    kind: str


def krylov_solve(
    matvec: Callable[[Any], Any],
    b: Any,
    *,
    method: str,
    rtol: float,
    maxiter: int,
    xp: Any,
) -> KrylovResult:
    """Solve ``A x = b`` for symmetric ``A`` given by ``matvec`` (CG: positive definite)."""
    if method not in KRYLOV_METHODS:
        raise ValueError(f"unknown Krylov method {method!r}; choose one of {KRYLOV_METHODS}")
    norm_b = float(xp.linalg.vector_norm(b))
    if norm_b == 0.0:
        return KrylovResult(xp.zeros_like(b), 0, 0.0, True, "zero right-hand side")
    if compat.is_numpy_namespace(xp) and _has_scipy():
        x, iterations, kind = _scipy(matvec, b, method, rtol, maxiter)
    elif compat.is_cupy_namespace(xp):
        x, iterations, kind = _cupy(matvec, b, method, rtol, maxiter)
    else:
        solver = _portable_cg if method == "cg" else _portable_minres
        x, iterations = solver(matvec, b, rtol, maxiter, xp)
        kind = f"portable_{method}"
    x = xp.asarray(x, dtype=b.dtype)
    residual = float(xp.linalg.vector_norm(matvec(x) - b)) / norm_b
    converged = math.isfinite(residual) and residual <= max(rtol, 0.0) * 10.0
    return KrylovResult(x, iterations, residual, converged, kind)


def _has_scipy() -> bool:
    """Whether SciPy is installed (NumPy without it falls back to the portable solvers)."""

    return scipy_linalg() is not None


def _scipy(matvec: Any, b: Any, method: str, rtol: float, maxiter: int) -> tuple[Any, int, str]:
    """SciPy's solver, restarted from its answer while the true relative residual is above
    ``rtol`` (SciPy's MINRES measures its residual against ``||A|| ||x||``, not ``||b||``)."""
    import numpy as np
    import scipy.sparse.linalg as sl

    n = b.shape[0]
    operator = sl.LinearOperator((n, n), matvec=matvec, dtype=b.dtype)
    count = [0]

    def callback(_: Any) -> None:
        count[0] += 1

    solver = sl.cg if method == "cg" else sl.minres
    norm_b = float(np.linalg.norm(b))
    x, best = None, np.inf
    for _ in range(4):
        x, _ = solver(
            operator, b, x0=x, rtol=rtol, maxiter=max(maxiter - count[0], 1), callback=callback
        )
        residual = float(np.linalg.norm(matvec(x) - b))
        if count[0] >= maxiter or residual <= rtol * norm_b or residual > 0.5 * best:
            break  # done, out of iterations, or stagnating at rounding
        best = residual
    return x, count[0], f"scipy_{method}"


def _cupy(matvec: Any, b: Any, method: str, rtol: float, maxiter: int) -> tuple[Any, int, str]:
    import cupyx.scipy.sparse.linalg as cl

    n = b.shape[0]
    operator = cl.LinearOperator((n, n), matvec=matvec, dtype=b.dtype)
    count = [0]

    def callback(_: Any) -> None:
        count[0] += 1

    solver = cl.cg if method == "cg" else cl.minres
    try:
        x, _ = solver(operator, b, tol=rtol, maxiter=maxiter, callback=callback)
    except TypeError:  # newer CuPy spells it rtol, as SciPy does
        x, _ = solver(operator, b, rtol=rtol, maxiter=maxiter, callback=callback)
    return x, count[0], f"cupyx_{method}"


def _portable_cg(matvec: Any, b: Any, rtol: float, maxiter: int, xp: Any) -> tuple[Any, int]:
    """Conjugate gradients (Hestenes-Stiefel) from ``x = 0``."""
    x = xp.zeros_like(b)
    r = b
    p = r
    rr = float(xp.sum(r * r))
    target = (rtol * float(xp.linalg.vector_norm(b))) ** 2
    for iteration in range(1, maxiter + 1):
        ap = matvec(p)
        curvature = float(xp.sum(p * ap))
        if not curvature > 0.0:
            return x, iteration - 1  # not positive definite along p: stop, as SciPy's cg would fail
        alpha = rr / curvature
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = float(xp.sum(r * r))
        if rr_new <= target:
            return x, iteration
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, maxiter


def _portable_minres(matvec: Any, b: Any, rtol: float, maxiter: int, xp: Any) -> tuple[Any, int]:
    """MINRES (Paige & Saunders) from ``x = 0``, for symmetric, possibly indefinite ``A``.

    Lanczos builds the tridiagonal ``T_k``; Givens rotations keep its QR
    factors, and ``x`` moves along directions ``d_k`` so that the residual,
    ``|eta|``, is the least over the Krylov space.
    """
    beta1 = float(xp.linalg.vector_norm(b))
    x = xp.zeros_like(b)
    v_old, v = xp.zeros_like(b), b / beta1
    d_old, d = xp.zeros_like(b), xp.zeros_like(b)  # directions d_{k-2}, d_{k-1}
    beta = 0.0  # beta_k: couples v_{k-1} and v_k
    c_old, s_old, c, s = 1.0, 0.0, 1.0, 0.0  # rotations G_{k-2}, G_{k-1}
    eta = beta1
    for iteration in range(1, maxiter + 1):
        av = matvec(v)
        alpha = float(xp.sum(v * av))
        u = av - alpha * v - beta * v_old
        beta_next = float(xp.linalg.vector_norm(u))
        # Column k of T_k is (beta_k, alpha_k, beta_{k+1}); rotate it by G_{k-2}, G_{k-1}.
        epsilon = s_old * beta
        delta_bar = c_old * beta
        delta = c * delta_bar + s * alpha
        gamma_bar = -s * delta_bar + c * alpha
        gamma = math.hypot(gamma_bar, beta_next)
        if gamma == 0.0:
            return x, iteration  # singular T_k: no further progress
        c_new, s_new = gamma_bar / gamma, beta_next / gamma
        d_new = (v - delta * d - epsilon * d_old) / gamma
        x = x + (c_new * eta) * d_new
        eta = -s_new * eta
        if abs(eta) <= rtol * beta1 or beta_next == 0.0:
            return x, iteration
        v_old, v = v, u / beta_next
        d_old, d = d, d_new
        beta = beta_next
        c_old, s_old, c, s = c, s, c_new, s_new
    return x, maxiter
