"""Learn per-group ridge weights for a sparse regression with a million features.

The follower fits ``theta`` (``--features`` of them, 10^6 by default) by ridge
regression on sparse training data, one log-ridge-weight per group of
features; the leader chooses the 10 weights that minimize the validation
error (`nestopt.problems.group_ridge`). The follower gives only
Hessian-vector products, so nestopt solves it by Newton-CG and each
hypergradient costs one more conjugate-gradient solve: memory stays O(p).

    python examples/large_sparse_ridge.py [--features 1000000] [--samples 20000] [--iterations 3]
"""

import argparse
import resource
import time
import warnings

import numpy as np

import nestopt
from nestopt.problems import group_ridge


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=3, help="L-BFGS iterations to run")
    parser.add_argument("--start", type=float, default=-6.0, help="starting log-ridge weight")
    args = parser.parse_args()

    started = time.perf_counter()
    problem = group_ridge(args.features, args.samples, args.groups, seed=0)
    print(
        f"follower: {args.features:,} features, {args.samples:,} training rows "
        f"({problem.data['X_train'].nnz:,} nonzeros); leader: {args.groups} log-ridge weights"
    )
    built = time.perf_counter() - started
    print(f"data built in {built:.2f} s, peak memory {peak_rss_mb():.0f} MB")
    start = [np.full(args.groups, args.start), problem.x0[1]]

    tic = time.perf_counter()
    response = nestopt.best_response(problem, start)
    print(
        f"hypergradient at lam = {args.start:g} (cold: the follower solved by Newton-CG "
        f"first): {time.perf_counter() - tic:.2f} s; CG iterations "
        f"{response.krylov['iterations'][1]}, worst relative residual "
        f"{response.krylov['residual'][1]:.1e}"
    )
    print("  dF/dlam =", np.array2string(response.hypergrad, precision=3, max_line_width=100))

    tic = time.perf_counter()
    with warnings.catch_warnings():  # a short run on purpose: it stops at maxiter
        warnings.simplefilter("ignore", nestopt.ConvergenceWarning)
        result = nestopt.solve(problem, start, options={"maxiter": args.iterations, "gtol": 1e-4})
    seconds = time.perf_counter() - tic
    print(
        f"solve ({args.iterations} L-BFGS iterations at most): {result.status.name} after "
        f"{result.nit} iterations in {seconds:.1f} s (|grad| {result.grad_norm:.2e}, from "
        f"{result.history['grad_norm'][0]:.2e})"
    )
    weights = ", ".join(f"{w:.2e}" for w in np.exp(result.x))
    print(
        f"validation error {result.history['fun'][0]:.5f} -> {result.fun:.5f}; "
        f"ridge weights exp(lam) = [{weights}]"
    )
    for note in result.notes:
        print("note:", note)
    print(f"peak memory {peak_rss_mb():.0f} MB (O(p): no p x p matrix is formed)")


if __name__ == "__main__":
    main()
