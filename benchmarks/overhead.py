"""nestopt's hypergradient time against the bare linear algebra it performs.

Part 0, small ``quad(n, d)`` (``d = 10, 30, 100``, ``n = 2, 3``) at its
solution: nestopt's ``hypergradient`` per call against
`_bare.oracle_adjoint_hypergradient`, which makes the same oracle calls
(each lower level's ``grad`` and ``hess``, level 1's ``grad``), the Newton
test of each lower level and one adjoint solve, with no checks and no result
object: the fixed cost of a call. Timed in blocks of calls, alternately.
Target (issue 22): within 2x, in first_order and in exact mode (the levels
are declared quadratic).

Part 1, ``quad(n, d)`` at its solution (every Newton loop stops at
iteration 0), ``d = 400, 1000``, ``n = 2, 3, 4``: nestopt's
``hypergradient`` (``curvature='first_order'``, and ``'exact'`` for
``n >= 3``) against the minimal adjoint floor `_bare.floor_hypergradient`
(only the Jacobian columns the reduced Hessians need, DESIGN 8; written
without nestopt's reduced-rows code, so it does not share nestopt's extra
work). `_bare.adjoint_hypergradient` (the same gradients, reduced rows,
Cholesky factors, solves and compositions as nestopt, in adjoint mode) and
the forward composition (every ``G_k``, `_bare.hypergradient`) are timed
beside them. All alternately in the same run (medians after a warm-up);
peak memory by tracemalloc. Nothing is cached across calls by either side.
Target: nestopt/floor <= 1.25.

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

    def exact() -> Any:  # quad's levels are declared quadratic: exact without third order
        return nestopt.hypergradient(problem, problem.solution, curvature="exact")

    agree = float(np.max(np.abs(bare() - ours())))
    agree = max(agree, float(np.max(np.abs(forward() - ours()))))
    agree = max(agree, float(np.max(np.abs(floor() - ours()))))
    agree = max(agree, float(np.max(np.abs(exact() - ours()))))
    fns = {"bare": bare, "forward": forward, "floor": floor, "nestopt": ours}
    if n >= 3:
        fns["exact"] = exact
    t = measure_alternating(fns, repeats=args.repeats, budget=60.0)
    bare_s, ours_s = t["median"]["bare"], t["median"]["nestopt"]
    ratio = paired_ratio(t, "nestopt", "bare")
    to_floor = paired_ratio(t, "nestopt", "floor")
    exact_to_floor = paired_ratio(t, "exact", "floor") if n >= 3 else None
    worst = max(to_floor, exact_to_floor or 0.0)
    row = {
        "n": n,
        "d": d,
        "D": n * d,
        "bare_s": bare_s,
        "nestopt_s": ours_s,
        "ratio": ratio,
        "forward_s": t["median"]["forward"],
        "forward/adjoint": paired_ratio(t, "forward", "bare"),
        "floor_s": t["median"]["floor"],
        "nestopt/floor": to_floor,
        "exact/floor": exact_to_floor,
        "target": "floor <= 1.25" if d >= 400 else "-",
        "met": (worst <= 1.25) if d >= 400 else None,
        "bare_MB": peak_memory(bare) / 2**20,
        "nestopt_MB": peak_memory(ours) / 2**20,
        "max_abs_diff": agree,
        "repeats": len(t["times"]),
    }
    print(
        f"  quad n={n} d={d}: bare adjoint {bare_s:.4g} s, nestopt {ours_s:.4g} s, ratio "
        f"{ratio:.3g}; bare forward {row['forward_s']:.4g} s; floor {row['floor_s']:.4g} s, "
        f"nestopt/floor {row['nestopt/floor']:.3g}"
        + (f", exact/floor {exact_to_floor:.3g}" if exact_to_floor is not None else ""),
        flush=True,
    )
    profile = None
    if args.profile and row["met"] is False:
        profile = f"quad(n={n}, d={d}), first_order, at the solution: " + nestopt_profile(ours)
    return row, profile


def small_case(n: int, d: int, args: Any) -> dict[str, Any]:
    """One small ``quad(n, d)``: nestopt against the bare composition making its oracle calls.

    A call takes tens of microseconds here, so each timed sample is a block of
    calls (``calls``); the blocks alternate.
    """
    problem = quad(n, d, args.seed)
    ops = _bare.kernels("numpy")
    calls = 200 if d <= 30 else 50

    def block(fn: Any) -> Any:
        def run() -> Any:
            for _ in range(calls):
                out = fn()
            return out

        return run

    def bare() -> Any:
        return _bare.oracle_adjoint_hypergradient(problem.levels, problem.solution, ops)

    def ours() -> Any:
        return nestopt.hypergradient(problem, problem.solution, curvature="first_order")

    def exact() -> Any:
        return nestopt.hypergradient(problem, problem.solution, curvature="exact")

    agree = max(float(np.max(np.abs(bare() - f()))) for f in (ours, exact))
    fns = {"bare": block(bare), "nestopt": block(ours)}
    if n >= 3:
        fns["exact"] = block(exact)
    t = measure_alternating(fns, repeats=max(args.repeats, 15), budget=30.0)
    ratio = paired_ratio(t, "nestopt", "bare")
    exact_ratio = paired_ratio(t, "exact", "bare") if n >= 3 else None
    worst = max(ratio, exact_ratio or 0.0)
    row = {
        "n": n,
        "d": d,
        "bare_us": 1e6 * t["median"]["bare"] / calls,
        "nestopt_us": 1e6 * t["median"]["nestopt"] / calls,
        "ratio": ratio,
        "exact_ratio": exact_ratio,
        "target": "<= 2",
        "met": worst <= 2.0,
        "max_abs_diff": agree,
        "rounds": len(t["times"]),
    }
    print(
        f"  quad n={n} d={d}: bare with oracle calls {row['bare_us']:.0f} us, nestopt "
        f"{row['nestopt_us']:.0f} us, ratio {ratio:.3g}"
        + (f", exact {exact_ratio:.3g}" if exact_ratio is not None else ""),
        flush=True,
    )
    return row


def part_small(args: Any) -> list[dict[str, Any]]:
    dims = (10, 100) if args.quick else (10, 30, 100)
    return [small_case(n, d, args) for n in (2, 3) for d in dims]


def part_quad(args: Any) -> tuple[list[dict[str, Any]], list[str]]:
    ns = (2, 3) if args.quick else (2, 3, 4)
    dims = (400,) if args.quick else (400, 1000)
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

    small_rows = part_small(args)
    print_table(
        small_rows,
        ["n", "d", "bare_us", "nestopt_us", "ratio", "exact_ratio", "target", "met",
         "max_abs_diff", "rounds"],
        "small quad(n, d) at its solution: nestopt's hypergradient per call against the bare "
        "composition making the same oracle calls (`_bare.oracle_adjoint_hypergradient`: "
        "each lower level's grad and hess, level 1's grad, the Newton test, one adjoint "
        "solve); ratio: first_order, exact_ratio: curvature='exact' (levels declared "
        "quadratic); medians of per-round ratios of blocks of calls",
    )  # fmt: skip
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
            "forward_s",
            "forward/adjoint",
            "floor_s",
            "nestopt/floor",
            "exact/floor",
            "target",
            "met",
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
            "small": small_rows,
            "quad": quad_rows,
            "softplus": soft_rows,
            "profiles": profiles,
        },
    )


if __name__ == "__main__":
    main()
