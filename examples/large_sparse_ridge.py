"""Learn per-group ridge weights for a sparse regression with 10^5 features (10^6 with --large).

The follower fits ``theta`` (``--features`` of them: 100,000 by default, a
million with ``--large``; half as many training rows, 20 nonzeros each) by
ridge regression on sparse training data, one
log-ridge-weight per group of features; the leader chooses the 10 weights
that minimize the validation error (`nestopt.problems.group_ridge`). The
follower gives only Hessian-vector products, so nestopt solves it by
Newton-CG and each hypergradient costs one more conjugate-gradient solve:
memory stays O(p). Every L-BFGS iteration starts the follower from its
predicted response and the adjoint solve from the last adjoint, so an
iteration costs a few CG runs. The defaults finish with SUCCESS in about
8 s on two cores; ``--large`` ended SUCCESS after 7 iterations in 94 s (about
3 minutes of CPU time), peaking at 0.5 GB.

    python examples/large_sparse_ridge.py [--large] [--features P] [--samples N] [--gtol G]
"""

import argparse
import resource
import time

import numpy as np

import nestopt
from nestopt.problems import group_ridge


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="10^6 features (a few minutes)")
    parser.add_argument("--features", type=int, default=None, help="default 100,000")
    parser.add_argument("--samples", type=int, default=None, help="training rows (features/2)")
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--noise", type=float, default=1.0, help="noise of the targets")
    parser.add_argument("--start", type=float, default=-6.0, help="starting log-ridge weight")
    parser.add_argument("--gtol", type=float, default=1e-3, help="relative hypergradient tol")
    parser.add_argument("--maxiter", type=int, default=50, help="L-BFGS iterations at most")
    args = parser.parse_args()
    features = args.features or (1_000_000 if args.large else 100_000)
    samples = args.samples or max(features // 2, 1)

    started = time.perf_counter()
    problem = group_ridge(features, samples, args.groups, noise=args.noise, seed=0)
    print(
        f"follower: {features:,} features, {samples:,} training rows "
        f"({problem.data['X_train'].nnz:,} nonzeros); leader: {args.groups} log-ridge weights"
    )
    print(
        f"data built in {time.perf_counter() - started:.2f} s, peak memory {peak_rss_mb():.0f} MB; "
        f"solving from lam = {args.start:g} (the follower from zero)",
        flush=True,
    )
    start = [np.full(args.groups, args.start), problem.x0[1]]

    tic = time.perf_counter()

    def progress(state):
        print(
            f"  iteration {state.nit:2d}: validation error {state.fun:.6f}, |grad| "
            f"{state.grad_norm:.2e}, {time.perf_counter() - tic:.1f} s",
            flush=True,
        )

    result = nestopt.solve(
        problem,
        start,
        options={"maxiter": args.maxiter, "gtol": args.gtol},
        callback=progress,
    )
    seconds = time.perf_counter() - tic
    print(
        f"solve: {result.status.name} after {result.nit} L-BFGS iterations in {seconds:.1f} s "
        f"(|grad| {result.grad_norm:.2e}, from {result.history['grad_norm'][0]:.2e}; CG "
        f"iterations {result.krylov['iterations'][1]}, worst relative residual "
        f"{result.krylov['residual'][1]:.1e})"
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
