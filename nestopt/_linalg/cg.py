"""Conjugate gradients that also report the Lanczos matrix they built, for every backend.

CG on ``A x = b`` from ``x0`` builds, without one more product, the
Lanczos tridiagonal ``T_k`` of ``A`` on the Krylov space of its first
residual: with step lengths ``alpha_i`` and ``beta_i = |r_{i+1}|^2 / |r_i|^2``
(Saad, *Iterative Methods for Sparse Linear Systems*, section 6.7.3)::

    T[i, i]     = 1 / alpha_i + beta_{i-1} / alpha_{i-1}
    T[i, i + 1] = sqrt(beta_i) / alpha_i

Its eigenvalues (Ritz values) lie between the extreme eigenvalues of
``A``, so a Ritz value at or below zero proves that ``A`` is not positive
definite, and a count of the Ritz values below a threshold (Sturm's
sequence) tests for it in ``O(k)`` host operations. NumPy, CuPy and torch
arrays are updated in place (the copies a bare CG makes, no more); other
namespaces get the functional updates of the array API standard.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import array_api_compat as compat
from array_api_compat import device

__all__ = ["CGRun", "cg", "lanczos_count_below", "smallest_ritz"]


@dataclass
class CGRun:
    """One CG run: ``x``, its iterations, the recursive relative residual, and ``T_k``.

    ``diagonal`` and ``offdiagonal`` hold ``T_k``; ``negative`` is the curvature
    ``p^T A p / p^T p`` of a direction where CG stopped because it was not
    positive (``None`` if it did not stop so).
    """

    x: Any
    iterations: int
    residual: float
    diagonal: list[float] = field(default_factory=list)
    offdiagonal: list[float] = field(default_factory=list)
    negative: float | None = None


def _in_place(xp: Any) -> bool:
    return (
        compat.is_numpy_namespace(xp)
        or compat.is_cupy_namespace(xp)
        or compat.is_torch_namespace(xp)
    )


def _axpy(a: float, x: Any, y: Any, inplace: bool) -> Any:
    """``y + a x``, written into ``y`` where ``inplace`` (assign the result either way).

    NumPy's operators rather than SciPy's BLAS ``axpy``: pip's NumPy and SciPy
    each bundle an OpenBLAS with its own thread pool, and calls alternating
    between the two (CG's dot products and a dense ``hvp`` in NumPy's, the
    updates in SciPy's) left both pools spinning on the same cores: 25x slower
    with two threads in a measurement.
    """
    if inplace:
        y += a * x
        return y
    return y + a * x


def _xpby(x: Any, b: float, y: Any, inplace: bool) -> Any:
    """``x + b y``, written into ``y`` where ``inplace`` (assign the result either way)."""
    if inplace:
        y *= b
        y += x
        return y
    return x + b * y


class _Padded:
    """``A v`` from a ``matvec`` of ``(0, v)``; the direction kept inside ``(0, p)`` in place."""

    def __init__(self, matvec: Callable[[Any], Any], lead: int, b: Any, xp: Any, inplace: bool):
        self.matvec, self.lead, self.xp, self.inplace = matvec, lead, xp, inplace
        self.whole: Any = None  # (0, p), CG's direction p a view of it
        self.view: Any = None
        if lead and inplace:
            self.whole = xp.empty((lead + b.shape[0],), dtype=b.dtype, device=device(b))
            self.whole[:lead] = 0.0
            self.view = self.whole[lead:]
        self.zeros: Any = None

    def direction(self, r: Any) -> Any:
        """A copy of ``r`` to serve as CG's direction (inside ``(0, p)`` where kept)."""
        if self.view is None:
            return self.xp.asarray(r, copy=True) if self.inplace else r
        self.view[...] = r
        return self.view

    def apply(self, v: Any) -> Any:
        if not self.lead:
            return self.matvec(v)
        if v is self.view:
            return self.matvec(self.whole)
        if self.zeros is None:
            self.zeros = self.xp.zeros((self.lead,), dtype=v.dtype, device=device(v))
        return self.matvec(self.xp.concat([self.zeros, v]))


def cg(
    matvec: Callable[[Any], Any],
    b: Any,
    *,
    rtol: float,
    maxiter: int,
    xp: Any,
    x0: Any = None,
    norm_b: float | None = None,
    check_product: Callable[[Any], None] | None = None,
    lead: int = 0,
) -> CGRun:
    """CG (Hestenes-Stiefel) on ``A x = b`` to ``|r| <= rtol |b|``, from ``x0`` (or zero).

    A warm start ``x0`` is first scaled by ``gamma = b^T x0 / x0^T A x0``, the
    multiple that minimizes the error's ``A``-norm along it (one product,
    which a start from ``x0`` needs anyway); a start no better than zero
    (``|r0| >= |b|``) is dropped. Stops early, with ``negative`` set, on a
    direction of non-positive curvature (there ``A`` is not positive definite
    and CG is not defined). ``check_product(q)`` is called on a product ``q = A p``
    whose ``p^T q`` is not finite (NaN or Inf in any entry of ``q`` that ``p`` meets
    makes it so), to raise for a broken operator rather than report its curvature.

    With ``lead > 0``, ``matvec`` takes ``(0, v)``: ``lead`` zeros, then ``v`` (a
    level's own block below the variables above it). Where updates are in
    place, CG keeps its direction inside such a vector, so that its products
    copy nothing in (as SciPy's CG, it updates that vector after each product).
    """
    inplace = _in_place(xp)
    padded = _Padded(matvec, lead, b, xp, inplace)
    if norm_b is None:
        norm_b = float(xp.linalg.vector_norm(b))
    target = rtol * norm_b
    x: Any = None  # None: zero (made only where a run ends there)
    if x0 is None:
        r = xp.asarray(b, copy=True) if inplace else b
    else:
        q = padded.apply(x0)
        curvature = float(x0 @ q)
        if check_product is not None and not math.isfinite(curvature):
            check_product(q)
        gamma = float(b @ x0) / curvature if curvature > 0.0 else 0.0
        x = gamma * x0
        r = b - gamma * q
    rr = float(r @ r)
    if x0 is not None and not math.sqrt(rr) < norm_b:
        x = None
        r = xp.asarray(b, copy=True) if inplace else b
        rr = norm_b * norm_b
    run = CGRun(x, 0, math.sqrt(rr) / norm_b if norm_b > 0 else 0.0)
    if not math.sqrt(rr) > target:
        return _at_zero(run, b, xp)
    p = padded.direction(r)
    previous_alpha, previous_beta = None, 0.0
    for iteration in range(1, maxiter + 1):
        q = padded.apply(p)
        curvature = float(p @ q)
        if check_product is not None and not math.isfinite(curvature):
            check_product(q)
        if not curvature > 0.0:
            run.negative = curvature / max(float(p @ p), 1e-300)
            run.iterations = iteration - 1
            return _at_zero(run, b, xp)
        alpha = rr / curvature
        diagonal = 1.0 / alpha
        if previous_alpha is not None:
            diagonal += previous_beta / previous_alpha
        run.diagonal.append(diagonal)
        x = alpha * p if x is None else _axpy(alpha, p, x, inplace)
        r = _axpy(-alpha, q, r, inplace)
        rr_new = float(r @ r)
        run.x, run.iterations = x, iteration
        run.residual = math.sqrt(rr_new) / norm_b
        if not math.isfinite(rr_new):
            return run
        beta = rr_new / rr
        if not math.sqrt(rr_new) > target:
            return run
        run.offdiagonal.append(math.sqrt(beta) / alpha)
        p = _xpby(r, beta, p, inplace)
        rr, previous_alpha, previous_beta = rr_new, alpha, beta
    return run


def _at_zero(run: CGRun, b: Any, xp: Any) -> CGRun:
    """``run``, its ``x`` made zero where it ended before its first step from zero."""
    if run.x is None:
        run.x = xp.zeros_like(b)
    return run


def lanczos_count_below(diagonal: list[float], offdiagonal: list[float], sigma: float) -> int:
    """How many eigenvalues of the symmetric tridiagonal ``T`` are below ``sigma`` (Sturm).

    The pivots of ``T - sigma I = L D L^T`` have as many negative entries as
    ``T`` has eigenvalues below ``sigma`` (Sylvester's law of inertia).
    """
    count = 0
    pivot = 1.0
    for i, a in enumerate(diagonal):
        off = offdiagonal[i - 1] if i > 0 and i - 1 < len(offdiagonal) else 0.0
        pivot = a - sigma - (off * off / pivot if i > 0 else 0.0)
        if pivot == 0.0:
            pivot = -1e-300  # an eigenvalue at sigma counts as below it
        if pivot < 0.0:
            count += 1
    return count


def smallest_ritz(diagonal: list[float], offdiagonal: list[float]) -> float:
    """The smallest eigenvalue of ``T`` by bisection on Sturm counts (for messages)."""
    if not diagonal:
        return math.nan
    radius = [
        (offdiagonal[i - 1] if 0 < i <= len(offdiagonal) else 0.0)
        + (offdiagonal[i] if i < len(offdiagonal) else 0.0)
        for i in range(len(diagonal))
    ]
    low = min(a - r for a, r in zip(diagonal, radius, strict=True))
    high = max(a + r for a, r in zip(diagonal, radius, strict=True))
    for _ in range(100):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if lanczos_count_below(diagonal, offdiagonal, middle) >= 1:
            high = middle
        else:
            low = middle
    return 0.5 * (low + high)
