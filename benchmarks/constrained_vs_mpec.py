"""Constrained bilevel problems: nestopt against SciPy on the KKT/MPEC reformulation.

Every problem of `nestopt.problems.bolib_names()` (published bilevel
problems whose follower has active constraints) is solved in one process
by ``nestopt.solve`` from the published start (default top-level optimizer,
then ``optimizer="newton"``), and by SciPy's SLSQP on the single-level
reformulation that replaces the follower by its KKT conditions. Reported:
status, distance to the refined solution (max abs over all variables),
``|F - F*|`` and time; for the MPEC the best feasible of several starts.

The reformulation, built from each problem's own callables (the follower's
rows ``lb <= c(x, y) <= ub`` in nestopt's order: linear rows, nonlinear
rows, then its bounds as rows of the identity), in the variables
``(x, y, lam, nu)``::

    min  F(x, y)
    s.t. grad_y f(x, y) - J_y c(x, y)^T (S^T lam + E^T nu) = 0   stationarity
         g_s = sign_s (c_i(x, y) - b_s) >= 0                     follower inequalities
         c_e(x, y) = b_e                                         follower equalities
         lam_s g_s <= eps         (``--complementarity relaxed``, the default)
         lam_s g_s = 0            (``--complementarity equality``)
         lam >= 0; the leader's rows and its bounds on x

One side ``s`` per finite side of each follower inequality row (``sign_s``
is +1 for ``c_i >= lb_i``, -1 for ``c_i <= ub_i``; ``S`` maps sides to
rows), one free ``nu_e`` per equality row (``E`` selects them). The relaxed
form is Scholtes' regularization: SLSQP solves it for eps = 1e-2, 1e-4,
..., 1e-10, each stage started from the last. A result counts as feasible
when it violates the unrelaxed constraints by at most 1e-6 (products
``lam_s g_s`` included), checked here, whatever SLSQP's own flag says; the
best feasible result is the one of lowest ``F``. Starts: the published
``(x, y)`` with zero multipliers, then seeded random ones around it.

Times: nestopt is the median of 3 runs (1 when the first takes over 2 s),
each capped by ``max_time``; the MPEC time is the median of 3 passes over
all starts (1 when the first takes over 3 s). A nestopt run counts as
solved only with a success status and within 1e-6 of the refined solution.

    python benchmarks/constrained_vs_mpec.py [--quick] [--threads N]
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from _common import (
    limit_threads,
    machine_info,
    measure,
    parser,
    print_machine,
    print_table,
    write_json,
)
from scipy.optimize import minimize

import nestopt
from nestopt.problems import bolib, bolib_names

GTOL = 1e-10
MAX_TIME = 30.0  # seconds: a cap on one nestopt run (a failing run can take minutes)
SOLVED = 1e-6  # distance to the refined solution counted as solved
FEASIBLE = 1e-6  # largest MPEC constraint violation of a result counted as feasible
SAME = 1e-6  # distance between two MPEC results counted as the same point
QUICK = (
    "ClarkWesterberg1990a",
    "Colson2002BIPA5",
    "MuuQuy2003Ex2",
    "Outrata1990Ex2d",
    "AiyoshiShimizu1984Ex2",
    "Outrata1994Ex31",
)


# -- one level's rows lb <= c(x, y) <= ub -----------------------------------------


class Rows:
    """Linear rows, nonlinear rows, then the box on the level's own variable.

    ``values`` ``(m,)``, ``jacobian`` ``(m, D)`` and ``weighted_hessian``
    ``sum_i w_i hess c_i`` ``(D, D)`` of the level's constraint objects
    (nestopt's, or SciPy's ``LinearConstraint``), called with ``(x, y)``.
    """

    def __init__(
        self, level: Any, own: slice, dim: int, xs: tuple[Any, ...], *, box: bool = True
    ) -> None:
        self.dim = dim
        linear = [c for c in level.constraints if hasattr(c, "A")]
        self.nonlinear = [c for c in level.constraints if not hasattr(c, "A")]
        lbs, ubs = [], []
        blocks = []
        for c in linear:
            A = np.atleast_2d(np.asarray(c.A, dtype=float))
            blocks.append(A)
            lbs.append(np.broadcast_to(np.asarray(c.lb, dtype=float), A.shape[:1]))
            ubs.append(np.broadcast_to(np.asarray(c.ub, dtype=float), A.shape[:1]))
        self.A = np.concatenate(blocks) if blocks else np.zeros((0, dim))
        self.sizes = []
        for c in self.nonlinear:
            m = np.atleast_1d(np.asarray(c.fun(*xs))).shape[0]
            self.sizes.append(m)
            lbs.append(np.broadcast_to(np.asarray(c.lb, dtype=float), (m,)))
            ubs.append(np.broadcast_to(np.asarray(c.ub, dtype=float), (m,)))
        n = own.stop - own.start
        box = box and level.bounds is not None
        self.box = np.eye(dim)[own] if box else np.zeros((0, dim))
        if box:
            lbs.append(np.broadcast_to(np.asarray(level.bounds.lb, dtype=float), (n,)))
            ubs.append(np.broadcast_to(np.asarray(level.bounds.ub, dtype=float), (n,)))
        self.lb = np.concatenate(lbs) if lbs else np.zeros(0)
        self.ub = np.concatenate(ubs) if ubs else np.zeros(0)
        self.m = self.lb.shape[0]

    def values(self, xs: tuple[Any, ...]) -> Any:
        w = np.concatenate(xs)
        parts = [self.A @ w]
        parts += [np.atleast_1d(np.asarray(c.fun(*xs), dtype=float)) for c in self.nonlinear]
        parts.append(self.box @ w)
        return np.concatenate(parts)

    def jacobian(self, xs: tuple[Any, ...]) -> Any:
        parts = [self.A]
        for c, m in zip(self.nonlinear, self.sizes, strict=True):
            J = c.jac(*xs)
            if isinstance(J, (tuple, list)):  # per-level blocks
                J = np.concatenate([np.reshape(b, (m, -1)) for b in J], axis=1)
            parts.append(np.reshape(np.asarray(J, dtype=float), (m, self.dim)))
        parts.append(self.box)
        return np.concatenate(parts)

    def weighted_hessian(self, xs: tuple[Any, ...], weights: Any) -> Any:
        H = np.zeros((self.dim, self.dim))
        offset = self.A.shape[0]
        for c, m in zip(self.nonlinear, self.sizes, strict=True):
            w = weights[offset : offset + m]
            offset += m
            if not getattr(c, "linear", False) and np.any(w != 0):
                H += np.asarray(c.hess(*xs, w), dtype=float)
        return H


@dataclass(frozen=True)
class Sides:
    """The rows of one level as inequalities ``g_s >= 0`` and equalities ``h_e = 0``."""

    ineq: Any  # (p,) row index of each side
    sign: Any  # (p,) +1 for c >= lb, -1 for c <= ub
    bound: Any  # (p,) lb or ub
    eq: Any  # (q,) row index of each equality
    eq_value: Any  # (q,)

    @classmethod
    def of(cls, rows: Rows) -> Sides:
        ineq, sign, bound, eq = [], [], [], []
        for i, (lo, hi) in enumerate(zip(rows.lb, rows.ub, strict=True)):
            if lo == hi:
                eq.append(i)
                continue
            for finite, side, value in ((np.isfinite(lo), 1.0, lo), (np.isfinite(hi), -1.0, hi)):
                if finite:
                    ineq.append(i)
                    sign.append(side)
                    bound.append(value)
        eq = np.array(eq, dtype=int)
        return cls(np.array(ineq, dtype=int), np.array(sign), np.array(bound), eq, rows.lb[eq])

    def g(self, c: Any) -> Any:
        return self.sign * (c[self.ineq] - self.bound)

    def g_jac(self, J: Any) -> Any:
        return self.sign[:, None] * J[self.ineq]


# -- the KKT/MPEC reformulation -------------------------------------------------------


class Mpec:
    """The single-level reformulation of a bilevel problem, for SciPy's SLSQP."""

    def __init__(self, problem: Any) -> None:
        upper, lower = problem.levels
        self.nx, self.ny = upper.size, lower.size
        self.D = self.nx + self.ny
        xs = tuple(np.asarray(v, dtype=float) for v in problem.x0)
        self.upper, self.lower = upper, lower
        # the leader's box goes to SLSQP as bounds on x, its other rows as constraints
        self.rows_u = Rows(upper, slice(0, self.nx), self.D, xs, box=False)
        self.rows_l = Rows(lower, slice(self.nx, self.D), self.D, xs)
        self.su, self.sl = Sides.of(self.rows_u), Sides.of(self.rows_l)
        self.p, self.q = len(self.sl.ineq), len(self.sl.eq)
        self.n = self.D + self.p + self.q
        # weights of the follower's rows from (lam, nu): w = S^T lam + E^T nu
        self.W = np.zeros((self.rows_l.m, self.p + self.q))
        self.W[self.sl.ineq, np.arange(self.p)] = self.sl.sign
        self.W[self.sl.eq, self.p + np.arange(self.q)] = 1.0
        box = upper.bounds
        lo_x = np.full(self.nx, -np.inf) if box is None else _side(box.lb, self.nx)
        hi_x = np.full(self.nx, np.inf) if box is None else _side(box.ub, self.nx)
        self.bounds = list(zip(lo_x, hi_x, strict=True)) + [(None, None)] * self.ny
        self.bounds += [(0.0, None)] * self.p + [(None, None)] * self.q
        self._key: bytes | None = None
        self._cache: dict[str, Any] = {}

    # -- pieces at z, cached (SLSQP asks for values and Jacobians at the same z) --
    def _at(self, z: Any) -> dict[str, Any]:
        key = z.tobytes()
        if key != self._key:
            xs = (z[: self.nx].copy(), z[self.nx : self.D].copy())
            self._key, self._cache = key, {"xs": xs}
        return self._cache

    def _get(self, z: Any, name: str) -> Any:
        """Follower rows ``cl``/``Jl``, leader rows ``cu``/``Ju``, follower gradient ``gf``."""
        c = self._at(z)
        if name not in c:
            make = {
                "cl": self.rows_l.values,
                "Jl": self.rows_l.jacobian,
                "cu": self.rows_u.values,
                "Ju": self.rows_u.jacobian,
                "gf": lambda xs: _flat_grad(self.lower.grad(*xs)),
            }[name]
            c[name] = make(c["xs"])
        return c[name]

    def objective(self, z: Any) -> float:
        xs = self._at(z)["xs"]
        return float(self.upper.value(*xs))

    def objective_grad(self, z: Any) -> Any:
        xs = self._at(z)["xs"]
        out = np.zeros(self.n)
        out[: self.D] = _flat_grad(self.upper.grad(*xs))
        return out

    def stationarity(self, z: Any) -> Any:
        mult = z[self.D :]
        return self._get(z, "gf")[self.nx :] - self._get(z, "Jl")[:, self.nx :].T @ (self.W @ mult)

    def stationarity_jac(self, z: Any) -> Any:
        xs, mult = self._at(z)["xs"], z[self.D :]
        w = self.W @ mult
        Hf = np.asarray(self.lower.hess(*xs), dtype=float)
        Hc = self.rows_l.weighted_hessian(xs, w)
        J = self._get(z, "Jl")
        return np.hstack([(Hf - Hc)[self.nx :], -J[:, self.nx :].T @ self.W])

    def equalities(self, z: Any, relaxed: bool) -> Any:
        """Stationarity, follower and leader equalities, complementarity (unless relaxed)."""
        cl, cu = self._get(z, "cl"), self._get(z, "cu")
        parts = [
            self.stationarity(z),
            cl[self.sl.eq] - self.sl.eq_value,
            cu[self.su.eq] - self.su.eq_value,
        ]
        if not relaxed:
            parts.append(z[self.D : self.D + self.p] * self.sl.g(cl))
        return np.concatenate(parts)

    def equalities_jac(self, z: Any, relaxed: bool) -> Any:
        Jl, Ju = self._pad(self._get(z, "Jl")), self._pad(self._get(z, "Ju"))
        parts = [self.stationarity_jac(z), Jl[self.sl.eq], Ju[self.su.eq]]
        if not relaxed:
            parts.append(self._complementarity_jac(z))
        return np.vstack(parts)

    def inequalities(self, z: Any, eps: float | None) -> Any:
        """Follower and leader inequalities ``>= 0``; ``eps - lam_s g_s`` when relaxed."""
        gl = self.sl.g(self._get(z, "cl"))
        parts = [gl, self.su.g(self._get(z, "cu"))]
        if eps is not None:
            parts.append(eps - z[self.D : self.D + self.p] * gl)
        return np.concatenate(parts)

    def inequalities_jac(self, z: Any, eps: float | None) -> Any:
        Jl, Ju = self._pad(self._get(z, "Jl")), self._pad(self._get(z, "Ju"))
        parts = [self.sl.g_jac(Jl), self.su.g_jac(Ju)]
        if eps is not None:
            parts.append(-self._complementarity_jac(z))
        return np.vstack(parts)

    def _complementarity_jac(self, z: Any) -> Any:
        lam = z[self.D : self.D + self.p]
        Jl = self._pad(self._get(z, "Jl"))
        out = lam[:, None] * self.sl.g_jac(Jl)
        out[:, self.D : self.D + self.p] += np.diag(self.sl.g(self._get(z, "cl")))
        return out

    def _pad(self, J: Any) -> Any:
        return np.hstack([J, np.zeros((J.shape[0], self.p + self.q))])

    def violation(self, z: Any) -> float:
        """Largest violation of the (unrelaxed) MPEC constraints and bounds at ``z``."""
        lam = z[self.D : self.D + self.p]
        gl = self.sl.g(self._get(z, "cl"))
        eq = self.equalities(z, relaxed=False)
        ineq = self.inequalities(z, None)
        lo = np.array([-np.inf if b[0] is None else b[0] for b in self.bounds])
        hi = np.array([np.inf if b[1] is None else b[1] for b in self.bounds])
        parts = [np.abs(eq), -ineq, lo - z, z - hi, np.abs(lam * gl)]
        return float(max([np.max(v, initial=0.0) for v in parts]))

    # -- SLSQP ----------------------------------------------------------------------
    def solve(self, z0: Any, complementarity: str) -> Any:
        z = np.array(z0, dtype=float)
        nfev = 0
        schedule = [None] if complementarity == "equality" else [10.0**-k for k in (2, 4, 6, 8, 10)]
        for eps in schedule:
            relaxed = eps is not None
            constraints = [
                {
                    "type": "eq",
                    "fun": lambda z, r=relaxed: self.equalities(z, r),
                    "jac": lambda z, r=relaxed: self.equalities_jac(z, r),
                },
                {
                    "type": "ineq",
                    "fun": lambda z, e=eps: self.inequalities(z, e),
                    "jac": lambda z, e=eps: self.inequalities_jac(z, e),
                },
            ]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = minimize(
                    self.objective,
                    z,
                    jac=self.objective_grad,
                    method="SLSQP",
                    bounds=self.bounds,
                    constraints=constraints,
                    options={"maxiter": 500, "ftol": 1e-14},
                )
            nfev += res.nfev
            if not np.all(np.isfinite(res.x)):
                break
            z = res.x
        return z, bool(res.success), nfev


