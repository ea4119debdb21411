"""Hypergradient error and time: implicit differentiation against ITD.

For ``quad(3, d)`` (closed-form truth) and ``softplus_levels(3, d)`` (truth:
the exact mode at a tight tolerance, checked against fourth-order central
differences of the value function ``F_1`` along random directions), at a
random ``x_1`` with the lower levels started from the problem's ``x0``:

- implicit, ``curvature='exact'`` and ``'first_order'`` (Newton solves of
  the lower levels, then the composed Jacobians);
- ITD with ``T`` steps per lower level, nested (``T**2`` level-3 steps).

ITD's step size per level is ``1/L_k``, ``L_k`` the largest eigenvalue of
level k's own block of its first-order reduced Hessian ``P_k^T hess f_k P_k``
at the start (for the last level simply its own Hessian block); this is the
curvature its gradient steps see, so the steps are stable and near the
fastest constant step. A cell whose time, extrapolated from the previous
``T`` (cost grows as ``T**2``), exceeds the budget is skipped.

    python benchmarks/hypergrad_accuracy.py [--quick] [--budget SECONDS] [--threads N]
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import numpy as np
from _common import (
    RESULTS,
    ROOT,
    fmt,
    limit_threads,
    machine_info,
    measure,
    parser,
    print_machine,
    print_table,
    write_json,
)

import nestopt
from nestopt.problems import quad, quad_reference, softplus_levels

TIGHT = {"tol": 1e-13}
ROUNDING = 1e-14  # relative errors below this are float64 rounding (about 50 eps)


def step_sizes(problem: Any, xs: tuple[Any, ...]) -> tuple[float, ...]:
    """``1/L_k`` for levels 2..n at ``xs`` (see the module docstring)."""
    sizes = problem.data["sizes"]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    P = np.eye(offsets[-1])
    alphas = {}
    for k in range(problem.n, 1, -1):
        lo, hi = offsets[k - 1], offsets[k]
        H = P.T @ np.asarray(problem.levels[k - 1].hess(*xs)) @ P
        A = H[lo:hi, lo:hi]
        alphas[k] = 1.0 / float(np.linalg.eigvalsh(A)[-1])
        G = -np.linalg.solve(A, H[lo:hi, :lo])
        P = P @ np.vstack([np.eye(lo), G])
    return tuple(alphas[k] for k in range(2, problem.n + 1))


def value_function(problem: Any, x1: Any, start: tuple[Any, ...]) -> float:
    return nestopt.best_response(problem, [x1, *start[1:]], level_options=TIGHT).fun


def truth_softplus(problem: Any, x1: Any, directions: int, rng: Any) -> tuple[Any, float]:
    """Exact-mode hypergradient at a tight tolerance, and its check by finite differences.

    The check: for random unit ``u``, the directional derivative of ``F_1``
    by fourth-order central differences (``h = 1e-3``: truncation ``h**4``,
    rounding ``eps |F_1| / h``, both near 1e-12) against ``u . g``; returns
    the largest discrepancy relative to ``|g|``.
    """
    result = nestopt.best_response(problem, [x1, *problem.x0[1:]], level_options=TIGHT)
    g = np.asarray(result.hypergrad)
    h = 1e-3
    worst = 0.0
    for _ in range(directions):
        u = rng.standard_normal(x1.shape[0])
        u /= np.linalg.norm(u)
        f = [value_function(problem, x1 + s * h * u, result.xs) for s in (-2, -1, 1, 2)]
        fd = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
        worst = max(worst, abs(fd - u @ g) / np.linalg.norm(g))
    return g, worst


def rel_error(g: Any, truth: Any) -> float:
    return float(np.linalg.norm(np.asarray(g) - truth) / np.linalg.norm(truth))


def run_cell(fn: Any, budget: float) -> tuple[float, Any, int]:
    """Time ``fn``: one run (the warm-up); if cheap, the median of repeats after it."""
    start = time.perf_counter()
    value = fn()
    first = time.perf_counter() - start
    if first * 10 > budget:
        return first, value, 1
    m = measure(fn, repeats=5, warmup=0, budget=budget / 4)
    return m["median"], m["value"], len(m["times"])


def setup(family: str, d: int, seed: int, directions: int) -> tuple[Any, Any, Any, dict]:
    """The problem, the point ``xs`` (random ``x_1``, lower levels at ``x0``), the truth."""
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(d)
    if family == "quad":
        problem = quad(3, d, seed)
        ref = quad_reference(problem.data["Q"], problem.data["c"], problem.data["sizes"])
        truth = ref["hessian"] @ x1 + ref["grad_at_zero"]
        check: dict[str, Any] = {"truth": "closed form (quad_reference)"}
    else:
        problem = softplus_levels(3, d, seed)
        start = time.perf_counter()
        truth, fd_gap = truth_softplus(problem, x1, directions, rng)
        check = {
            "truth": "exact mode, tol 1e-13",
            "fd_directions": directions,
            "fd_max_rel_gap": fd_gap,
            "seconds": time.perf_counter() - start,
        }
    return problem, (x1, *problem.x0[1:]), truth, check


def grid(
    problem: Any,
    xs: Any,
    truth: Any,
    alphas: Any,
    base: dict[str, Any],
    steps_grid: Any,
    clock: dict[str, float],
) -> list[dict[str, Any]]:
    """The implicit cells and the ITD cells of one problem; ``clock`` tracks ITD's budget."""
    rows = []
    for curvature in ("exact", "first_order"):
        t, g, reps = run_cell(
            lambda c=curvature: nestopt.hypergradient(problem, xs, curvature=c), clock["budget"]
        )
        rows.append(
            {
                **base,
                "method": f"implicit {curvature}",
                "T": None,
                "rel_error": rel_error(g, truth),
                "seconds": t,
                "repeats": reps,
            }
        )
        print_progress(rows[-1])
    previous = None
    for T in steps_grid:
        row = {**base, "method": "itd", "T": T}
        if previous is not None:
            estimate = previous[1] * (T / previous[0]) ** 2
            if estimate > clock["budget"] or clock["spent"] + estimate > clock["total"]:
                rows.append({**row, "skipped": f"skipped (>budget: est. {estimate:.0f} s)"})
                print_progress(rows[-1])
                continue
        started = time.perf_counter()
        t, g, reps = run_cell(
            lambda T=T: nestopt.hypergradient(problem, xs, method="itd", steps=T, step_size=alphas),
            clock["budget"],
        )
        previous = (T, t)
        clock["spent"] += time.perf_counter() - started
        rows.append({**row, "rel_error": rel_error(g, truth), "seconds": t, "repeats": reps})
        print_progress(rows[-1])
    return rows


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=None, help="seconds per ITD cell")
    p.add_argument("--total", type=float, default=None, help="seconds for all ITD cells")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    limit_threads(args.threads)
    budget = args.budget or (1.5 if args.quick else 100.0)
    total = args.total or (20.0 if args.quick else 420.0)
    dims = (10, 100) if args.quick else (10, 100, 400)
    steps_grid = (10, 30, 100, 300)
    directions = 1 if args.quick else 3
    info = machine_info()
    print_machine(info)
    print(
        f"ITD budget: {budget:g} s per cell, {total:g} s in all; T grid {steps_grid}; d grid {dims}"
    )

    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    clock = {"budget": budget, "total": total, "spent": 0.0}
    for family in ("quad", "softplus_levels"):
        for d in dims:
            problem, xs, truth, check = setup(family, d, args.seed, directions)
            alphas = step_sizes(problem, xs)
            checks.append({"family": family, "d": d, "alphas": alphas, **check})
            rows += grid(problem, xs, truth, alphas, {"family": family, "d": d}, steps_grid, clock)

    print_table(
        rows,
        ["family", "d", "method", "T", "rel_error", "seconds", "repeats", "skipped"],
        "Relative hypergradient error and median time (lower levels started from x0)",
    )
    print_table(
        checks,
        ["family", "d", "truth", "fd_directions", "fd_max_rel_gap", "alphas"],
        "Ground truth and ITD step sizes 1/L_k (levels 2, 3)",
    )
    summary = summarize(rows)
    print_table(
        summary,
        [
            "family",
            "d",
            "itd_best_T",
            "itd_best_error",
            "itd_seconds",
            "implicit_error",
            "implicit_seconds",
            "speedup",
            "as_accurate",
            "target_met",
        ],
        "Implicit (exact) against ITD at its most accurate T run (target at d=100: speedup "
        ">= 20 and error <= ITD's; errors both below 1e-14, float64 rounding, count as equal)",
    )
    plot(rows, args.quick)
    write_json(
        "hypergrad_accuracy",
        {
            "machine": info,
            "args": vars(args),
            "budget": budget,
            "rows": rows,
            "truth": checks,
            "summary": summary,
        },
    )


