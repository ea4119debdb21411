"""Solve a trilevel problem with a known optimum and report how close nestopt gets.

The problem is `nestopt.problems.gkv_quadratic` (d = 50 per level, D = 150), the
quadratic trilevel benchmark of Giovannelli, Kent & Vicente with their seed 42 and
start: three quadratic levels whose solution has the closed form
x* = -(h_x + h_y + 2 h_z) / 7, y* = x*, z* = 2 x* (see its docstring).
Level 1 is minimized with L-BFGS on the exact hypergradient; levels 2 and 3
are solved by Newton's method at every evaluation.

    python examples/trilevel_known_optimum.py [--d 50] [--seed 42]
"""

import argparse
import time

import numpy as np

import nestopt
from nestopt.problems import gkv_quadratic

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=50, help="size of each level's variable")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    problem = gkv_quadratic(d=args.d, seed=args.seed)  # on the backend NESTOPT_BACKEND selects
    started = time.perf_counter()
    result = nestopt.solve(problem, problem.x0, options={"gtol": 1e-10})
    elapsed = time.perf_counter() - started

    backend = nestopt.get_backend().name
    print(f"{problem.description} on {backend}: {result.message}")
    for name, got, known in zip(("x", "y", "z"), result.xs, problem.solution):
        got, known = nestopt.to_numpy(got), nestopt.to_numpy(known)
        gap = np.linalg.norm(got - known) / np.linalg.norm(known)
        print(f"  level {name}: relative distance to the known optimum {gap:.2e}")
    distance = max(
        float(np.max(np.abs(nestopt.to_numpy(a) - nestopt.to_numpy(b))))
        for a, b in zip(result.xs, problem.solution)
    )
    print(f"max distance to the known optimum: {distance:.3e}")
    h_x, h_y, h_z = (problem.data[k] for k in ("h_x", "h_y", "h_z"))
    known_fun = -np.sum((h_x + h_y + 2 * h_z) ** 2) / 14  # F_1 at x*
    print(f"top-level objective {result.fun:.6f} (known {known_fun:.6f})")
    print(f"hypergradient norm {result.grad_norm:.1e}")
    print(f"iterations: {result.nit} (level 1), Newton steps per level {result.level_nit}")
    print(f"time: {elapsed:.3f} s")
