"""The KKT matrix of a constrained level's active set, factored with its bounds eliminated.

With ``A`` the reduced Hessian of the Lagrangian, ``J_R`` the active general
rows and ``E`` the rows of the identity of the variables held at a bound,

    K = [ A    J_R^T  E^T ]            K_F = [ A_FF   J_RF^T ]
        [ J_R  0      0   ]                  [ J_RF   0      ]
        [ E    0      0   ]

A variable at its bound is fixed by its row, so only ``K_F`` (the free
variables ``F``) is factored: a bound costs nothing, where identity rows
would grow the matrix by one row and column each. By Sylvester's law,
``inertia(K) = inertia(K_F) + (|X|, |X|, 0)`` with ``X`` the fixed
variables, and ``K_F`` has inertia ``(|F|, r, 0)`` exactly when the active
gradients are linearly independent (LICQ) and ``A`` is positive definite on
their null space (second-order sufficiency; Gould, Math. Prog. 1985). One
factorization therefore solves the polish's Newton steps, vets the solution
and serves the level's best-response Jacobian; no eigenvalue or singular
value decomposition is needed.

``K_F`` is factored by Cholesky when no general row is active (which is
itself the inertia test), by LAPACK's Bunch-Kaufman ``L D L^T`` with the
inertia read from its pivots on NumPy, and elsewhere by Cholesky of ``A_FF``
and of the Schur complement ``J_RF A_FF^{-1} J_RF^T`` (both positive
definite imply the inertia; when ``A_FF`` is not, an LU solve and the
eigenvalues of ``K_F`` decide).
"""

from __future__ import annotations

from typing import Any

import array_api_compat as compat
import numpy as np

from .._errors import FactorizationError
from .factor import factorize, scipy_linalg
from .ldl import factor_positive, factor_symmetric

__all__ = ["ActiveSetKKT"]


