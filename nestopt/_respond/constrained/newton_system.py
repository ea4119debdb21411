"""The primal-dual Newton system, factored once per iteration with IPOPT's inertia correction.

With ``v = (x, s)``, the rows ``r(v) = (c_E - b_E, c_I - s)`` and their
Jacobian ``A = [[J_E, 0], [J_I, -I]]``, the system is

    [ W + Sigma + delta_w I     A^T       ] [dv]   [b_v]
    [ A                      -delta_c I   ] [dy] = [b_y]

(Wachter & Biegler 2006, eq. 13). The slack block ``Sigma_s + delta_w`` is
diagonal and positive, so it is eliminated exactly, leaving

    [ W + Sigma_x + delta_w I   J^T ] [dx]   [b_x               ]
    [ J                         -D  ] [dy] = [b_y + (0, D_s b_s)]

with ``D = (delta_c, delta_c + D_s)``, ``D_s = 1/(Sigma_s + delta_w)``; its
inertia must be ``(n, m, 0)`` for the step to be a descent direction of a
minimum. NumPy factors it with Bunch-Kaufman and reads the inertia from the
pivots; other array libraries condense the inequality rows,
``H = W + Sigma_x + delta_w I + J_I^T D_I^{-1} J_I``, test ``H`` by Cholesky
and keep the equality rows in the Schur complement ``J_E H^{-1} J_E^T +
delta_c I`` (positive definite exactly when the inertia is right, given
``H`` positive definite; when ``H`` is not, the shift grows: conservative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import array_api_compat as compat

from ..._errors import FactorizationError
from ..._linalg.ldl import SymmetricFactor, factor_positive, factor_symmetric

__all__ = ["InertiaCorrection", "NewtonSystem", "factor_newton_system"]

# IPOPT's constants (Wachter & Biegler 2006, Algorithm IC).
DELTA_W_FIRST, DELTA_W_MIN, DELTA_W_MAX = 1e-4, 1e-20, 1e40
KAPPA_W_MINUS, KAPPA_W_PLUS, KAPPA_W_PLUS_FIRST = 1.0 / 3.0, 8.0, 100.0
DELTA_C_BAR, KAPPA_C = 1e-8, 0.25


@dataclass
class InertiaCorrection:
    """The shift that worked last (``delta_w_last``), remembered across iterations."""

    delta_w_last: float = 0.0


@dataclass
class NewtonSystem:
    """The factored system; `solve` returns ``(dx, ds, dyE, dyI)`` for ``(b_x, b_s, b_E, b_I)``."""

    xp: Any
    n: int
    mE: int
    mI: int
    JE: Any
    JI: Any
    Ds: Any  # 1 / (Sigma_s + delta_w)
    DI: Any  # delta_c + Ds
    delta_w: float
    delta_c: float
    factor: SymmetricFactor | None  # the reduced system (LDL^T), or
    condensed: tuple[SymmetricFactor, SymmetricFactor | None] | None  # (H, Schur) Cholesky

    def solve(self, b_x: Any, b_s: Any, b_E: Any, b_I: Any) -> tuple[Any, Any, Any, Any]:
        xp = self.xp
        b_I2 = b_I + self.Ds * b_s
        if self.factor is not None:
            out = self.factor.solve(xp.concat([b_x, b_E, b_I2]))
            dx = out[: self.n]
            dyE, dyI = out[self.n : self.n + self.mE], out[self.n + self.mE :]
        else:
            dx, dyE, dyI = self._solve_condensed(b_x, b_E, b_I2)
        ds = self.Ds * (b_s + dyI)
        return dx, ds, dyE, dyI

    def _solve_condensed(self, b_x: Any, b_E: Any, b_I2: Any) -> tuple[Any, Any, Any]:
        xp = self.xp
        assert self.condensed is not None, "the condensed path is taken only when it was built"
        H, schur = self.condensed
        rhs = b_x + xp.matrix_transpose(self.JI) @ (b_I2 / self.DI) if self.mI else b_x
        if self.mE:
            assert schur is not None, "equality rows have their Schur complement factored"
            t = H.solve(rhs)
            dyE = schur.solve(self.JE @ t - b_E)
            dx = H.solve(rhs - xp.matrix_transpose(self.JE) @ dyE)
        else:
            dyE = b_E
            dx = H.solve(rhs)
        dyI = (self.JI @ dx - b_I2) / self.DI if self.mI else b_I2
        return dx, dyE, dyI


def factor_newton_system(
    W: Any, sigma_x: Any, sigma_s: Any, JE: Any, JI: Any, mu: float,
    correction: InertiaCorrection, *, first_shift: float | None = None,
) -> NewtonSystem:  # fmt: skip
    """Factor the system with the smallest shifts that give it the inertia of a minimum.

    IPOPT's rule: try ``delta_w = 0``; on a zero eigenvalue with rows present,
    ``delta_c = 1e-8 mu^(1/4)``; then ``delta_w = 1e-4`` (no earlier shift) or
    a third of the last one, multiplied by 100 (no earlier shift) or 8 until
    the inertia is right. Raises `FactorizationError` past ``delta_w = 1e40``.
    """
    xp = compat.array_namespace(W)
    n, mE, mI = W.shape[0], JE.shape[0], JI.shape[0]
    ldl = compat.is_numpy_namespace(xp) and mE + mI > 0
    delta_c = 0.0
    delta_w = 0.0 if first_shift is None else first_shift
    tried_zero = False
    while True:
        system, inertia = _attempt(xp, W, sigma_x, sigma_s, JE, JI, delta_w, delta_c, ldl)
        if system is not None and inertia == (n, mE + mI, 0):
            if delta_w > 0:
                correction.delta_w_last = delta_w
            return system
        if inertia is not None and inertia[2] > 0 and mE + mI and delta_c == 0.0 and not tried_zero:
            # A zero eigenvalue: dependent row gradients; regularize the rows first.
            tried_zero = True
            delta_c = DELTA_C_BAR * max(mu, 0.0) ** KAPPA_C
            continue
        if delta_w == 0.0:
            last = correction.delta_w_last
            delta_w = DELTA_W_FIRST if last == 0.0 else max(DELTA_W_MIN, KAPPA_W_MINUS * last)
        else:
            grow = KAPPA_W_PLUS_FIRST if correction.delta_w_last == 0.0 else KAPPA_W_PLUS
            delta_w *= grow
        if delta_w > DELTA_W_MAX:
            raise FactorizationError(
                "no Hessian shift up to 1e40 gave the Newton system the inertia of a minimum"
            )


def _attempt(
    xp: Any, W: Any, sigma_x: Any, sigma_s: Any, JE: Any, JI: Any, delta_w: float,
    delta_c: float, ldl: bool,
) -> tuple[NewtonSystem | None, tuple[int, int, int] | None]:  # fmt: skip
    n, mE, mI = W.shape[0], JE.shape[0], JI.shape[0]
    Ds = 1.0 / (sigma_s + delta_w)
    DI = delta_c + Ds
    eye = xp.eye(n, dtype=W.dtype, device=compat.device(W))
    H = W + (sigma_x + delta_w)[:, None] * eye
    if ldl:
        J = xp.concat([JE, JI], axis=0)
        D = xp.concat([xp.full((mE,), delta_c, dtype=W.dtype), DI])
        top = xp.concat([H, xp.matrix_transpose(J)], axis=1)
        bottom = xp.concat([J, -D[:, None] * xp.eye(mE + mI, dtype=W.dtype)], axis=1)
        try:
            factor = factor_symmetric(xp.concat([top, bottom], axis=0), xp)
        except FactorizationError:
            return None, None
        system = NewtonSystem(xp, n, mE, mI, JE, JI, Ds, DI, delta_w, delta_c, factor, None)
        return system, factor.inertia
    if mI:
        H = H + xp.matrix_transpose(JI) @ (JI / DI[:, None])
    try:
        Hf = factor_positive(0.5 * (H + xp.matrix_transpose(H)), xp)
    except FactorizationError:
        return None, (0, 0, 0)  # not positive definite: shift
    schur = None
    if mE:
        S = JE @ Hf.solve(xp.matrix_transpose(JE)) + delta_c * xp.eye(mE, dtype=W.dtype)
        try:
            schur = factor_positive(0.5 * (S + xp.matrix_transpose(S)), xp)
        except FactorizationError:
            return None, (n, mI, mE)  # rank-deficient equality rows: a zero eigenvalue
    system = NewtonSystem(xp, n, mE, mI, JE, JI, Ds, DI, delta_w, delta_c, None, (Hf, schur))
    return system, (n, mE + mI, 0)
