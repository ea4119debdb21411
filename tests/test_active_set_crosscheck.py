"""The active-set start against the interior point, on random constrained followers.

Every constrained level first tries its active set (the last one, or the rows
at a bound at its start) and falls back to the interior point; both must give
the same response, multipliers and hypergradient, from any start. Random
box- and row-constrained QP followers with a leader-dependent linear term are
solved both ways (the interior point alone by disabling the warm start) and
against SciPy's SLSQP where it is installed; the hypergradient is also
checked against central differences of the value function.
"""

from __future__ import annotations

import numpy as np
import pytest

import nestopt
from nestopt._respond.constrained import solve as constrained_solve


def _random_follower(seed):
    """Follower min 1/2 y'Qy + (B x + q)'y s.t. lo <= y <= hi, A y <= b; leader
    min 1/2 |y - t|^2 + 1/2 |x|^2 / 10."""
    rng = np.random.default_rng(seed)
    d1, d2, m = 2, int(rng.integers(3, 9)), int(rng.integers(0, 3))
    M = rng.standard_normal((d2, d2))
    Q = M @ M.T / d2 + 0.5 * np.eye(d2)
    B = rng.standard_normal((d2, d1))
    q = 1.5 * rng.standard_normal(d2)
    lo, hi = -rng.uniform(0.2, 1.0, d2), rng.uniform(0.2, 1.0, d2)
    A = rng.standard_normal((m, d2))
    b = rng.uniform(0.1, 0.5, m)
    t = rng.uniform(-1, 1, d2)
    H2 = np.block([[np.zeros((d1, d1)), B.T], [B, Q]])
    follower = nestopt.Level(
        value=lambda x, y: 0.5 * y @ Q @ y + (B @ x + q) @ y,
        grad=lambda x, y: (B.T @ y, Q @ y + B @ x + q),
        hess=lambda x, y: H2,
        size=d2,
        name="follower",
        bounds=nestopt.Bounds(lo, hi),
        constraints=[nestopt.LinearConstraint(np.hstack([np.zeros((m, d1)), A]), -np.inf, b)]
        if m
        else (),
    )
    leader = nestopt.Level(
        value=lambda x, y: 0.5 * (y - t) @ (y - t) + 0.05 * x @ x,
        grad=lambda x, y: (0.1 * x, y - t),
        hess=lambda x, y: np.diag(np.concatenate([np.full(d1, 0.1), np.ones(d2)])),
        size=d1,
    )
    data = {"Q": Q, "B": B, "q": q, "lo": lo, "hi": hi, "A": A, "b": b}
    return nestopt.Problem([leader, follower]), data, rng


def _both_ways(problem, start, monkeypatch):
    fast = nestopt.best_response(problem, start)
    with monkeypatch.context() as patch:
        patch.setattr(constrained_solve, "_warm_start", lambda *args, **kwargs: None)
        slow = nestopt.best_response(problem, start)
    return fast, slow


@pytest.mark.parametrize("seed", range(12))
def test_random_qp_followers_agree_with_the_interior_point(seed, monkeypatch):
    problem, data, rng = _random_follower(seed)
    d1, d2 = problem.sizes
    for _ in range(3):
        x = rng.standard_normal(d1)
        for y0 in (np.zeros(d2), rng.uniform(data["lo"], data["hi"])):
            try:
                fast, slow = _both_ways(problem, [x, y0], monkeypatch)
            except nestopt.DegeneracyWarning:
                continue  # a kink drawn at random: nothing to compare
            np.testing.assert_allclose(fast.xs[1], slow.xs[1], rtol=0, atol=1e-12)
            np.testing.assert_allclose(fast.hypergrad, slow.hypergrad, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(fast.multipliers[2], slow.multipliers[2], atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_random_qp_followers_against_slsqp_and_the_value_function(seed):
    optimize = pytest.importorskip("scipy.optimize")
    problem, data, rng = _random_follower(100 + seed)
    d1, d2 = problem.sizes
    x = rng.standard_normal(d1)
    Q, B, q, A, b = data["Q"], data["B"], data["q"], data["A"], data["b"]

    def response(x):
        cons = [{"type": "ineq", "fun": lambda y: b - A @ y, "jac": lambda y: -A}] if b.size else []
        r = optimize.minimize(
            lambda y: 0.5 * y @ Q @ y + (B @ x + q) @ y,
            np.zeros(d2),
            jac=lambda y: Q @ y + B @ x + q,
            bounds=list(zip(data["lo"], data["hi"])),
            constraints=cons,
            method="SLSQP",
            options={"ftol": 1e-15, "maxiter": 500},
        )
        return r.x

    try:
        result = nestopt.best_response(problem, [x, np.zeros(d2)])
    except nestopt.DegeneracyWarning:
        pytest.skip("a kink drawn at random")
    np.testing.assert_allclose(result.xs[1], response(x), atol=1e-7)

    def F(x):
        y = nestopt.best_response(problem, [x, np.zeros(d2)]).xs[1]
        return float(problem.levels[0].value(x, y))

    h = 1e-6
    fd = np.array([(F(x + h * e) - F(x - h * e)) / (2 * h) for e in np.eye(d1)])
    np.testing.assert_allclose(result.hypergrad, fd, rtol=1e-6, atol=1e-8)
