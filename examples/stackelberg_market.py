"""A three-firm Stackelberg quantity game: nestopt against the textbook equilibrium.

Firm 1 (leader) picks its quantities, firm 2 sees them, firm 3 sees both; in
each market the price is a - b (q1 + q2 + q3) and firm k pays c_k per unit.
Backward induction gives, market by market,

    q1 = (a + c3 + 2 c2 - 4 c1) / (2b),  q2 = (a + c3 - 2 c2 - b q1) / (2b),
    q3 = (a - c3 - b (q1 + q2)) / (2b).

    python examples/stackelberg_market.py [--products 5] [--seed 0]
"""

import argparse
import time

import numpy as np

import nestopt
from nestopt.problems import stackelberg_market

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=5, help="number of markets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    problem = stackelberg_market(products=args.products, seed=args.seed)
    started = time.perf_counter()
    result = nestopt.solve(problem, problem.x0, options={"gtol": 1e-10})
    elapsed = time.perf_counter() - started

    a, b, c = (problem.data[k] for k in ("a", "b", "c"))
    found = np.stack([nestopt.to_numpy(q) for q in result.xs])
    known = np.stack([nestopt.to_numpy(q) for q in problem.solution])
    price = a - b * found.sum(axis=0)
    profit = (price - c) * found

    print(f"{problem.description}: {result.message} ({result.nit} iterations, {elapsed:.3f} s)")
    print(f"{'market':>6} {'q1':>8} {'q2':>8} {'q3':>8} {'price':>8}  profits (1, 2, 3)")
    for m in range(args.products):
        q = found[:, m]
        print(
            f"{m:6d} {q[0]:8.4f} {q[1]:8.4f} {q[2]:8.4f} {price[m]:8.4f}  "
            f"{profit[0, m]:7.3f} {profit[1, m]:7.3f} {profit[2, m]:7.3f}"
        )
    print(f"total profit of the leader, follower, sub-follower: {profit.sum(axis=1).round(3)}")
    leads = bool(np.all(found[0] > found[1]))
    print(f"the leader sells more than the follower in every market: {leads}")
    print(f"max distance to the closed-form equilibrium: {np.max(np.abs(found - known)):.3e}")
