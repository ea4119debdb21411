"""ITD (Sato et al.) against an independent, naively written unrolled value function."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_array_on, relative_error

import nestopt
from nestopt.problems import quad, quad_reference


def unrolled_value(problem, x1, steps, alphas):
    """``f_1(x1, unrolled lower levels)`` for a trilevel quadratic, in plain loops.

    Level 3: ``steps`` gradient steps from 0. Level 2: ``steps`` steps from 0 on
    ``grad_2 f_2 + J_3[:, 2]^T grad_3 f_2`` with ``J_3 = dx_3/dx_2`` of the unrolled
    level 3 (constant: gradient steps on a quadratic are affine maps).
    """
    Q, c = problem.data["Q"], problem.data["c"]
    d1, d2, d3 = problem.sizes
    s1, s2 = d1, d1 + d2
    a2, a3 = alphas

    def level3(x1, x2):
        x3 = np.zeros(d3)
        J = np.zeros((d3, d2))
        for _ in range(steps):
            x = np.concatenate([x1, x2, x3])
            x3 = x3 - a3 * (Q[2] @ x + c[2])[s2:]
            J = J - a3 * (Q[2][s2:, s1:s2] + Q[2][s2:, s2:] @ J)
        return x3, J

    x2 = np.zeros(d2)
    for _ in range(steps):
        x3, J = level3(x1, x2)
        g = Q[1] @ np.concatenate([x1, x2, x3]) + c[1]
        x2 = x2 - a2 * (g[s1:s2] + J.T @ g[s2:])
    x3, _ = level3(x1, x2)
    x = np.concatenate([x1, x2, x3])
    return 0.5 * x @ Q[0] @ x + c[0] @ x


@pytest.mark.parametrize("steps", [3, 20])
def test_itd_is_the_derivative_of_the_unrolled_value_function(xp, steps):
    problem = quad(3, (2, 3, 2), seed=4)
    alphas = (0.3, 0.4)
    x1 = np.array([0.7, -1.2])
    h = 1e-2  # the unrolled value is quadratic in x1: central differences are exact
    truth = np.array(
        [
            (
                unrolled_value(problem, x1 + h * e, steps, alphas)
                - unrolled_value(problem, x1 - h * e, steps, alphas)
            )
            / (2 * h)
            for e in np.eye(2)
        ]
    )
    start = [xp.asarray(x1), xp.zeros(3, dtype=xp.float64), xp.zeros(2, dtype=xp.float64)]
    g = nestopt.hypergradient(problem, start, method="itd", steps=steps, step_size=list(alphas))
    assert_array_on(g, xp, shape=(2,))
    assert relative_error(g, truth) <= 1e-10


def test_itd_converges_to_the_exact_hypergradient_as_steps_grow():
    problem = quad(3, 4, seed=1)
    ref = quad_reference(problem.data["Q"], problem.data["c"], problem.data["sizes"])
    x1 = np.ones(4)
    exact = ref["hessian"] @ x1 + ref["grad_at_zero"]
    errors = [
        relative_error(
            nestopt.hypergradient(problem, [x1, np.zeros(4), np.zeros(4)], method="itd", steps=t),
            exact,
        )
        for t in (5, 20, 80)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-5


def test_itd_result_fields():
    problem = quad(2, 3, seed=2)
    result = nestopt.best_response(problem, problem.x0, method="itd", steps=10)
    assert result.method == "itd" and result.jacobians is None
    assert result.level_nit == (0, 10) and result.nit == 10
    assert result.sensitivity[2].shape == (3, 3)
    assert "ITD" in result.exactness


def test_itd_argument_errors():
    problem = quad(3, 2, seed=0)
    with pytest.raises(ValueError, match="steps"):
        nestopt.hypergradient(problem, problem.x0, method="itd")
    with pytest.raises(ValueError, match="one entry per lower level"):
        nestopt.hypergradient(problem, problem.x0, method="itd", steps=[3])
    with pytest.raises(ValueError, match="positive"):
        nestopt.hypergradient(problem, problem.x0, method="itd", steps=5, step_size=-1.0)
    with pytest.raises(ValueError, match="'itd' only"):
        nestopt.hypergradient(problem, problem.x0, steps=5)