def _side(v: Any, n: int) -> Any:
    return np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()


def _flat_grad(g: Any) -> Any:
    if isinstance(g, (tuple, list)):
        return np.concatenate([np.asarray(b, dtype=float) for b in g])
    return np.asarray(g, dtype=float)


# -- the runs -----------------------------------------------------------------------------


def starts(mpec: Mpec, problem: Any, count: int, seed: int) -> list[Any]:
    """The published start with zero multipliers, then ``count - 1`` random starts.

    Random ``(x, y)`` are uniform in a box of half-width ``max(1, |v|)`` around
    the published start (``x`` clipped to the leader's bounds), multipliers
    uniform in [0, 1] (equality multipliers in [-1, 1]).
    """
    v = np.concatenate([np.asarray(a, dtype=float) for a in problem.x0])
    out = [np.concatenate([v, np.zeros(mpec.p + mpec.q)])]
    rng = np.random.default_rng(seed)
    lo = np.array([-np.inf if b[0] is None else b[0] for b in mpec.bounds[: mpec.D]])
    hi = np.array([np.inf if b[1] is None else b[1] for b in mpec.bounds[: mpec.D]])
    for _ in range(count - 1):
        r = np.maximum(1.0, np.abs(v))
        xy = np.clip(v + rng.uniform(-r, r), lo, hi)
        lam = rng.uniform(0.0, 1.0, mpec.p)
        nu = rng.uniform(-1.0, 1.0, mpec.q)
        out.append(np.concatenate([xy, lam, nu]))
    return out


