"""The primal-dual iterate ``(v, y, z_L, z_U)`` and the quantities measured at it.

``v = (x, s)`` with bounds ``l_v <= v <= u_v`` (open sides masked out),
row multipliers ``y`` (engine order: equalities, then inequalities), and
bound multipliers ``z_L, z_U >= 0`` (zero where a side is open). Everything is
in scaled units (`barrier_form`). The KKT error is IPOPT's (Wachter & Biegler
2006, eq. 5), with its ``s_d`` and ``s_c`` scalings so that large multipliers
do not make a converged point look unconverged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .barrier_form import BarrierForm, ScaledPoint

__all__ = ["Iterate", "Space", "to_boundary"]

S_MAX = 100.0  # IPOPT's s_max
KAPPA_D = 1e-5  # damping of variables bounded on one side only
KAPPA_SIGMA = 1e10  # bound multipliers stay within this factor of mu / slack


@dataclass(eq=False)
class Iterate:
    v: Any
    y: Any
    zL: Any
    zU: Any
    point: ScaledPoint

    def moved(self, **changes: Any) -> Iterate:
        return replace(self, **changes)


class Space:
    """Bounds of ``v`` and the measures of an iterate (residuals, barrier, KKT error)."""

    def __init__(self, form: BarrierForm, x_lower: Any, x_upper: Any) -> None:
        self.form, self.xp = form, form.xp
        sl, su = form.slack_bounds()
        lower = np.concatenate([np.asarray(x_lower, dtype=float), sl])
        upper = np.concatenate([np.asarray(x_upper, dtype=float), su])
        self.lower_host, self.upper_host = lower, upper
        self.n, self.N = form.n, lower.size
        self.has_l_host, self.has_u_host = np.isfinite(lower), np.isfinite(upper)
        self.hasL, self.hasU = form.arr(self.has_l_host), form.arr(self.has_u_host)
        self.lv = form.arr(np.where(self.has_l_host, lower, 0.0))
        self.uv = form.arr(np.where(self.has_u_host, upper, 0.0))
        only_l = self.has_l_host & ~self.has_u_host
        only_u = self.has_u_host & ~self.has_l_host
        self.only_l, self.only_u = form.arr(only_l), form.arr(only_u)
        self.bounds_count = int(self.has_l_host.sum() + self.has_u_host.sum())

    # -- slacks to the bounds --------------------------------------------------------

    def dL(self, v: Any) -> Any:
        return self.hasL * (v - self.lv) + (1.0 - self.hasL)

    def dU(self, v: Any) -> Any:
        return self.hasU * (self.uv - v) + (1.0 - self.hasU)

    def sigmas(self, it: Iterate) -> tuple[Any, Any]:
        """``Sigma = z_L / d_L + z_U / d_U`` split into its ``x`` and ``s`` parts."""
        sigma = it.zL / self.dL(it.v) + it.zU / self.dU(it.v)
        return sigma[: self.n], sigma[self.n :]

    # -- rows ----------------------------------------------------------------------------

    def rows(self, point: ScaledPoint, v: Any) -> Any:
        """``r(v) = (c_E - b_E, c_I - s)``."""
        return self.xp.concat([point.cE, point.cI - v[self.n :]])

    def theta(self, point: ScaledPoint, v: Any) -> float:
        r = self.rows(point, v)
        return float(self.xp.sum(self.xp.abs(r))) if r.shape[0] else 0.0

    def At(self, point: ScaledPoint, y: Any) -> Any:
        """``A^T y`` with ``A = [[J_E, 0], [J_I, -I]]``."""
        xp, mE = self.xp, self.form.mE
        yE, yI = y[:mE], y[mE:]
        mT = xp.matrix_transpose
        return xp.concat([mT(point.JE) @ yE + mT(point.JI) @ yI, -yI])

    def A(self, point: ScaledPoint, dv: Any) -> Any:
        dx, ds = dv[: self.n], dv[self.n :]
        return self.xp.concat([point.JE @ dx, point.JI @ dx - ds])

    def grad_f(self, point: ScaledPoint) -> Any:
        xp = self.xp
        return xp.concat([point.g, xp.zeros((self.N - self.n,), dtype=point.g.dtype)])

    # -- barrier problem ------------------------------------------------------------------

    def barrier(self, point: ScaledPoint, v: Any, mu: float) -> float:
        xp = self.xp
        dL, dU = self.dL(v), self.dU(v)
        if bool(xp.any(dL <= 0)) or bool(xp.any(dU <= 0)):
            return float("inf")
        logs = xp.sum(self.hasL * xp.log(dL)) + xp.sum(self.hasU * xp.log(dU))
        damping = xp.sum(self.only_l * dL) + xp.sum(self.only_u * dU)
        return point.f - mu * float(logs) + KAPPA_D * mu * float(damping)

    def barrier_grad(self, point: ScaledPoint, v: Any, mu: float) -> Any:
        dL, dU = self.dL(v), self.dU(v)
        return (
            self.grad_f(point)
            - mu * self.hasL / dL
            + mu * self.hasU / dU
            + KAPPA_D * mu * (self.only_l - self.only_u)
        )

    # -- optimality ------------------------------------------------------------------------

    def dual_residual(self, it: Iterate) -> Any:
        return self.grad_f(it.point) + self.At(it.point, it.y) - it.zL + it.zU

    def kkt_error(self, it: Iterate, mu: float) -> float:
        """IPOPT's ``E_mu`` (``E_0`` for ``mu = 0``)."""
        xp = self.xp
        y_norm = float(xp.sum(xp.abs(it.y))) if it.y.shape[0] else 0.0
        z_norm = float(xp.sum(it.zL) + xp.sum(it.zU))
        count = max(it.y.shape[0] + self.bounds_count, 1)
        s_d = max(S_MAX, (y_norm + z_norm) / count) / S_MAX
        s_c = max(S_MAX, z_norm / max(self.bounds_count, 1)) / S_MAX
        dual = _inf_norm(xp, self.dual_residual(it)) / s_d
        primal = _inf_norm(xp, self.rows(it.point, it.v))
        comp = self.complementarity(it, mu)
        return float(max(dual, primal, comp / s_c))

    def complementarity(self, it: Iterate, mu: float) -> float:
        xp = self.xp
        cL = self.hasL * (self.dL(it.v) * it.zL - mu)
        cU = self.hasU * (self.dU(it.v) * it.zU - mu)
        return max(_inf_norm(xp, cL), _inf_norm(xp, cU))

    def average_complementarity(self, it: Iterate) -> float:
        xp = self.xp
        if not self.bounds_count:
            return 0.0
        total = xp.sum(self.hasL * self.dL(it.v) * it.zL) + xp.sum(
            self.hasU * self.dU(it.v) * it.zU
        )
        return float(total) / self.bounds_count

    def bound_steps(self, it: Iterate, dv: Any, mu: float) -> tuple[Any, Any]:
        """``dz_L, dz_U`` of the barrier step (the eliminated rows of the full system)."""
        dL, dU = self.dL(it.v), self.dU(it.v)
        dzL = self.hasL * (mu / dL - it.zL - it.zL / dL * dv)
        dzU = self.hasU * (mu / dU - it.zU + it.zU / dU * dv)
        return dzL, dzU

    def cap_multipliers(self, it: Iterate, mu: float) -> Iterate:
        """Keep ``z_i d_i`` within ``[mu / kappa, kappa mu]`` (IPOPT's eq. 16)."""
        xp = self.xp
        dL, dU = self.dL(it.v), self.dU(it.v)
        zL = xp.maximum(xp.minimum(it.zL, KAPPA_SIGMA * mu / dL), mu / (KAPPA_SIGMA * dL))
        zU = xp.maximum(xp.minimum(it.zU, KAPPA_SIGMA * mu / dU), mu / (KAPPA_SIGMA * dU))
        return it.moved(zL=self.hasL * zL, zU=self.hasU * zU)

    def primal_step_limit(self, v: Any, dv: Any, tau: float) -> float:
        """The largest step in (0, 1] keeping ``d_L, d_U >= (1 - tau)`` of their values."""
        a = to_boundary(self.xp, self.dL(v), dv, tau, self.hasL)
        return min(a, to_boundary(self.xp, self.dU(v), -dv, tau, self.hasU))

    def dual_step_limit(self, it: Iterate, dzL: Any, dzU: Any, tau: float) -> float:
        a = to_boundary(self.xp, it.zL, dzL, tau, self.hasL)
        return min(a, to_boundary(self.xp, it.zU, dzU, tau, self.hasU))


def to_boundary(xp: Any, d: Any, dd: Any, tau: float, mask: Any) -> float:
    """The largest ``a`` in (0, 1] with ``d + a dd >= (1 - tau) d`` where ``mask`` is set."""
    if d.shape[0] == 0:
        return 1.0
    shrinking = (dd < 0) & (mask > 0)
    if not bool(xp.any(shrinking)):
        return 1.0
    safe = xp.where(shrinking, dd, -xp.ones_like(dd))
    ratios = xp.where(shrinking, -tau * d / safe, 2.0 * xp.ones_like(d))
    return min(1.0, float(xp.min(ratios)))


def _inf_norm(xp: Any, a: Any) -> float:
    return float(xp.max(xp.abs(a))) if a.shape[0] else 0.0
