"""The engine's view of a problem: scaled, rows split, slacks added, bounds kept as bounds.

Rows become equalities (``c_lower == c_upper``, no slack) or inequalities
``c_I(x) - s = 0`` with a slack ``s`` bounded by the row's sides (IPOPT,
Wachter & Biegler 2006, section 3.1); rows open on both sides take no part.
The primal vector is ``v = (x, s)`` with bounds ``l_v <= v <= u_v``, and the
rows ``r(v) = (c_E(x) - b_E, c_I(x) - s)`` must vanish. The objective is
multiplied by ``f_scale`` and row ``i`` by ``row_scale_i``, both from the
gradients at the start (so multiplying ``f`` or a row by a constant does not
change the iterates), within ``[1/limit, limit]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import array_api_compat as compat
import numpy as np

from ..._backend.host import to_numpy
from ..._errors import NestoptError, NonFiniteError, TimeLimitError
from .nlp import ConstrainedNLP, Evaluation

__all__ = ["BarrierForm", "ScaledPoint", "evaluation_failed"]


@dataclass(eq=False)
class ScaledPoint:
    """The problem at one ``x`` in scaled units, rows in the engine's order (E, then I)."""

    x: Any
    ev: Evaluation
    f: float  # scaled objective
    g: Any  # scaled gradient (n,)
    cE: Any  # scaled c_E - b_E (mE,)
    cI: Any  # scaled c_I (mI,)
    JE: Any  # (mE, n)
    JI: Any  # (mI, n)


