"""Certified kinks: points where a lower level's row is weakly active (issue: DESIGN 9, "Kinks").

The follower ``min |y - x|^2 / 2`` over ``y >= 0`` has the response
``y = max(x, 0)``, with a kink at every ``x_i = 0`` (the bound weakly active).
Leaders built on it have known one-sided slopes and curvatures there, so each
verdict below is known in closed form: a strict kink minimum (certified),
one piece descending (the run steps off and continues), and a point whose
one-sided gradients all vanish but which is a saddle (never certified).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from helpers import max_follower, solve_quietly

import nestopt
from nestopt.problems import bolib

pytest.importorskip("scipy")


def _kinked(k, leader_value, leader_grad, leader_hess, x_bounds=None):
    """Follower y = max(x, 0) in R^k; the leader's callables take (x, y)."""
    follower = max_follower(np.zeros(k), name="follower")
    leader = nestopt.Level(
        value=leader_value, grad=leader_grad, hess=leader_hess, size=k, bounds=x_bounds
    )
    return nestopt.Problem([leader, follower])


def _v(k):
    """F = sum(-x/2 + y): slope -1/2 left of each kink, +1/2 right: a strict minimum at 0."""
    return _kinked(
        k,
        lambda x, y: float(np.sum(-0.5 * x + y)),
        lambda x, y: (np.full(k, -0.5), np.ones(k)),
        lambda x, y: np.zeros((2 * k, 2 * k)),
    )


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_strict_kink_minimum_is_certified(k):
    # From the left the run reaches the kink with a one-sided gradient of -1/2 that never
    # vanishes: without the certificate it ends DEGENERATE (or a failed line search).
    result = solve_quietly(_v(k), np.full(k, -1.0))
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert f"kink certified: {k} weakly active row{'s' if k > 1 else ''}, {2**k} pieces" in (
        result.message
    )
    np.testing.assert_allclose(result.x, np.zeros(k), atol=1e-6)
    assert len(result.weakly_active[2]) == k


def test_a_kink_that_descends_along_one_piece_is_left_behind():
    # F = -x/2 - y: slope -1/2 left of 0 and -3/2 right of it; the leader's box stops it at
    # x = 2, a smooth minimum (F = -3). At the kink one piece descends.
    problem = _kinked(
        1,
        lambda x, y: float(-0.5 * x[0] - y[0]),
        lambda x, y: (np.array([-0.5]), np.array([-1.0])),
        lambda x, y: np.zeros((2, 2)),
        x_bounds=nestopt.Bounds(np.array([-5.0]), np.array([2.0])),
    )
    result = solve_quietly(problem, [-1.0])
    assert result.status is nestopt.Status.SUCCESS, result.message
    np.testing.assert_allclose(result.x, [2.0], atol=1e-8)
    np.testing.assert_allclose(result.fun, -3.0, atol=1e-8)


def test_the_descent_direction_is_taken_at_the_kink_itself():
    # F = x - y + y^2: left of 0 (y = 0) F = x, right of it (y = x) F = x^2. At x = 0 the
    # returned one-sided gradient (the piece where the bound is released) is zero, so a
    # gradient method stops there; the kept piece descends to the left, down to the
    # leader's bound x = -2 (F = -2).
    problem = _kinked(
        1,
        lambda x, y: float(x[0] - y[0] + y[0] ** 2),
        lambda x, y: (np.ones(1), -1.0 + 2.0 * y),
        lambda x, y: np.diag([0.0, 2.0]),
        x_bounds=nestopt.Bounds(np.array([-2.0]), np.array([5.0])),
    )
    result = solve_quietly(problem, [0.0])
    assert result.status is nestopt.Status.SUCCESS, result.message
    np.testing.assert_allclose(result.x, [-2.0], atol=1e-8)
    np.testing.assert_allclose(result.fun, -2.0, atol=1e-8)
    assert any("left a kink" in note for note in result.notes)