def distance(xs: Any, solution: Any) -> float:
    return float(max(np.max(np.abs(np.asarray(a) - np.asarray(b))) for a, b in zip(xs, solution)))


def run_mpec(problem: Any, n_starts: int, complementarity: str, seed: int) -> dict[str, Any]:
    mpec = Mpec(problem)
    zs = starts(mpec, problem, n_starts, seed)

    def all_starts() -> list[tuple[Any, bool, int, float]]:
        out = []
        for z0 in zs:
            tic = time.perf_counter()
            z, ok, nfev = mpec.solve(z0, complementarity)
            out.append((z, ok, nfev, time.perf_counter() - tic))
        return out

    timed = measure(all_starts, repeats=3, warmup=0, budget=3.0)
    results = timed["value"]
    feasible = []
    for z, ok, _, _ in results:
        if np.all(np.isfinite(z)) and mpec.violation(z) <= FEASIBLE:
            feasible.append((mpec.objective(z), z, ok))
    z0 = results[0][0]  # from the published start, as nestopt starts
    first = bool(np.all(np.isfinite(z0)) and mpec.violation(z0) <= FEASIBLE)
    row: dict[str, Any] = {
        "mpec_feasible": len(feasible),
        "mpec_slsqp_success": sum(ok for _, ok, _, _ in results),
        "mpec_total_s": timed["median"],
        "mpec_per_start_s": timed["median"] / len(zs),
        "mpec_starts": len(zs),
        "mpec_nfev": sum(n for _, _, n, _ in results),
        "mpec_published_error": (
            distance((z0[: mpec.nx], z0[mpec.nx : mpec.D]), problem.solution) if first else None
        ),
    }
    if not feasible:
        row.update(mpec_error=None, mpec_dF=None, mpec_reached=0, mpec_F=None)
        return row
    F_best, z_best, _ = min(feasible, key=lambda t: t[0])
    xy_best = z_best[: mpec.D]
    reached = sum(np.max(np.abs(z[: mpec.D] - xy_best)) <= SAME for _, z, _ in feasible)
    xs_best = (xy_best[: mpec.nx], xy_best[mpec.nx :])
    row.update(
        mpec_error=distance(xs_best, problem.solution),
        mpec_dF=abs(F_best - problem.data["F"]),
        mpec_reached=reached,
        mpec_F=F_best,
        mpec_x=xy_best.tolist(),
        mpec_violation=mpec.violation(z_best),
    )
    return row