class BarrierForm:
    """Scaling, row split and slack bounds of one problem (fixed for a whole solve)."""

    def __init__(self, nlp: ConstrainedNLP, x0: Any, limit: float) -> None:
        xp = compat.array_namespace(x0)
        self.nlp, self.xp = nlp, xp
        self.dtype, self.device = x0.dtype, compat.device(x0)
        self.n = x0.shape[0]
        cl = np.asarray(_host(nlp.c_lower), dtype=float).reshape(-1)
        cu = np.asarray(_host(nlp.c_upper), dtype=float).reshape(-1)
        self.m = cl.shape[0]
        eq = cl == cu
        free = ~eq & ~np.isfinite(cl) & ~np.isfinite(cu)
        self.eq_rows = np.flatnonzero(eq)
        self.ineq_rows = np.flatnonzero(~eq & ~free)
        self.free_rows = np.flatnonzero(free)
        self.mE, self.mI = self.eq_rows.size, self.ineq_rows.size
        order = np.concatenate([self.eq_rows, self.ineq_rows])
        self._order = self.index(order)
        # Where each original row sits in the engine's order; open rows read a zero pad.
        position = np.full(self.m, order.size, dtype=np.int64)
        position[order] = np.arange(order.size)
        self._position = self.index(position)
        self.cl, self.cu = cl, cu
        self.limit = limit
        self.f_scale = 1.0
        self.row_scale = np.ones(self.m)
        self.start_gradient = None

    # -- arrays -----------------------------------------------------------------------

    def arr(self, a: Any) -> Any:
        return self.xp.asarray(np.asarray(a, dtype=float), dtype=self.dtype, device=self.device)

    def index(self, a: Any) -> Any:
        return self.xp.asarray(np.asarray(a, dtype=np.int64), device=self.device)

    def take_rows(self, a: Any, rows: Any) -> Any:
        return self.xp.take(a, self.index(rows), axis=0)

    # -- scaling ----------------------------------------------------------------------

    def set_scaling(self, ev: Evaluation, x: Any) -> None:
        """Scale ``f`` by its gradient (by its curvature times ``|x|`` at a stationary start)
        and each row by its gradient's largest entry."""
        xp, lim = self.xp, self.limit
        gmax = float(xp.max(xp.abs(ev.grad))) if self.n else 0.0
        reference = gmax
        zero = xp.zeros((self.m,), dtype=self.dtype, device=self.device)
        hessian = self.nlp.lagrangian_hessian(ev, zero) if self.n else None
        # Each variable's curvature times its size: its share of the gradient's scale.
        xh = np.abs(np.asarray(_host(x), dtype=float))
        diag = np.abs(np.diagonal(np.asarray(_host(hessian), dtype=float))) if self.n else xh
        curvature = diag * np.maximum(xh, 1.0)
        if not gmax > 0 and self.n:
            reference = float(np.max(curvature))
        self.f_scale = 1.0 if not reference > 0 else min(max(1.0 / reference, 1 / lim), lim)
        grad = np.abs(np.asarray(_host(ev.grad), dtype=float))
        self.start_gradient = np.maximum(grad, curvature) * self.f_scale
        if self.m:
            J = np.asarray(_host(ev.jac), dtype=float).reshape(self.m, self.n)
            norms = np.max(np.abs(J), axis=1) if self.n else np.zeros(self.m)
            scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 1.0)
            self.row_scale = np.clip(scale, 1 / lim, lim)

    @property
    def bE(self) -> Any:
        return self.arr(self.cl[self.eq_rows] * self.row_scale[self.eq_rows])

    def slack_bounds(self) -> tuple[Any, Any]:
        rows = self.ineq_rows
        return self.cl[rows] * self.row_scale[rows], self.cu[rows] * self.row_scale[rows]

    # -- evaluation -------------------------------------------------------------------

    def evaluate(self, x: Any, raw: Evaluation | None = None) -> ScaledPoint:
        """The problem at ``x`` (evaluated already: ``raw``), scaled; raises
        `NonFiniteError` on NaN or Inf."""
        xp = self.xp
        ev = Evaluation(*self.nlp.evaluate(x)) if raw is None else raw
        f = float(ev.f)
        g, c, J = ev.grad, ev.c, ev.jac
        if self.m:
            c = xp.reshape(c, (self.m,))
            J = xp.reshape(J, (self.m, self.n))
        finite = np.isfinite(f) and bool(xp.all(xp.isfinite(g)))
        if self.m:
            finite = finite and bool(xp.all(xp.isfinite(c))) and bool(xp.all(xp.isfinite(J)))
        if not finite:
            raise NonFiniteError("the problem returned NaN or Inf")
        scale = self.arr(self.row_scale)
        cs = c * scale if self.m else xp.zeros((0,), dtype=self.dtype, device=self.device)
        Js = J * scale[:, None] if self.m else xp.zeros((0, self.n), dtype=self.dtype)
        cE = self.take_rows(cs, self.eq_rows) - self.bE
        cI = self.take_rows(cs, self.ineq_rows)
        JE, JI = self.take_rows(Js, self.eq_rows), self.take_rows(Js, self.ineq_rows)
        return ScaledPoint(x, ev, self.f_scale * f, self.f_scale * g, cE, cI, JE, JI)

    def hessian(self, point: ScaledPoint, y: Any) -> Any:
        """The scaled Lagrangian Hessian for the engine's row multipliers ``y``."""
        W = self.nlp.lagrangian_hessian(point.ev, self.unscaled_rows(y))
        return self.f_scale * (0.5 * (W + self.xp.matrix_transpose(W)))

    def unscaled_rows(self, y: Any) -> Any:
        """Row multipliers in the problem's own units and order (``L = f + y^T c``)."""
        xp = self.xp
        padded = xp.concat([y, xp.zeros((1,), dtype=self.dtype, device=self.device)])
        full = xp.take(padded, self._position)
        return full * self.arr(self.row_scale / self.f_scale) if self.m else full

    def scaled_rows(self, y_full: Any) -> Any:
        """The engine's row multipliers from the problem's own (inverse of `unscaled_rows`)."""
        if not self.m:
            return y_full
        ys = y_full * self.arr(self.f_scale / self.row_scale)
        return self.xp.take(ys, self._order)


def evaluation_failed(exc: BaseException) -> bool:
    """Is ``exc`` a failed evaluation a step can back away from (a level below that did
    not converge, NaN), rather than an error to pass on (a bad callable, the time limit)?"""
    return (
        isinstance(exc, NestoptError)
        and exc.status is not None
        and not isinstance(exc, TimeLimitError)
    )


def _host(a: Any) -> Any:
    return to_numpy(a)
