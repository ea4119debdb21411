"""A Stackelberg market with capacities: quantities, prices and the shadow prices of capacity.

Three firms sell in ``--markets`` markets; the price of market m is
a_m - b_m (q1 + q2 + q3) and firm k pays c_km per unit. Firm 1 (the leader)
moves first, with at most ``cap1`` per market; firm 2 sees q1 and has one
production capacity K2 shared by all markets; firm 3 sees both and has at
most ``cap3`` per market. Quantities are non-negative. Every level is a
constrained, strongly convex quadratic: nestopt solves the lower levels by an
interior point polished on the active set, differentiates their KKT systems,
and solves the leader's problem on its box. The multipliers of the capacity
constraints are their shadow prices (profit per extra unit of capacity).

The answer is checked independently: firm 3's response in closed form (a
clipped linear response), firm 2's by SciPy's SLSQP at nestopt's q1, and the
leader's value function, with both, by SciPy's Nelder-Mead from nestopt's
answer.

    python examples/capacitated_market.py [--markets 3] [--seed 1]
"""

import argparse
import time

import numpy as np
from scipy.optimize import minimize

import nestopt

CAP1, K2, CAP3 = 5.0, 4.0, 1.0


def firm(k, a, b, c, n, *, bounds=None, constraints=(), name=""):
    """Firm k's objective, minus its profit: sum_m (b_m Q_m + c_km - a_m) q_km."""
    M = a.size

    def split(x):
        return [x[j * M : (j + 1) * M] for j in range(n)]

    def value(*qs):
        Q = sum(qs)
        return float(np.sum((b * Q + c[k] - a) * qs[k]))

    def grad(*qs):
        Q = sum(qs)
        out = [b * qs[k] for _ in range(n)]
        out[k] = b * Q + c[k] - a + b * qs[k]
        return tuple(out)

    B = np.diag(b)
    H = np.zeros((n * M, n * M))
    for j in range(n):
        H[k * M : (k + 1) * M, j * M : (j + 1) * M] = B
        H[j * M : (j + 1) * M, k * M : (k + 1) * M] = B
    H[k * M : (k + 1) * M, k * M : (k + 1) * M] = 2 * B

    return nestopt.Level(
        grad=grad,
        hess=lambda *qs: H,
        value=value,
        size=M,
        name=name,
        quadratic=True,
        bounds=bounds,
        constraints=constraints,
    ), lambda x: value(*split(x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    M = args.markets
    rng = np.random.default_rng(args.seed)
    a, b = rng.uniform(10, 20, M), rng.uniform(0.5, 2, M)
    c = rng.uniform(1, 2, (3, M))
    shared = np.concatenate([np.zeros(M), np.ones(M), np.zeros(M)])[None, :]
    leader, f1 = firm(0, a, b, c, 3, bounds=nestopt.Bounds(0, CAP1), name="leader")
    follower, f2 = firm(
        1, a, b, c, 3, bounds=nestopt.Bounds(0, np.inf), name="follower",
        constraints=[nestopt.LinearConstraint(shared, -np.inf, K2)],
    )  # fmt: skip
    sub, f3 = firm(2, a, b, c, 3, bounds=nestopt.Bounds(0, CAP3), name="sub-follower")
    problem = nestopt.Problem([leader, follower, sub])

    started = time.perf_counter()
    result = nestopt.solve(problem, [np.full(M, 1.0), np.zeros(M), np.zeros(M)])
    elapsed = time.perf_counter() - started
    q = np.stack(result.xs)
    q = np.where(np.abs(q) < 1e-12, 0.0, q)  # a bound held to rounding prints as 0
    price = a - b * q.sum(axis=0)
    print(f"{result.message} ({result.nit} iterations, {elapsed:.2f} s)")
    print(f"{'market':>6} {'q1':>7} {'q2':>7} {'q3':>7} {'price':>7}")
    for m in range(M):
        print(f"{m:6d} {q[0, m]:7.4f} {q[1, m]:7.4f} {q[2, m]:7.4f} {price[m]:7.4f}")
    lam2, lam3 = result.multipliers[2], result.multipliers[3]
    print(f"active: follower {result.active[2]}, sub-follower {result.active[3]}")
    print(
        f"shadow price of firm 2's shared capacity K2 = {K2:g}: {lam2[0]:.4f} per unit "
        f"(firm 2 uses {q[1].sum():.4f})"
    )
    print(
        "shadow prices of firm 3's capacities (per market): "
        + ", ".join(f"{max(float(v), 0.0):.4f}" for v in lam3[:M])
    )
    profits = -np.array([f1(q.ravel()), f2(q.ravel()), f3(q.ravel())])
    print(f"profits of the three firms: {np.round(profits, 4)}")

    # -- an independent check with SciPy ----------------------------------------
    def solve3(q1, q2):
        # Firm 3's problem is separable: per market, its unconstrained best response clipped.
        return np.clip((a - c[2] - b * (q1 + q2)) / (2 * b), 0.0, CAP3)

    def solve2(q1):
        def fun(q2):
            return f2(np.concatenate([q1, q2, solve3(q1, q2)]))

        cons = [{"type": "ineq", "fun": lambda q2: K2 - q2.sum()}]
        return minimize(fun, np.full(M, 0.5), method="SLSQP", bounds=[(0, None)] * M,
                        constraints=cons, options={"ftol": 1e-14, "maxiter": 500}).x  # fmt: skip

    q2_scipy = solve2(q[0])
    q3_scipy = solve3(q[0], q2_scipy)
    print(
        "SciPy's followers at nestopt's q1 differ by "
        f"{max(np.abs(q2_scipy - q[1]).max(), np.abs(q3_scipy - q[2]).max()):.1e}"
    )

    def F1(q1):
        q2 = solve2(q1)
        return f1(np.concatenate([q1, q2, solve3(q1, q2)]))

    # A local check: SciPy's Nelder-Mead on the leader's value function, from nestopt's answer.
    best = minimize(F1, q[0], method="Nelder-Mead", bounds=[(0, CAP1)] * M,
                    options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 300})  # fmt: skip
    print(
        f"leader's profit: nestopt {-result.fun:.6f}, SciPy's best {-best.fun:.6f} "
        f"(q1 differs by {np.abs(best.x - q[0]).max():.1e})"
    )


if __name__ == "__main__":
    main()