def test_a_saddle_with_zero_one_sided_gradients_is_not_certified():
    # F = x^2 - 2 y^2: left of 0, x^2 (rises); right, x^2 - 2x^2 = -x^2 (falls, but with
    # a zero slope at 0): both one-sided gradients vanish, the point is no minimum.
    problem = _kinked(
        1,
        lambda x, y: float(x[0] ** 2 - 2.0 * y[0] ** 2),
        lambda x, y: (2.0 * x, -4.0 * y),
        lambda x, y: np.diag([2.0, -4.0]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = solve_quietly(problem, [0.0])
    assert not result.success
    assert result.status is nestopt.Status.DEGENERATE
    assert "not certified" in result.message


def test_a_maximum_with_zero_one_sided_gradients_is_not_certified():
    # F = -x^2 - y^2 at 0: B-stationary (every one-sided slope is zero), but a maximum.
    problem = _kinked(
        1,
        lambda x, y: float(-(x[0] ** 2) - y[0] ** 2),
        lambda x, y: (-2.0 * x, -2.0 * y),
        lambda x, y: np.diag([-2.0, -2.0]),
        x_bounds=nestopt.Bounds(np.array([-3.0]), np.array([3.0])),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = solve_quietly(problem, [0.0])
    assert not (result.success and abs(float(result.x[0])) < 1e-6)


@pytest.mark.parametrize("name", ["DeSilva1978", "Outrata1993Ex31", "Outrata1994Ex31"])
def test_published_kink_optima_are_certified_from_their_start(name):
    problem = bolib(name, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        result = nestopt.solve(problem, problem.x0, options={"gtol": 1e-10})
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert "kink certified" in result.message
    for got, expected in zip(result.xs, problem.solution):
        assert np.max(np.abs(got - expected)) <= 1e-6
    assert abs(result.fun - problem.data["F"]) <= 1e-6 * max(1.0, abs(problem.data["F"]))


def test_an_svm_c_search_from_a_small_c_ends_at_a_certified_kink_or_a_smooth_minimum():
    """The run that once wandered near kinks for minutes and ended SMALL_STEP."""
    pytest.importorskip("sklearn")
    from nestopt.problems import svm_dual

    problem = svm_dual("breast_cancer", backend="numpy")
    n = problem.data["y"].size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        small = nestopt.solve(problem, [np.array([np.log(0.01)]), np.zeros(n)])
        large = nestopt.solve(problem, [np.array([np.log(1.0)]), np.zeros(n)])
    for result in (small, large):
        assert result.status is nestopt.Status.SUCCESS, result.message
    # Both starts find the same point, and no C nearby is better (the value function,
    # each point solved cold).
    np.testing.assert_allclose(small.x, large.x, atol=1e-6)

    def F(log_c):
        r = nestopt.best_response(problem, [np.array([log_c]), np.zeros(n)])
        return r.fun

    x = float(small.x[0])
    for step in (1e-3, -1e-3, 1e-2, -1e-2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
            assert F(x + step) >= small.fun - 1e-12


@pytest.mark.parametrize(("x", "slope"), [(-1e-8, 0.5), (-1e-6, 0.5), (1e-8, 1.5)])
def test_near_a_kink_the_hypergradient_is_that_of_the_piece_the_point_is_on(x, slope):
    # F = x/2 + y with y = max(x, 0): slope 1/2 left of 0, 3/2 right. Just left of the kink
    # the bound is active with a small (not zero) multiplier: the point is on the left
    # piece, and a tolerance that called the bound weakly active returned the right one's.
    problem = _kinked(
        1,
        lambda x, y: float(0.5 * x[0] + y[0]),
        lambda x, y: (np.array([0.5]), np.ones(1)),
        lambda x, y: np.zeros((2, 2)),
    )
    got = nestopt.hypergradient(problem, [np.array([x]), np.zeros(1)])
    np.testing.assert_allclose(got, [slope], rtol=1e-12)


def _bard_1984_example_2():
    """BASBLib QP-QP/b_1984_02 (Bard, Naval Res. Logist. Q. 31, 1984, example 2).

    Leader min -x1^2 - 3 x2^2 - 4 y1 + y2^2 s.t. x1^2 + 2 x2 <= 4, 0 <= x <= 10; follower
    min 2 x1^2 + y1^2 - 5 y2 s.t. -x1^2 + 2 x1 - x2^2 + 2 y1 - y2 <= 3, -x2 - 3 y1 + 4 y2 <= -4,
    0 <= y <= 10. At x = (0, 2) only the second follower row is active: y2 = (3 y1 - 2)/4
    maximizes 5 y2 - y1^2 at y = (15/8, 29/32), so F* = -12 - 15/2 + (29/32)^2
    = -18.6787109375 (BASBLib lists -18.687 and y in the other order). There x1 sits on its
    bound with a zero one-sided hypergradient (the active row does not involve x1): the
    top level's own bound is weakly active, and its curvature along the leader's active row
    (F = -12 + 5 x1^2 + ...) makes the point a strict minimum.
    """
    leader_row = nestopt.NonlinearConstraint(
        lambda x, y: np.array([x[0] ** 2 + 2 * x[1]]),
        -np.inf,
        4.0,
        jac=lambda x, y: np.array([[2 * x[0], 2.0, 0.0, 0.0]]),
        hess=lambda x, y, v: np.diag([2 * v[0], 0.0, 0.0, 0.0]),
    )
    first = nestopt.NonlinearConstraint(
        lambda x, y: np.array([-(x[0] ** 2) + 2 * x[0] - x[1] ** 2 + 2 * y[0] - y[1]]),
        -np.inf,
        3.0,
        jac=lambda x, y: np.array([[2 - 2 * x[0], -2 * x[1], 2.0, -1.0]]),
        hess=lambda x, y, v: np.diag([-2 * v[0], -2 * v[0], 0.0, 0.0]),
    )
    second = nestopt.LinearConstraint(np.array([[0.0, -1.0, -3.0, 4.0]]), -np.inf, -4.0)
    box = nestopt.Bounds(np.zeros(2), np.full(2, 10.0))
    leader = nestopt.Level(
        value=lambda x, y: -(x[0] ** 2) - 3 * x[1] ** 2 - 4 * y[0] + y[1] ** 2,
        grad=lambda x, y: np.array([-2 * x[0], -6 * x[1], -4.0, 2 * y[1]]),
        hess=lambda x, y: np.diag([-2.0, -6.0, 0.0, 2.0]),
        size=2,
        bounds=box,
        constraints=[leader_row],
    )
    follower = nestopt.Level(
        value=lambda x, y: 2 * x[0] ** 2 + y[0] ** 2 - 5 * y[1],
        grad=lambda x, y: np.array([4 * x[0], 0.0, 2 * y[0], -5.0]),
        hess=lambda x, y: np.diag([4.0, 0.0, 2.0, 0.0]),
        size=2,
        bounds=box,
        constraints=[first, second],
        name="follower",
    )
    return nestopt.Problem([leader, follower])


@pytest.mark.parametrize("x0", [[0.0, 0.0], [1.0, 1.0], [0.5, 1.5]])
def test_bard_1984_example_2_ends_at_its_minimum_with_a_bound_held_at_zero_gradient(x0):
    result = nestopt.solve(_bard_1984_example_2(), [np.array(x0), np.zeros(2)])
    assert result.status is nestopt.Status.SUCCESS, result.message
    np.testing.assert_allclose(result.xs[0], [0.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(result.xs[1], [15 / 8, 29 / 32], atol=1e-9)
    np.testing.assert_allclose(result.fun, -12 - 7.5 + (29 / 32) ** 2, rtol=1e-10)


def _trilevel(leader_value, leader_grad, x_bounds=None):
    """Level 2: y = max(x, 0) (its bound weakly active at x = 0); level 3 copies it, z = y.
    The leader's callables take (x, y, z) and see the kink through z."""
    a = np.array([[1.0, -1.0], [-1.0, 1.0]])
    middle = nestopt.Level(
        value=lambda x, y, z: 0.5 * float((y - x) @ (y - x)),
        grad=lambda x, y, z: (x - y, y - x, np.zeros(1)),
        hess=lambda x, y, z: np.block([[a, np.zeros((2, 1))], [np.zeros((1, 3))]]),
        size=1,
        name="middle",
        bounds=nestopt.Bounds(np.zeros(1), np.full(1, np.inf)),
    )
    bottom = nestopt.Level(
        value=lambda x, y, z: 0.5 * float((z - y) @ (z - y)),
        grad=lambda x, y, z: (np.zeros(1), y - z, z - y),
        hess=lambda x, y, z: np.block([[np.zeros((1, 3))], [np.zeros((2, 1)), a]]),
        size=1,
        name="bottom",
    )
    leader = nestopt.Level(
        value=leader_value,
        grad=leader_grad,
        hess=lambda x, y, z: np.zeros((3, 3)),
        size=1,
        bounds=x_bounds,
    )
    return nestopt.Problem([leader, middle, bottom])


def test_a_kink_of_the_middle_level_of_a_trilevel_problem_is_certified():
    # F = -x/2 + z with z = y = max(x, 0): the strict kink minimum at 0, seen through level 3.
    problem = _trilevel(
        lambda x, y, z: float(-0.5 * x[0] + z[0]),
        lambda x, y, z: (np.array([-0.5]), np.zeros(1), np.ones(1)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        result = nestopt.solve(problem, [np.array([-1.0]), np.zeros(1), np.zeros(1)])
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert "kink certified: 1 weakly active row, 2 pieces" in result.message
    np.testing.assert_allclose(result.x, [0.0], atol=1e-8)


def test_a_descending_piece_of_a_trilevel_kink_is_followed():
    # F = x - z + z^2 (as in the bilevel case, through z = y): left of 0, F = x; the run
    # leaves the kink to the left, down to the leader's bound x = -2.
    problem = _trilevel(
        lambda x, y, z: float(x[0] - z[0] + z[0] ** 2),
        lambda x, y, z: (np.ones(1), np.zeros(1), -1.0 + 2.0 * z),
        x_bounds=nestopt.Bounds(np.array([-2.0]), np.array([5.0])),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        result = nestopt.solve(problem, [np.array([0.0]), np.zeros(1), np.zeros(1)])
    assert result.status is nestopt.Status.SUCCESS, result.message
    np.testing.assert_allclose(result.x, [-2.0], atol=1e-8)


@pytest.mark.parametrize(("sign", "certified"), [(1.0, True), (-1.0, False)])
def test_a_kink_on_a_weakly_active_leader_bound(sign, certified):
    # Leader x >= 0 and F = sign * y^2 with y = max(x, 0): at x = 0 the leader's bound is
    # weakly active (zero slope on the feasible side) and the follower's bound too. With
    # sign = +1 the feasible piece curves up (F = x^2): a certified minimum. With sign = -1
    # it curves down (F = -x^2): zero slopes everywhere, but no minimum, so no certificate.
    problem = _kinked(
        1,
        lambda x, y: float(sign * y[0] ** 2),
        lambda x, y: (np.zeros(1), 2.0 * sign * y),
        lambda x, y: np.diag([0.0, 2.0 * sign]),
        x_bounds=nestopt.Bounds(np.zeros(1), np.full(1, 3.0)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = solve_quietly(problem, [0.0])
    if certified:
        assert result.status is nestopt.Status.SUCCESS, result.message
        assert "kink certified" in result.message
        np.testing.assert_allclose(result.x, [0.0], atol=1e-12)
    else:
        assert result.status is nestopt.Status.DEGENERATE
        assert "kink not certified: a piece is not curved upward" in result.message


def _constrained_leader(leader_value, leader_grad, row_upper):
    """The V-shaped kink (y = max(x, 0)) under a leader with its own row x <= row_upper,
    so that level 1 is solved by its interior point."""
    row = nestopt.LinearConstraint(np.array([[1.0, 0.0]]), -np.inf, row_upper)
    problem = _kinked(1, leader_value, leader_grad, lambda x, y: np.zeros((2, 2)))
    leader = dataclasses.replace(problem.levels[0], constraints=[row])
    return nestopt.Problem([leader, problem.levels[1]])


@pytest.mark.parametrize("x0", [-1.0, 1.0])
def test_a_kink_under_a_constrained_leader_is_certified_to_first_order(x0):
    # F = -x/2 + y: slopes -1/2 and +1/2 either side of 0, the leader's row x <= 5 inactive.
    # Level 1's interior point reaches the kink and stalls there (its KKT error is the
    # slopes' jump); the run reports that point, not its start, and certifies it.
    problem = _constrained_leader(
        lambda x, y: float(-0.5 * x[0] + y[0]),
        lambda x, y: (np.array([-0.5]), np.ones(1)),
        5.0,
    )
    result = solve_quietly(problem, [x0])
    assert result.optimizer == "interior_point"
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert "kink certified: 1 weakly active row, 2 pieces checked" in result.message
    np.testing.assert_allclose(result.x, [0.0], atol=1e-8)


def test_a_constrained_leader_at_a_kink_that_is_no_minimum_is_not_certified():
    # F = x - y + y^2: flat to the right of 0 (F = x^2), falling to the left (F = x): not a
    # minimum, and level 1 with constraints does not follow the descending piece.
    problem = _constrained_leader(
        lambda x, y: float(x[0] - y[0] + y[0] ** 2),
        lambda x, y: (np.ones(1), -1.0 + 2.0 * y),
        5.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = solve_quietly(problem, [0.0])
    assert not (result.success and "kink certified" in result.message)


def test_a_constrained_leader_leaves_a_kink_along_its_descending_piece():
    # F = x - y + y^2 with y = max(x, 0): F = x^2 right of 0 (slope 0 at the kink), F = x
    # left of it, so from x0 = 0 the only descent is to the left; the leader's rows
    # -2 <= x <= 5 stop it at x = -2 (F = -2, the row's multiplier 1). Level 1's interior
    # point stalls on the kink; the run steps off along the descending piece, solves level 1
    # again from there and ends at the row.
    row = nestopt.LinearConstraint(np.array([[1.0, 0.0]]), -2.0, 5.0)
    problem = _kinked(
        1,
        lambda x, y: float(x[0] - y[0] + y[0] ** 2),
        lambda x, y: (np.ones(1), -1.0 + 2.0 * y),
        lambda x, y: np.array([[0.0, 0.0], [0.0, 2.0]]),
    )
    leader = dataclasses.replace(problem.levels[0], constraints=[row])
    result = solve_quietly(nestopt.Problem([leader, problem.levels[1]]), [0.0])
    assert result.optimizer == "interior_point"
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert any("left a kink" in note for note in result.notes), result.notes
    np.testing.assert_allclose(result.x, [-2.0], atol=1e-8)
    np.testing.assert_allclose(result.fun, -2.0, atol=1e-8)
