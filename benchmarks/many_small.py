"""Many small bilevel scenarios: `solve_many` against a bare NumPy loop doing the same work.

Each scenario is a bilevel problem with ``d`` leader and ``d`` follower
variables (``d <= 10``): the follower minimizes ``y'Qy/2 + y'(Bx + c)``
(declared quadratic, so nestopt factors ``Q`` once per scenario), the leader
``|x - a|^2/2 + |y - b|^2/2``; ``a``, ``b``, ``c`` change from scenario to
scenario. nestopt runs ``solve_many(factory, params=..., n_jobs=1)`` with
its defaults (L-BFGS on the leader). The bare loop then does, per scenario,
the same number of leader evaluations that nestopt made (its level-1
gradient count), each as nestopt's minimal work: the follower's Newton step
(one Cholesky solve) and the hypergradient by one adjoint solve, with ``Q``
factored once per scenario. Its step rule does not matter for its cost.

Two bare loops are timed. ``bare`` builds each scenario with the same
factory and calls the levels' own callables as nestopt does (per
evaluation: the follower's ``grad`` for its Newton step, the leader's
``grad`` and ``value``; the follower's ``hess`` once per scenario, as for a
declared quadratic level): the target's reference. ``bare arithmetic``
writes the same algebra inline from the scenario's data, without the
callables (what a hand-specialized loop costs). The scenarios are timed in
chunks, the three sides in turns on each chunk; totals are summed over the
chunks and the ratio is the median of the per-chunk ratios.

    python benchmarks/many_small.py [--scenarios N] [--d D] [--chunk C] [--threads N] [--quick]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _common import limit_threads, machine_info, parser, print_machine

import nestopt


def scenario_data(seed: int, d: int) -> tuple[np.ndarray, ...]:
    """``Q``, ``B`` (shared by every scenario) and ``a``, ``b``, ``c`` (scenario ``seed``)."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(0)
    M = base.standard_normal((d, d))
    Q = M @ M.T / d + np.eye(d)
    B = base.standard_normal((d, d)) / np.sqrt(d)
    return Q, B, rng.standard_normal(d), rng.standard_normal(d), rng.standard_normal(d)


def scenario(param: tuple[int, int]) -> nestopt.Problem:
    """The bilevel problem of scenario ``seed`` with ``d`` variables per level."""
    seed, d = param
    Q, B, a, b, c = scenario_data(seed, d)
    hess2 = np.block([[np.zeros((d, d)), B.T], [B, Q]])
    follower = nestopt.Level(
        value=lambda x, y: 0.5 * y @ Q @ y + y @ (B @ x + c),
        grad=lambda x, y: np.concatenate([B.T @ y, Q @ y + B @ x + c]),
        hess=lambda x, y: hess2,
        size=d,
        quadratic=True,
    )
    leader = nestopt.Level(
        value=lambda x, y: 0.5 * (x - a) @ (x - a) + 0.5 * (y - b) @ (y - b),
        grad=lambda x, y: np.concatenate([x - a, y - b]),
        hess=lambda x, y: np.eye(2 * d),
        size=d,
    )
    return nestopt.Problem([leader, follower])


def bare_scenario(param: tuple[int, int], evaluations: int) -> np.ndarray:
    """The same count of leader evaluations, each one follower solve and one adjoint solve."""
    import scipy.linalg as sl

    seed, d = param
    Q, B, a, b, c = scenario_data(seed, d)
    factor = sl.cho_factor(Q, lower=True, check_finite=False)
    x, y = np.zeros(d), np.zeros(d)
    for _ in range(evaluations):
        y = y - sl.cho_solve(factor, Q @ y + B @ x + c, check_finite=False)  # Newton step
        nu = sl.cho_solve(factor, y - b, check_finite=False)  # adjoint
        g = (x - a) - B.T @ nu
        x = x - 0.5 * g
    return x


def oracle_bare_scenario(param: tuple[int, int], evaluations: int) -> np.ndarray:
    """`bare_scenario` through the scenario's own callables (built by the same factory)."""
    import scipy.linalg as sl

    d = param[1]
    leader, follower = scenario(param).levels
    x, y = np.zeros(d), np.zeros(d)
    H = follower.hess(x, y)  # constant: asked for once, as for a declared quadratic level
    factor = sl.cho_factor(H[d:, d:], lower=True, check_finite=False)
    B = H[d:, :d]
    for _ in range(evaluations):
        y = y - sl.cho_solve(factor, follower.grad(x, y)[d:], check_finite=False)  # Newton
        g1 = leader.grad(x, y)
        _ = leader.value(x, y)  # the line search's value
        nu = sl.cho_solve(factor, g1[d:], check_finite=False)  # adjoint
        g = g1[:d] - B.T @ nu
        x = x - 0.5 * g
    return x


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--scenarios", type=int, default=10_000)
    p.add_argument("--d", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1, help="passes over all scenarios")
    p.add_argument("--chunk", type=int, default=250, help="scenarios per timed chunk")
    args = p.parse_args()
    limit_threads(args.threads)
    count = 500 if args.quick else args.scenarios
    params = [(seed, args.d) for seed in range(count)]
    print_machine(machine_info())
    starts = [[np.zeros(args.d), np.zeros(args.d)] for _ in params]
    print(f"{count} scenarios, d = {args.d} per level, n_jobs=1")
    results = nestopt.solve_many(scenario, starts, params=params, n_jobs=1)
    solved = sum(r.success for r in results)
    evaluations = [int(r.nfev["grad"][0]) for r in results]
    print(f"nestopt: {solved}/{count} SUCCESS, leader evaluations per scenario: median "
          f"{int(np.median(evaluations))}, total {sum(evaluations)}")  # fmt: skip

    def run_nestopt(part: slice) -> Any:
        return nestopt.solve_many(scenario, starts[part], params=params[part], n_jobs=1)

    def run_bare(part: slice) -> Any:
        return [oracle_bare_scenario(q, e) for q, e in zip(params[part], evaluations[part])]

    def run_arithmetic(part: slice) -> Any:
        return [bare_scenario(q, e) for q, e in zip(params[part], evaluations[part])]

    # The scenarios go in chunks, each chunk timed once per side in turns (a machine's load
    # drifts over a run: alternating small chunks makes it hit every side alike); the
    # figures are the sums over chunks, and the ratio the median of per-chunk ratios.
    runs = (("nestopt", run_nestopt), ("bare", run_bare), ("bare arithmetic", run_arithmetic))
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    chunk = min(args.chunk, count)
    for _ in range(args.repeats):
        for lo in range(0, count, chunk):
            part = slice(lo, lo + chunk)
            for name, fn in runs:
                tic = time.perf_counter()
                fn(part)
                times[name].append(time.perf_counter() - tic)
    totals = {name: float(np.sum(v)) / args.repeats for name, v in times.items()}
    print(f"{'':16s} {'total s':>9s} {'per scenario ms':>16s}")
    for name, _ in runs:
        print(f"{name:16s} {totals[name]:9.3f} {1e3 * totals[name] / count:16.3f}")
    rounds = len(times["nestopt"])
    for name, target in (("bare", "  (target of issue 22: <= 3)"), ("bare arithmetic", "")):
        ratios = np.array(times["nestopt"]) / np.array(times[name])
        print(f"ratio nestopt/{name} (median of {rounds} chunks of {chunk} scenarios): "
              f"{np.median(ratios):.2f} (quartiles {np.percentile(ratios, 25):.2f} to "
              f"{np.percentile(ratios, 75):.2f}){target}")  # fmt: skip


if __name__ == "__main__":
    main()