def print_progress(row: dict[str, Any]) -> None:
    what = row.get("skipped") or f"error {fmt(row['rel_error'])}, {fmt(row['seconds'])} s"
    T = f" T={row['T']}" if row["T"] else ""
    print(f"  {row['family']} d={row['d']} {row['method']}{T}: {what}", flush=True)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for family in dict.fromkeys(r["family"] for r in rows):
        for d in dict.fromkeys(r["d"] for r in rows if r["family"] == family):
            cell = [r for r in rows if r["family"] == family and r["d"] == d]
            implicit = next(r for r in cell if r["method"] == "implicit exact")
            itd = [r for r in cell if r["method"] == "itd" and "rel_error" in r]
            best = min(itd, key=lambda r: r["rel_error"])
            speedup = best["seconds"] / implicit["seconds"]
            rounding = max(implicit["rel_error"], best["rel_error"]) < ROUNDING
            as_accurate = implicit["rel_error"] <= best["rel_error"] or rounding
            met = speedup >= 20 and as_accurate
            out.append(
                {
                    "family": family,
                    "d": d,
                    "itd_best_T": best["T"],
                    "itd_best_error": best["rel_error"],
                    "itd_seconds": best["seconds"],
                    "implicit_error": implicit["rel_error"],
                    "implicit_seconds": implicit["seconds"],
                    "speedup": speedup,
                    "as_accurate": "both < 1e-14" if rounding else as_accurate,
                    "target_met": met,
                }
            )
    return out


