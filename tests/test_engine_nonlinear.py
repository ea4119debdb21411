"""The constrained engine on nonlinear rows: quadrics, a sphere from its centre, float32.

Answers are compared with closed forms: ``min c'x`` over ``x'Mx <= r^2`` (and
over its surface) is ``x* = -r M^-1 c / sqrt(c'M^-1 c)`` with row multiplier
``y* = sqrt(c'M^-1 c) / (2 r)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from engine_cases import DistanceOverBall, LinearOverQuadric

from nestopt._respond.constrained.engine import solve_nlp
from nestopt._respond.constrained.nlp import EngineStatus


def _closed_form(c, M, r):
    w = np.linalg.solve(M, c)
    s = np.sqrt(c @ w)
    return -r * w / s, s / (2.0 * r)


@pytest.mark.parametrize("surface", [False, True], ids=["ball", "ellipsoid_surface"])
def test_linear_objective_over_30_random_ellipsoids(xp, surface):
    rng = np.random.default_rng(7)
    for trial in range(30 if xp.__name__ == "numpy" else 6):
        n = int(rng.integers(2, 7))
        B = rng.standard_normal((n, n))
        M = B @ B.T + 0.1 * np.eye(n)
        c, r = rng.standard_normal(n), float(rng.uniform(0.5, 3.0))
        problem = LinearOverQuadric(xp, c, M, r, surface=surface)
        result = solve_nlp(problem, xp.zeros(n, dtype=xp.float64))
        assert result.status is EngineStatus.SOLVED, (trial, result.status)
        x_star, y_star = _closed_form(c, M, r)
        assert np.max(np.abs(np.asarray(result.x) - x_star)) <= 1e-9 * max(1.0, r), trial
        assert abs(float(np.asarray(result.y)[0]) - y_star) <= 1e-9 * max(1.0, y_star), trial


def test_unit_sphere_from_its_centre_is_solved(xp):
    # At x = 0 the row's gradient vanishes: a maximum of the violation, not evidence of
    # infeasibility.
    c = np.array([1.0, 2.0, -0.5])
    problem = LinearOverQuadric(xp, c, np.eye(3), 1.0, surface=True)
    result = solve_nlp(problem, xp.zeros(3, dtype=xp.float64))
    assert result.status is EngineStatus.SOLVED
    x_star, y_star = _closed_form(c, np.eye(3), 1.0)
    assert np.max(np.abs(np.asarray(result.x) - x_star)) <= 1e-10
    assert abs(float(np.asarray(result.y)[0]) - y_star) <= 1e-10


def test_box_against_ball_is_infeasible_with_a_certificate(xp):
    # x in [2, 3]^2 and |x|^2 <= 1. The ball is convex, so its linearization at any point
    # contains it: a Farkas certificate of the linearized rows proves infeasibility.
    lower, upper = np.full(2, 2.0), np.full(2, 3.0)
    problem = LinearOverQuadric(xp, np.ones(2), np.eye(2), 1.0, xl=lower, xu=upper)
    result = solve_nlp(problem, xp.asarray([2.5, 2.5], dtype=xp.float64))
    assert result.status is EngineStatus.INFEASIBLE
    y = float(np.asarray(result.certificate)[0])
    assert y > 0  # the ball's upper side
    # For every x in the box: y |x|^2 >= y min_box |x|^2 = 8 y > y * 1.
    assert y * 8.0 > y * 1.0


def test_float32_with_an_active_nonlinear_row_is_solved_without_warnings(xp):
    problem = DistanceOverBall(xp, [2.0, 2.0], xp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = solve_nlp(problem, xp.zeros(2, dtype=xp.float32))
    assert result.status is EngineStatus.SOLVED
    assert result.x.dtype == xp.float32
    eps = float(np.finfo(np.float32).eps)
    assert np.max(np.abs(np.asarray(result.x) - np.sqrt(0.5))) <= 10 * np.sqrt(eps)
    assert abs(float(np.asarray(result.y)[0]) - (2.0 * np.sqrt(2.0) - 1.0)) <= 100 * np.sqrt(eps)
    assert bool(result.active_rows[0])


def test_float32_at_an_interior_point_without_warnings(xp):
    problem = DistanceOverBall(xp, [0.25, -0.5], xp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = solve_nlp(problem, xp.zeros(2, dtype=xp.float32))
    assert result.status is EngineStatus.SOLVED
    assert np.max(np.abs(np.asarray(result.x) - np.array([0.25, -0.5]))) <= 10 * np.sqrt(
        float(np.finfo(np.float32).eps)
    )
    assert not bool(result.active_rows[0])
