"""The `nestopt.problems.bolib` problems as CasADi expressions, for IPOPT on their KKT/MPEC form.

The problems' callables are written against the array API (``A @ w``,
``xp.pow``) and cannot be traced by CasADi's SX, but every `bolib` problem is
stored as data: a `Spec` whose objectives and constraints are sums of terms
(`nestopt.problems._terms`: ``power``, ``exponential``, ``monomial``). This
module turns those same terms into SX expressions, so IPOPT and nestopt solve
one written-down problem; `check_against` compares the two at a point.

The reformulation (as in ``constrained_vs_mpec.py``): the follower's rows in
nestopt's order (linear rows, nonlinear rows, then its bounds), one side
``g_s = sign_s (c_i - b_s) >= 0`` per finite side of each inequality, one free
multiplier per equality, in the variables ``z = (x, y, lam, nu)``::

    min  F(x, y)
    s.t. grad_y f(x, y) - J_y c(x, y)^T (S^T lam + E^T nu) = 0
         g_s >= 0,  c_e = b_e,  the leader's rows,  lam >= 0,  the leader's bounds
         lam_s g_s <= eps

``eps = 0`` (``complementarity="inequality"``, one IPOPT solve: with ``lam,
g >= 0`` the products vanish; IPOPT's relaxation of its own bounds keeps
the interior nonempty) or Scholtes' schedule eps = 1e-2, 1e-4, ..., 1e-10,
each stage warm-started from the last (``"relaxed"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nestopt.problems._bolib_data import PROBLEMS
from nestopt.problems._terms import _Monomial

__all__ = ["CasadiMpec", "build"]


def _term(term: Any, var: dict[str, Any]) -> Any:
    if isinstance(term, _Monomial):
        out = term.scale
        for name, k in term.powers.items():
            out = out * var[name] ** k
        return out
    u = term.shift
    for name, a in term.coef.items():
        u = u + a * var[name]
    if term.kind == "exp":
        import casadi

        return term.scale * casadi.exp(u)
    return term.scale * u**term.p


def _sum(terms: Any, var: dict[str, Any]) -> Any:
    out = 0.0
    for t in terms:
        out = out + _term(t, var)
    return out


def _rows(rows: Any, var: dict[str, Any]) -> tuple[list[Any], list[float], list[float]]:
    """Linear rows first, then nonlinear ones: nestopt's order (`bolib._constraints`)."""
    linear = [r for r in rows if isinstance(r[1], dict)]
    nonlinear = [r for r in rows if not isinstance(r[1], dict)]
    exprs, lbs, ubs = [], [], []
    for _, coef, lo, hi in linear:
        e = 0.0
        for name, a in coef.items():
            e = e + a * var[name]
        exprs.append(e)
        lbs.append(float(lo))
        ubs.append(float(hi))
    for _, terms, lo, hi in nonlinear:
        exprs.append(_sum(terms, var))
        lbs.append(float(lo))
        ubs.append(float(hi))
    return exprs, lbs, ubs


@dataclass
class CasadiMpec:
    """One problem's MPEC for CasADi's ``nlpsol``; ``z = (x, y, lam, nu)``."""

    name: str
    nx: int
    ny: int
    p: int  # inequality sides of the follower
    q: int  # follower equalities
    z: Any
    F: Any
    f: Any
    g_core: Any  # stationarity, follower equalities, follower sides, leader rows
    lbg_core: Any
    ubg_core: Any
    comp: Any  # lam_s g_s (p,)
    lbz: Any
    ubz: Any
    x0: Any
    y0: Any

    @property
    def D(self) -> int:
        return self.nx + self.ny

    @property
    def n(self) -> int:
        return self.D + self.p + self.q

    def bounds_for_starts(self) -> list[tuple[float | None, float | None]]:
        """``(lo, hi)`` per variable, None where infinite (for ``constrained_vs_mpec.starts``)."""
        return [
            (None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi)
            for lo, hi in zip(self.lbz, self.ubz, strict=True)
        ]


