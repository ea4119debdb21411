"""nestopt's hypergradient time against the bare linear algebra it performs.

Part 1, ``quad(n, d)`` at its solution (every Newton loop stops at
iteration 0), ``curvature='first_order'``: nestopt's ``hypergradient``
against `_bare.adjoint_hypergradient`, the same gradients, reduced rows,
Cholesky factors (``scipy.linalg.cho_factor``), solves (``cho_solve``) and
compositions written directly in NumPy/SciPy, in adjoint mode (DESIGN 8:
one right-hand side at the top); the forward composition (every ``G_k``,
`_bare.hypergradient`) is timed beside it, and so is the minimal adjoint
floor `_bare.floor_hypergradient` (only the Jacobian columns the reduced
Hessians need, DESIGN 8; written without nestopt's reduced-rows code, so it
does not share nestopt's extra work). All are timed alternately in the
same run (medians after a warm-up), and peak memory is measured with
tracemalloc. Target: nestopt/bare adjoint <= 1.25 at d >= 400.

Part 2, ``softplus_levels(3, d)``: ``curvature='exact'`` against
``'first_order'``, both at a point where the lower levels are already
solved and both from the cold start ``x0``. Target: exact <= 1.5 x
first_order.

With ``--profile``, prints nestopt's own functions from a cProfile run of
each part-1 case that misses its target.

    python benchmarks/overhead.py [--quick] [--threads N] [--profile]
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Any

import _bare
import numpy as np
from _common import (
    limit_threads,
    machine_info,
    measure_alternating,
    paired_ratio,
    parser,
    peak_memory,
    print_machine,
    print_table,
    write_json,
)

import nestopt
from nestopt.problems import quad, softplus_levels


def nestopt_profile(fn: Any, seconds: float = 2.0, top: int = 14) -> str:
    """cProfile of ``fn`` called repeatedly for about ``seconds``: nestopt, NumPy, SciPy lines."""
    profiler = cProfile.Profile()
    calls, spent = 0, 0.0
    while spent < seconds or calls < 3:
        start = time.perf_counter()
        profiler.enable()
        fn()
        profiler.disable()
        spent += time.perf_counter() - start
        calls += 1
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(r"nestopt/|numpy|scipy", top)
    body = out.getvalue().split("ncalls", 1)[-1]
    return f"{calls} calls profiled; ncalls" + body.rstrip()


def quad_case(n: int, d: int, args: Any) -> tuple[dict[str, Any], str | None]:
    problem = quad(n, d, args.seed)
    Qs, cs, sizes = problem.data["Q"], problem.data["c"], problem.data["sizes"]
    x = np.concatenate(problem.solution)
    ops = _bare.kernels("numpy")

    def bare() -> Any:
        return _bare.adjoint_hypergradient(Qs, cs, sizes, x, ops)

    def forward() -> Any:
        return _bare.hypergradient(Qs, cs, sizes, x, ops)

    def floor() -> Any:
        return _bare.floor_hypergradient(Qs, cs, sizes, x, ops)

    def ours() -> Any:
        return nestopt.hypergradient(problem, problem.solution, curvature="first_order")

    agree = float(np.max(np.abs(bare() - ours())))
    agree = max(agree, float(np.max(np.abs(forward() - ours()))))
    agree = max(agree, float(np.max(np.abs(floor() - ours()))))
    t = measure_alternating(
        {"bare": bare, "forward": forward, "floor": floor, "nestopt": ours},
        repeats=args.repeats,
        budget=60.0,
    )
    bare_s, ours_s = t["median"]["bare"], t["median"]["nestopt"]
    ratio = paired_ratio(t, "nestopt", "bare")
    row = {
        "n": n,
        "d": d,
        "D": n * d,
        "bare_s": bare_s,
        "nestopt_s": ours_s,
        "ratio": ratio,
        "target": "<= 1.25" if d >= 400 else "-",
        "met": (ratio <= 1.25) if d >= 400 else None,
        "forward_s": t["median"]["forward"],
        "forward/adjoint": paired_ratio(t, "forward", "bare"),
        "floor_s": t["median"]["floor"],
        "nestopt/floor": paired_ratio(t, "nestopt", "floor"),
        "bare_MB": peak_memory(bare) / 2**20,
        "nestopt_MB": peak_memory(ours) / 2**20,
        "max_abs_diff": agree,
        "repeats": len(t["times"]),
    }
    print(
        f"  quad n={n} d={d}: bare adjoint {bare_s:.4g} s, nestopt {ours_s:.4g} s, ratio "
        f"{ratio:.3g}; bare forward {row['forward_s']:.4g} s; floor {row['floor_s']:.4g} s, "
        f"nestopt/floor {row['nestopt/floor']:.3g}",
        flush=True,
    )
    profile = None
    if args.profile and row["met"] is False:
        profile = f"quad(n={n}, d={d}), first_order, at the solution: " + nestopt_profile(ours)
    return row, profile


def part_quad(args: Any) -> tuple[list[dict[str, Any]], list[str]]:
    ns = (2, 3) if args.quick else (2, 3, 4)
    dims = (100, 400) if args.quick else (100, 400, 1000)
    rows, profiles = [], []
    for n in ns:
        for d in dims:
            row, profile = quad_case(n, d, args)
            rows.append(row)
            if profile:
                profiles.append(profile)
    return rows, profiles


def softplus_case(problem: Any, d: int, start: str, xs: Any, args: Any) -> dict[str, Any]:
    fns = {
        c: (lambda c=c: nestopt.best_response(problem, xs, curvature=c))
        for c in ("exact", "first_order")
    }
    t = measure_alternating(fns, repeats=args.repeats, budget=60.0)
    exact, first = t["median"]["exact"], t["median"]["first_order"]
    ratio = paired_ratio(t, "exact", "first_order")
    print(
        f"  softplus d={d} {start}: exact {exact:.4g} s, first_order {first:.4g} s, "
        f"ratio {ratio:.3g}",
        flush=True,
    )
    return {
        "d": d,
        "start": start,
        "exact_s": exact,
        "first_order_s": first,
        "ratio": ratio,
        "met": ratio <= 1.5,
        "newton_exact": t["value"]["exact"].level_nit[1:],
        "newton_first_order": t["value"]["first_order"].level_nit[1:],
        "exact_MB": peak_memory(fns["exact"]) / 2**20,
        "first_order_MB": peak_memory(fns["first_order"]) / 2**20,
        "repeats": len(t["times"]),
    }


def part_softplus(args: Any) -> list[dict[str, Any]]:
    dims = (100,) if args.quick else (100, 400)
    rows = []
    for d in dims:
        problem = softplus_levels(3, d, args.seed)
        x1 = np.random.default_rng(args.seed).standard_normal(d)
        cold = (x1, *problem.x0[1:])
        solved = nestopt.best_response(problem, cold, level_options={"tol": 1e-13}).xs
        for start, xs in (("solved", solved), ("cold (x0)", cold)):
            rows.append(softplus_case(problem, d, start, xs, args))
    return rows


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--profile", action="store_true", help="cProfile the cases that miss")
    args = p.parse_args()
    args.repeats = args.repeats or (3 if args.quick else 7)
    limit_threads(args.threads)
    info = machine_info()
    print_machine(info)

    quad_rows, profiles = part_quad(args)
    print_table(
        quad_rows,
        [
            "n",
            "d",
            "D",
            "bare_s",
            "nestopt_s",
            "ratio",
            "target",
            "met",
            "forward_s",
            "forward/adjoint",
            "floor_s",
            "nestopt/floor",
            "bare_MB",
            "nestopt_MB",
            "max_abs_diff",
            "repeats",
        ],
        "quad(n, d) at its solution, curvature='first_order': nestopt against the bare "
        "NumPy/SciPy adjoint composition (bare_s; forward_s: the bare forward composition; "
        "floor_s: `_bare.floor_hypergradient`, only the Jacobian columns the reduced Hessians "
        "need, written without nestopt's code) "
        "(median seconds; ratios: medians of per-round ratios; peak MB by tracemalloc)",
    )
    soft_rows = part_softplus(args)
    print_table(
        soft_rows,
        [
            "d",
            "start",
            "exact_s",
            "first_order_s",
            "ratio",
            "met",
            "newton_exact",
            "newton_first_order",
            "exact_MB",
            "first_order_MB",
            "repeats",
        ],
        "softplus_levels(3, d): curvature='exact' against 'first_order' "
        "(best_response; target ratio <= 1.5; Newton iterations of levels 2, 3)",
    )
    for text in profiles:
        print("\n" + text)
    write_json(
        "overhead",
        {
            "machine": info,
            "args": vars(args),
            "quad": quad_rows,
            "softplus": soft_rows,
            "profiles": profiles,
        },
    )


if __name__ == "__main__":
    main()
