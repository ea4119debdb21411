"""Cold starts against solved points, Newton steps per curvature mode, and row-block oracles.

Part 1, ``quad(n, d)``, ``curvature='first_order'``: ``best_response`` from
the zero start (cold) against the same call at the solution (solved), timed
alternately; the ratio cold/solved and the factorizations each performs.
Goal (issue 17): cold within 1.5x of solved; quad(3, 1000) cold under 1 s.

Part 2, ``softplus_levels(3, d)`` cold: Newton steps of levels 2 and 3 and
time in ``'first_order'`` and ``'exact'`` mode (the lower levels' Newton uses
the exact reduced Hessian in both, unless ``newton_curvature='same'``).

Part 3, ``softplus_levels(3, d)`` cold and at its solution: time spent inside the
user's ``hess``/``hess_dir`` with row blocks (``hess_rows=True``: only the
rows nestopt reads) against full Hessians, and the hypergradients' distance.

Runs against whichever nestopt is importable (an older one lacks parts 2's
``newton_curvature`` and part 3's row blocks; those rows then say so).

    python benchmarks/cold_start.py [--quick] [--threads N]
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from _common import (
    limit_threads,
    machine_info,
    measure_alternating,
    paired_ratio,
    parser,
    print_machine,
    print_table,
    write_json,
)

import nestopt
from nestopt.problems import quad, softplus_levels


def part_quad(args: Any) -> list[dict[str, Any]]:
    rows = []
    dims = (100, 200) if args.quick else (400, 1000)
    levels = (3, 4) if args.quick else (3, 4, 5)
    for n in levels:
        for d in dims:
            problem = quad(n, d, seed=0, backend="numpy")
            cold = list(problem.x0)
            solved = list(problem.solution)
            cold[0] = solved[0]  # the same x_1: only the lower starts differ
            calls = {
                "cold": lambda c=cold, p=problem: nestopt.best_response(
                    p, c, curvature="first_order"
                ),
                "solved": lambda s=solved, p=problem: nestopt.best_response(
                    p, s, curvature="first_order"
                ),
            }
            t = measure_alternating(calls, repeats=3 if args.quick else 5, warmup=1)
            cold_result, solved_result = t["value"]["cold"], t["value"]["solved"]
            rows.append(
                {
                    "n": n,
                    "d": d,
                    "cold_s": t["median"]["cold"],
                    "solved_s": t["median"]["solved"],
                    "ratio": paired_ratio(t, "cold", "solved"),
                    "factorizations_cold": sum(cold_result.get("factorizations", ()) or ()) or "-",
                    "factorizations_solved": sum(solved_result.get("factorizations", ()) or ())
                    or "-",
                    "newton_cold": tuple(_level_nit(cold_result)[1:]),
                }
            )
            print(f"  quad n={n} d={d}: ratio {rows[-1]['ratio']:.2f}", flush=True)
    return rows


def _level_nit(result: Any) -> tuple[int, ...]:
    nit = result.get("level_nit", result["nit"])
    return tuple(nit)


def part_modes(args: Any) -> list[dict[str, Any]]:
    d = 100 if args.quick else 400
    problem = softplus_levels(3, d, seed=0, backend="numpy")
    rows = []
    for curvature in ("exact", "first_order"):
        start = time.perf_counter()
        result = nestopt.best_response(problem, problem.x0, curvature=curvature)
        rows.append(
            {
                "d": d,
                "curvature": curvature,
                "seconds": time.perf_counter() - start,
                "newton_steps": tuple(_level_nit(result)[1:]),
            }
        )
    return rows


def _timed_levels(problem: Any, clock: dict[str, float]) -> Any:
    """``problem`` with its hess and hess_dir timed into ``clock['oracle']``."""

    def timed(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock["oracle"] += time.perf_counter() - start

        return wrapper

    levels = []
    for level in problem.levels:
        changes = {"hess": timed(level.hess)}
        if level.hess_dir is not None:
            changes["hess_dir"] = timed(level.hess_dir)
        levels.append(dataclasses.replace(level, **changes))
    return nestopt.Problem(levels)


def part_rows(args: Any) -> list[dict[str, Any]]:
    d = 100 if args.quick else 400
    out = []
    for start_name in ("cold", "solved"):
        answers, rows = {}, []
        for hess_rows in (False, True):
            try:
                base = softplus_levels(3, d, seed=0, backend="numpy", hess_rows=hess_rows)
            except TypeError:
                return [{"d": d, "start": "-", "hess_rows": "not supported by this nestopt"}]
            start = base.x0 if start_name == "cold" else nestopt.best_response(base, base.x0).xs
            clock = {"oracle": 0.0}
            problem = _timed_levels(base, clock)
            totals, oracles = [], []
            for _ in range(3 if args.quick else 5):
                clock["oracle"] = 0.0
                tic = time.perf_counter()
                answers[hess_rows] = nestopt.hypergradient(problem, start)
                totals.append(time.perf_counter() - tic)
                oracles.append(clock["oracle"])
            rows.append(
                {
                    "d": d,
                    "start": start_name,
                    "hess_rows": hess_rows,
                    "total_s": float(np.median(totals)),
                    "oracle_s": float(np.median(oracles)),
                }
            )
        rows[1]["oracle_ratio"] = rows[1]["oracle_s"] / rows[0]["oracle_s"]
        rows[1]["max_rel_diff"] = float(
            np.max(np.abs(answers[True] - answers[False])) / np.max(np.abs(answers[False]))
        )
        out.extend(rows)
    return out


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    limit_threads(args.threads)
    info = machine_info()
    print_machine(info)
    quad_rows = part_quad(args)
    print_table(
        quad_rows,
        list(quad_rows[0]),
        "quad(n, d), curvature='first_order': cold start (lower levels from 0) against the "
        "solved point (median seconds, ratio: median of per-round ratios)",
    )
    mode_rows = part_modes(args)
    print_table(
        mode_rows, list(mode_rows[0]), "softplus_levels(3, d) cold: Newton steps (levels 2, 3)"
    )
    row_rows = part_rows(args)
    print_table(
        row_rows,
        ["d", "start", "hess_rows", "total_s", "oracle_s", "oracle_ratio", "max_rel_diff"],
        "softplus_levels(3, d) at its solution: time in hess/hess_dir, full Hessians against "
        "row blocks",
    )
    write_json(
        "cold_start",
        {"machine": info, "quad": quad_rows, "modes": mode_rows, "rows": row_rows},
    )


if __name__ == "__main__":
    main()
