"""Steer a large nonnegative least-squares fit: a bilevel problem with a box-constrained,
matrix-free follower.

The follower fits ``y >= 0`` (``p`` variables) to sparse data
whose right-hand side the leader shifts by ``C x``; the leader picks the five
shifts ``x`` that bring the fit closest to a target (`nestopt.problems.nnls`,
10^4 variables by default).
The follower's Hessian is given only as products, so nestopt solves it by
projected Newton with conjugate gradients on its free variables and
differentiates it with one CG solve on them per hypergradient: nothing of size
``p x p`` is formed. The answer is checked independently: SciPy's L-BFGS-B on
the follower at the leader's solution (and the KKT residual of both), and the
hypergradient at the start against L-BFGS-B plus a CG solve on its free
variables. (Central differences of the value function check the hypergradient
in tests/test_large_box.py; at this size its kinks lie about 1e-4 apart.)

    python examples/nonnegative_fit.py [--features 10000]
"""

import argparse
import time
import tracemalloc

import numpy as np

import nestopt
from nestopt.problems import nnls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10_000)
    args = parser.parse_args()
    p = args.features

    problem = nnls(p, hessian="hvp")
    tracemalloc.start()
    tic = time.perf_counter()
    result = nestopt.solve(problem, [np.zeros(5), np.zeros(p)], options={"gtol": 1e-8})
    seconds = time.perf_counter() - tic
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    y = np.asarray(result.xs[1])
    print(f"follower: {p:,} variables, y >= 0")
    print(f"solve: {result.status.name} in {result.nit} iterations, {seconds:.1f} s, "
          f"peak memory {peak:.0f} MB")  # fmt: skip
    print(f"leader x = {np.array2string(result.x, precision=4)}, F = {result.fun:.6f}")
    print(f"bounds active at the solution: {int((y == 0).sum()):,} of {p:,}")

    # Independent checks with SciPy: L-BFGS-B on the follower at nestopt's x (and both
    # solutions' KKT residuals), and the hypergradient at the start x = 0 (far from zero
    # there) from L-BFGS-B's solution plus one CG solve on its free variables.
    import scipy.sparse.linalg as sl
    from scipy.optimize import minimize

    d = problem.data
    M, rho = d["M"], d["ridge"]

    def follower(v, x):  # value and gradient of f(x, .)
        r = M @ v - d["b0"] - d["C"] @ x
        return 0.5 * r @ r + 0.5 * rho * v @ v, M.T @ r + rho * v

    def lbfgsb(x):
        return minimize(
            follower, np.zeros(p), args=(x,), jac=True, method="L-BFGS-B",
            bounds=[(0.0, None)] * p,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 100_000, "maxfun": 100_000},
        ).x  # fmt: skip

    def natural(v, x):  # |v - max(v - grad f(v), 0)|: zero exactly at the follower's solution
        return np.max(np.abs(v - np.maximum(v - follower(v, x)[1], 0.0)))

    ref = lbfgsb(result.x)
    print(f"SciPy's follower at nestopt's x differs by {np.max(np.abs(ref - y)):.1e}")
    print(f"KKT natural residual: nestopt {natural(y, result.x):.1e}, "
          f"SciPy {natural(ref, result.x):.1e}")  # fmt: skip

    x0 = np.zeros(5)
    y0 = lbfgsb(x0)
    mask = (~((y0 <= 0.0) & (follower(y0, x0)[1] > 0.0))).astype(float)

    def free_block(v):
        v = mask * v
        return mask * (M.T @ (M @ v) + rho * v)

    operator = sl.LinearOperator((p, p), matvec=free_block)
    w, _ = sl.cg(operator, mask * (y0 - d["y_target"]), rtol=1e-12)
    reference = d["mu"] * x0 + d["C"].T @ (M @ w)
    g = nestopt.hypergradient(problem, [x0, np.zeros(p)])
    error = np.max(np.abs(g - reference)) / np.max(np.abs(reference))
    print(f"hypergradient at x = 0 against SciPy's (L-BFGS-B + CG): relative difference "
          f"{error:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