def build(name: str) -> CasadiMpec:
    """The KKT/MPEC reformulation of ``bolib(name)`` as SX expressions."""
    import casadi

    spec = PROBLEMS[name]()
    nx, ny = len(spec.x), len(spec.y)
    x = casadi.SX.sym("x", nx)
    y = casadi.SX.sym("y", ny)
    var = {v: x[i] for i, v in enumerate(spec.x)} | {v: y[i] for i, v in enumerate(spec.y)}
    F = _sum(spec.F, var)
    f = _sum(spec.f, var)
    lower, lo_l, hi_l = _rows(spec.lower, var)
    for i, (lo, hi) in enumerate(spec.y_bounds or ()):
        lower.append(y[i])
        lo_l.append(float(lo))
        hi_l.append(float(hi))
    upper, lo_u, hi_u = _rows(spec.upper, var)
    # sides g_s >= 0 and equalities of the follower, in row order
    sides, eqs = [], []
    for c, lo, hi in zip(lower, lo_l, hi_l, strict=True):
        if lo == hi:
            eqs.append(c - lo)
            continue
        if np.isfinite(lo):
            sides.append(c - lo)
        if np.isfinite(hi):
            sides.append(hi - c)
    p, q = len(sides), len(eqs)
    lam = casadi.SX.sym("lam", p)
    nu = casadi.SX.sym("nu", q)
    g_sides = casadi.vertcat(*sides) if sides else casadi.SX(0, 1)
    h_eq = casadi.vertcat(*eqs) if eqs else casadi.SX(0, 1)
    lagrangian = f - casadi.dot(lam, g_sides) - casadi.dot(nu, h_eq)
    stationarity = casadi.gradient(lagrangian, y)
    core = [stationarity, h_eq, g_sides]
    lbg = [np.zeros(ny), np.zeros(q), np.zeros(p)]
    ubg = [np.zeros(ny), np.zeros(q), np.full(p, np.inf)]
    if upper:
        core.append(casadi.vertcat(*upper))
        lbg.append(np.array(lo_u))
        ubg.append(np.array(hi_u))
    xb = spec.x_bounds or [(-np.inf, np.inf)] * nx
    lbz = np.concatenate(
        [[b[0] for b in xb], np.full(ny, -np.inf), np.zeros(p), np.full(q, -np.inf)]
    )
    ubz = np.concatenate([[b[1] for b in xb], np.full(ny + p + q, np.inf)])
    return CasadiMpec(
        name=name,
        nx=nx,
        ny=ny,
        p=p,
        q=q,
        z=casadi.vertcat(x, y, lam, nu),
        F=F,
        f=f,
        g_core=casadi.vertcat(*core),
        lbg_core=np.concatenate(lbg),
        ubg_core=np.concatenate(ubg),
        comp=lam * g_sides,
        lbz=lbz.astype(float),
        ubz=ubz.astype(float),
        x0=np.array(spec.x0, dtype=float),
        y0=np.array(spec.y0, dtype=float),
    )


def check_against(m: CasadiMpec, problem: Any, seed: int = 0) -> float:
    """Largest relative difference of ``F`` and ``f`` between the SX expressions and nestopt's
    callables at the start and at a random point (a guard against a translation error)."""
    import casadi

    xy = casadi.vertcat(m.z[: m.D])
    funs = casadi.Function("Ff", [xy], [m.F, m.f])
    rng = np.random.default_rng(seed)
    start = np.concatenate([m.x0, m.y0])
    worst = 0.0
    for w in (start, start + rng.uniform(-0.5, 0.5, m.D)):
        xs = (w[: m.nx], w[m.nx :])
        ours = [float(problem.levels[k].value(*xs)) for k in (0, 1)]
        theirs = [float(v) for v in funs(w)]
        for a, b in zip(ours, theirs, strict=True):
            worst = max(worst, abs(a - b) / max(1.0, abs(a)))
    return worst