def plot(rows: list[dict[str, Any]], quick: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 4.5), squeeze=False)
    floor = 1e-16  # smaller errors (exact zeros included) are drawn at 1e-16
    for ax, family in zip(axes[0], families, strict=True):
        dims = list(dict.fromkeys(r["d"] for r in rows if r["family"] == family))
        for color, d in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), dims, strict=False):
            cell = [r for r in rows if r["family"] == family and r["d"] == d and "rel_error" in r]
            itd = [r for r in cell if r["method"] == "itd"]
            ax.plot(
                [r["seconds"] for r in itd],
                [max(r["rel_error"], floor) for r in itd],
                "o-",
                color=color,
                label=f"ITD, d={d}",
            )
            for r in itd:
                ax.annotate(
                    f"T={r['T']}",
                    (r["seconds"], max(r["rel_error"], floor)),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
            for method, marker in (("implicit exact", "*"), ("implicit first_order", "s")):
                r = next(r for r in cell if r["method"] == method)
                ax.plot(
                    r["seconds"],
                    max(r["rel_error"], floor),
                    marker,
                    color=color,
                    markersize=12 if marker == "*" else 7,
                    markeredgecolor="black",
                    label=f"{method}, d={d}",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("time per hypergradient (s)")
        ax.set_ylabel("relative error")
        truth = (
            "closed-form truth"
            if family == "quad"
            else "truth: exact mode at tol 1e-13, checked by finite differences"
        )
        ax.set_title(f"{family}(n=3, d); {truth}", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, ncol=1)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "error_vs_time.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path.relative_to(ROOT)}")
    if not quick:
        docs = ROOT / "docs" / "img" / "error_vs_time.png"
        docs.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, docs)
        print(f"copied to {docs.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