class ActiveSetKKT:
    """``K`` of an active set (general rows, then bounds) factored once; see the module.

    Parameters
    ----------
    A : array (d, d)
        The reduced Hessian of the Lagrangian (the level's own block).
    J_R : array (r, d)
        The active general rows' reduced Jacobian.
    fixed : host bool array (d,)
        The variables held at a bound (their rows follow ``J_R``'s, in
        variable order).

    Attributes
    ----------
    minimum : bool
        ``K_F`` has inertia ``(|F|, r, 0)``: LICQ and second-order
        sufficiency hold.

    Raises `FactorizationError` when ``K_F`` is singular.
    """

    def __init__(self, xp: Any, A: Any, J_R: Any, fixed: Any) -> None:
        fixed = np.asarray(fixed, dtype=bool)
        self.xp, self.d, self.r = xp, int(fixed.size), int(J_R.shape[0])
        device = compat.device(A)
        free_host, fixed_host = (~fixed).nonzero()[0], fixed.nonzero()[0]
        self.nF, self.nX = int(free_host.size), int(fixed_host.size)
        self.all_free = self.nX == 0
        host = type(A) is np.ndarray  # NumPy: the host indices serve as they are

        def index(a: Any) -> Any:
            return (
                a.astype(np.int64, copy=False)
                if host
                else xp.asarray(a, dtype=xp.int64, device=device)
            )

        self.free, self.fixed = index(free_host), index(fixed_host)
        self.order = index(np.argsort(np.concatenate([free_host, fixed_host]), kind="stable"))
        self.A = A
        self.stationary_at: Any = None  # a point where this factor's Newton step was rounding
        if self.all_free:
            A_FF, J_RF = A, J_R
            self.J_RX = None
        else:
            A_FF = _block(xp, A, self.free, free_host)
            J_RF = xp.take(J_R, self.free, axis=1)
            self.J_RX = xp.take(J_R, self.fixed, axis=1)
        self.J_RF = J_RF
        if self.r > self.nF:
            raise FactorizationError(f"{self.r} rows on {self.nF} free variables")
        self._factor(xp, A_FF, J_RF)

    # -- factorization ------------------------------------------------------------

    def _factor(self, xp: Any, A_FF: Any, J_RF: Any) -> None:
        nF, r = self.nF, self.r
        self._schur: Any = None
        self._kf: Any = None  # a SymmetricFactor or an LU Factorization of K_F
        A_FF = 0.5 * (A_FF + xp.matrix_transpose(A_FF))
        if nF == 0:  # every variable at a bound (and so no general row active)
            self.minimum = True
            return
        if r == 0:
            try:
                self._kf = factor_positive(A_FF, xp)
                self.minimum = True
                return
            except FactorizationError:
                pass
            self._kf = factorize(A_FF, method="lu", xp=xp)
            self.minimum = False  # not positive definite (or too near singular to tell)
            return
        K_F = _bordered(xp, A_FF, J_RF)
        if compat.is_numpy_namespace(xp) and scipy_linalg() is not None:
            self._kf = factor_symmetric(K_F, xp)
            pos, neg, zero = self._kf.inertia
            if zero:
                raise FactorizationError(f"{zero} zero pivots")
            self.minimum = (pos, neg) == (nF, r)
            return
        try:  # range space: A_FF and the Schur complement, both positive definite
            Af = factor_positive(A_FF, xp)
            S = J_RF @ Af.solve(xp.matrix_transpose(J_RF))
            self._schur = (Af, factor_positive(0.5 * (S + xp.matrix_transpose(S)), xp))
            self.minimum = True
            return
        except FactorizationError:
            self._schur = None
        self._kf = factorize(K_F, method="lu", xp=xp)
        eigenvalues = xp.linalg.eigvalsh(K_F)
        positive = int(xp.count_nonzero(eigenvalues > 0))
        self.minimum = positive == nF and int(xp.count_nonzero(eigenvalues < 0)) == r

    def _solve_free(self, b_F: Any, c_R: Any) -> tuple[Any, Any]:
        xp = self.xp
        if self.nF == 0:
            return b_F, c_R
        if self.r == 0:
            return self._kf.solve(b_F), c_R
        if self._schur is not None:
            Af, Sf = self._schur
            t = Af.solve(b_F)
            lam = Sf.solve(self.J_RF @ t - c_R)
            return Af.solve(b_F - xp.matrix_transpose(self.J_RF) @ lam), lam
        out = self._kf.solve(xp.concat([b_F, c_R], axis=0))
        return out[: self.nF, ...], out[self.nF :, ...]

    # -- solves --------------------------------------------------------------------

    def solve(self, rhs: Any, *, bound_multipliers: bool = True) -> Any:
        """``K^{-1} rhs`` for ``rhs = (b, c_R, c_X)`` (a vector or columns); without
        ``bound_multipliers`` only ``(x, lambda_R)``, the bounds' multipliers (a product with
        the fixed rows of ``A``) not formed."""
        xp, d, r = self.xp, self.d, self.r
        b, c_R, x_X = rhs[:d, ...], rhs[d : d + r, ...], rhs[d + r :, ...]
        if self.all_free:
            x, lam_R = self._solve_free(b, c_R)
            return xp.concat([x, lam_R], axis=0)
        assert self.J_RX is not None
        b_F = xp.take(b, self.free, axis=0)
        if bool(xp.any(x_X != 0)):  # the fixed variables move (a Newton step, not a Jacobian)
            A_FX = xp.take(xp.take(self.A, self.free, axis=0), self.fixed, axis=1)
            b_F, c_R = b_F - A_FX @ x_X, c_R - self.J_RX @ x_X
        x_F, lam_R = self._solve_free(b_F, c_R)
        x = xp.take(xp.concat([x_F, x_X], axis=0), self.order, axis=0)
        if not bound_multipliers:
            return xp.concat([x, lam_R], axis=0)
        lam_X = xp.take(b, self.fixed, axis=0) - xp.take(self.A, self.fixed, axis=0) @ x
        if r:
            lam_X = lam_X - xp.matrix_transpose(self.J_RX) @ lam_R
        return xp.concat([x, lam_R, lam_X], axis=0)


def _block(xp: Any, A: Any, index: Any, index_host: Any) -> Any:
    """``A[index][:, index]``: one copy on NumPy (``np.ix_``), two elsewhere (``take``)."""
    if compat.is_numpy_namespace(xp):
        return A[np.ix_(index_host, index_host)]
    return xp.take(xp.take(A, index, axis=0), index, axis=1)


def _bordered(xp: Any, A: Any, J: Any) -> Any:
    r = J.shape[0]
    top = xp.concat([A, xp.matrix_transpose(J)], axis=1)
    bottom = xp.concat([J, xp.zeros((r, r), dtype=A.dtype, device=compat.device(A))], axis=1)
    return xp.concat([top, bottom], axis=0)
