"""A scenario sweep with nestopt.solve_many: a Stackelberg market as demand grows.

The three-firm quantity game of nestopt.problems.stackelberg_market (leader, follower,
sub-follower; price a - b (q1 + q2 + q3) in each market; firm k pays c_k per unit), with
the demand intercept scaled: a = scale * a_base. Each scenario is one scale. Backward
induction gives the leader's quantities in closed form,

    q1 = (a + c3 + 2 c2 - 4 c1) / (2b),

which every solve is checked against. The sweep runs at 1 worker, then twice at
--workers workers (the first run starts the worker processes, the second reuses them),
and prints the wall times.

    python examples/scenario_sweep.py [--scenarios 300] [--workers 2] [--out sweep.png]
"""

import argparse
import time

import numpy as np

import nestopt
from nestopt.problems import stackelberg_market

PRODUCTS, SEED = 5, 0
BASE = stackelberg_market(PRODUCTS, SEED).data  # a, b, c drawn by the family


def market(scale):
    """The game with intercepts ``scale * a``: a Problem built in the worker."""
    a, b, c = scale * BASE["a"], BASE["b"], BASE["c"]
    diag_b = np.diag(b)
    zeros = np.zeros((PRODUCTS, PRODUCTS))

    def firm(k):
        def value(*q):
            return np.sum((b * (q[0] + q[1] + q[2]) + c[k] - a) * q[k])

        def grad(*q):
            margin = b * (q[0] + q[1] + q[2]) + c[k] - a
            return tuple(b * q[k] + (margin if j == k else 0.0) for j in range(3))

        hess = [[zeros] * 3 for _ in range(3)]
        for j in range(3):
            hess[k][j] = hess[j][k] = diag_b
        hess[k][k] = 2.0 * diag_b
        return nestopt.Level(
            grad=grad, hess=lambda *q: hess, value=value, size=PRODUCTS, quadratic=True
        )

    start = tuple(np.zeros(PRODUCTS) for _ in range(3))
    return nestopt.problems.KnownProblem([firm(0), firm(1), firm(2)], x0=start)


def leader_closed_form(scale):
    a, b, c = scale * BASE["a"], BASE["b"], BASE["c"]
    return (a + c[2] + 2.0 * c[1] - 4.0 * c[0]) / (2.0 * b)


def sweep(scales, workers):
    started = time.perf_counter()
    results = nestopt.solve_many(market, params=scales, n_jobs=workers, options={"gtol": 1e-10})
    return results, time.perf_counter() - started


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=300, help="number of demand scales")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel run")
    parser.add_argument("--out", help="save a plot of the leader's output to this file")
    args = parser.parse_args()

    scales = np.linspace(1.0, 3.0, args.scenarios)
    serial, serial_time = sweep(scales, 1)
    parallel, parallel_time = sweep(scales, args.workers)
    _, warm_time = sweep(scales, args.workers)  # the same workers again, already started

    q = np.array([[nestopt.to_numpy(x) for x in r.xs] for r in parallel])  # (S, 3, markets)
    known = np.array([leader_closed_form(s) for s in scales])
    price = scales[:, None] * BASE["a"] - BASE["b"] * q.sum(axis=1)
    leader_profit = ((price - BASE["c"][0]) * q[:, 0]).sum(axis=1)
    identical = all(
        np.array_equal(np.concatenate(r.xs), np.concatenate(s.xs)) and r.nit == s.nit
        for r, s in zip(parallel, serial)
    )

    converged = sum(r.success for r in parallel)
    print(f"{converged}/{len(scales)} scenarios converged ({PRODUCTS} markets, seed {SEED})")
    print(
        f"{'scale':>6} {'sum q1':>8} {'sum q2':>8} {'sum q3':>8} {'mean price':>10} {'profit 1':>9}"
    )
    for i in np.unique(np.linspace(0, len(scales) - 1, 7).round().astype(int)):
        totals = q[i].sum(axis=1)
        print(
            f"{scales[i]:6.3f} {totals[0]:8.3f} {totals[1]:8.3f} {totals[2]:8.3f} "
            f"{price[i].mean():10.4f} {leader_profit[i]:9.3f}"
        )
    print(f"max distance of q1 to the closed form: {np.max(np.abs(q[:, 0] - known)):.3e}")
    print(f"results identical at 1 and {args.workers} workers: {identical}")
    print(f"wall time, 1 worker: {serial_time:.2f} s")
    print(
        f"wall time, {args.workers} workers: {parallel_time:.2f} s with worker start-up "
        f"(speed-up {serial_time / parallel_time:.2f}x), {warm_time:.2f} s once started "
        f"(speed-up {serial_time / warm_time:.2f}x)"
    )

    if args.out:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(scales, known.sum(axis=1), color="0.7", lw=4, label="closed form")
        ax.plot(scales, q[:, 0].sum(axis=1), "k--", label="nestopt.solve_many")
        ax.set_xlabel("demand scale (a = scale * a_base)")
        ax.set_ylabel("leader's total quantity")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print(f"plot saved to {args.out}")