def run_nestopt(problem: Any, optimizer: str | None) -> dict[str, Any]:
    options = {"gtol": GTOL, "max_time": MAX_TIME}

    def once() -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return nestopt.solve(problem, problem.x0, optimizer=optimizer, options=options)
        except Exception as exc:  # a crash is reported as a status, never as solved
            return exc

    timed = measure(once, repeats=3, warmup=0, budget=2.0)
    r = timed["value"]
    if isinstance(r, Exception):
        return {"status": f"raised {type(r).__name__}", "success": False, "error": None,
                "dF": None, "time_s": timed["median"], "message": str(r)}  # fmt: skip
    status = getattr(r.status, "name", str(r.status))
    dF = None if r.fun is None else abs(float(r.fun) - problem.data["F"])
    return {
        "status": status,
        "success": bool(r.success),
        "error": distance(r.xs, problem.solution),
        "dF": dF,
        "time_s": timed["median"],
        "F": None if r.fun is None else float(r.fun),
        "x": [np.asarray(a).tolist() for a in r.xs],
        "message": r.message,
    }


def solved(result: dict[str, Any]) -> bool:
    return bool(result["success"]) and result["error"] is not None and result["error"] <= SOLVED


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--complementarity", choices=("equality", "relaxed"), default="relaxed")
    p.add_argument("--starts", type=int, default=None, help="MPEC starts (default 10, quick 3)")
    args = p.parse_args()
    limit_threads(args.threads)
    info = machine_info()
    print_machine(info)
    names = QUICK if args.quick else bolib_names()
    n_starts = args.starts or (3 if args.quick else 10)
    rows, records = [], []
    for name in names:
        problem = bolib(name, backend="numpy")
        ours = run_nestopt(problem, None)
        newton = run_nestopt(problem, "newton")
        mpec = run_mpec(problem, n_starts, args.complementarity, seed=0)
        mpec["success"] = mpec["mpec_error"] is not None
        mpec["error"] = mpec["mpec_error"]
        ratio = mpec["mpec_total_s"] / ours["time_s"]
        weak = "*" if problem.data["weakly_active"] else ""
        rows.append(
            {
                "problem": name + weak,
                "nestopt": ours["status"],
                "error": ours["error"],
                "dF": ours["dF"],
                "s": ours["time_s"],
                "newton": newton["status"],
                "newton_error": newton["error"],
                "newton_s": newton["time_s"],
                "mpec_error": mpec["mpec_error"],
                "mpec_dF": mpec["mpec_dF"],
                "reached": f"{mpec['mpec_reached']}/{n_starts}",
                "mpec_s": mpec["mpec_total_s"],
                "start_s": mpec["mpec_per_start_s"],
                "ratio": ratio,
            }
        )
        weak_rows = problem.data["weakly_active"]
        records.append(
            {"problem": name, "nestopt": ours, "newton": newton, "mpec": mpec,
             "weakly_active": weak_rows, "ratio": ratio}
        )  # fmt: skip
        print(
            f"  {name}: nestopt {ours['status']} ({ours['time_s']:.3g} s), newton "
            f"{newton['status']}, MPEC error {_short(mpec['mpec_error'])}",
            flush=True,
        )
    print_table(
        rows,
        list(rows[0]),
        f"nestopt.solve (gtol {GTOL:g}, max_time {MAX_TIME:g} s) against SLSQP on the KKT/MPEC "
        f"reformulation ({args.complementarity} complementarity, {n_starts} starts); error: max "
        "abs distance to the refined solution; s: median seconds; reached: starts at the best "
        "feasible MPEC point (1e-6); mpec_s: all starts, start_s: per start; ratio: mpec_s / s; "
        "* weakly active optimum",
    )
    n_ours = sum(solved(r["nestopt"]) for r in records)
    n_newton = sum(solved(r["newton"]) for r in records)
    n_mpec = sum(solved(r["mpec"]) for r in records)
    n_first = sum(
        r["mpec"]["mpec_published_error"] is not None
        and r["mpec"]["mpec_published_error"] <= SOLVED
        for r in records
    )
    ratios = [r["ratio"] for r in records]
    both = [r["ratio"] for r in records if solved(r["nestopt"]) and solved(r["mpec"])]
    per_start = statistics.median(r["ratio"] / n_starts for r in records)
    print(
        f"\nsolved within {SOLVED:g} of the refined solution (nestopt: with a success status; "
        f"MPEC: at a point violating its constraints by <= {FEASIBLE:g}), of {len(records)}: "
        f"nestopt {n_ours}, nestopt-newton {n_newton}, MPEC (best of {n_starts} starts) "
        f"{n_mpec}, MPEC from the published start alone {n_first}; median time ratio "
        f"MPEC/nestopt {statistics.median(ratios):.3g} (all {n_starts} starts; "
        + (f"{statistics.median(both):.3g} on the {len(both)} solved by both" if both else "-")
        + f"), {per_start:.3g} per start"
    )
    write_json(
        "constrained_vs_mpec",
        {"machine": info, "complementarity": args.complementarity, "starts": n_starts,
         "rows": records},
    )  # fmt: skip


def _short(v: Any) -> str:
    return "-" if v is None else f"{v:.1e}"


if __name__ == "__main__":
    main()
