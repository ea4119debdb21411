"""Constrained followers of issue 20 solved through nestopt with the new engine.

Truth is independent of the engine: closed forms (responses at bounds have a
zero Jacobian; an unconstrained quadratic response is linear in the leader),
the natural residual of the SVM dual's KKT conditions, and a Farkas argument.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nestopt


def _leader(n_lower):
    return nestopt.Level(
        value=lambda x, y: float(x @ x),
        grad=lambda x, y: np.concatenate([2 * x, np.zeros(n_lower)]),
        hess=lambda x, y: np.diag(np.concatenate([[2.0], np.zeros(n_lower)])),
        size=1,
    )


@pytest.mark.parametrize("k", [1e7, 1e12])
def test_stiff_bounds_give_the_zero_jacobian_and_are_not_weakly_active(k):
    # min (k (y1 - x)^2 + (y2 - x)^2) / 2 over 1 <= y <= 5 at x = 0: both bounds hold with
    # multipliers (-k, -1), so the response does not move with x.
    lower = nestopt.Level(
        value=lambda x, y: float(0.5 * (k * (y[0] - x[0]) ** 2 + (y[1] - x[0]) ** 2)),
        grad=lambda x, y: np.array(
            [-k * (y[0] - x[0]) - (y[1] - x[0]), k * (y[0] - x[0]), y[1] - x[0]]
        ),
        hess=lambda x, y: np.array([[k + 1, -k, -1], [-k, k, 0], [-1, 0, 1.0]]),
        size=2,
        bounds=nestopt.Bounds(np.ones(2), np.full(2, 5.0)),
    )
    problem = nestopt.Problem([_leader(2), lower])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DegeneracyWarning
        result = nestopt.best_response(problem, [np.zeros(1), np.array([3.0, 3.0])])
    np.testing.assert_array_equal(result.xs[1], [1.0, 1.0])
    np.testing.assert_allclose(result.multipliers[2], [-k, -1.0], rtol=1e-12)
    assert not result.weakly_active.get(2)
    assert np.all(result.jacobians[2] == 0.0)


def test_mixed_units_are_not_weakly_active():
    # y* = (1e6 x, 1e-4 x) at x = 1 with y >= 0 inactive: dy*/dx = (1e6, 1e-4).
    lower = nestopt.Level(
        value=lambda x, y: float(0.5 * ((y[0] / 1e6 - x[0]) ** 2 + (y[1] / 1e-4 - x[0]) ** 2)),
        grad=lambda x, y: np.array(
            [
                -(y[0] / 1e6 - x[0]) - (y[1] / 1e-4 - x[0]),
                (y[0] / 1e6 - x[0]) / 1e6,
                (y[1] / 1e-4 - x[0]) / 1e-4,
            ]
        ),
        hess=lambda x, y: np.array([[2.0, -1e-6, -1e4], [-1e-6, 1e-12, 0], [-1e4, 0, 1e8]]),
        size=2,
        bounds=nestopt.Bounds(np.zeros(2), np.full(2, np.inf)),
    )
    problem = nestopt.Problem([_leader(2), lower])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = nestopt.best_response(problem, [np.ones(1), np.array([1.0, 1.0])])
    np.testing.assert_allclose(result.xs[1], [1e6, 1e-4], rtol=1e-10)
    assert not result.active.get(2) and not result.weakly_active.get(2)
    np.testing.assert_allclose(result.jacobians[2].ravel(), [1e6, 1e-4], rtol=1e-10)


def _svm(C):
    from sklearn.datasets import load_breast_cancer

    X, labels = load_breast_cancer(return_X_y=True)
    pick = np.random.default_rng(0).choice(labels.size, 60, replace=False)
    X = X[pick]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = np.where(labels[pick] == 1, 1.0, -1.0)
    Q, n = (y[:, None] * y[None, :]) * (X @ X.T), y.size
    w = np.linspace(-1.0, 1.0, n)  # the leader tilts the linear term
    lower = nestopt.Level(
        value=lambda x, a: float(0.5 * a @ Q @ a - (1 + x[0] * w) @ a),
        grad=lambda x, a: np.concatenate([[-(w @ a)], Q @ a - 1 - x[0] * w]),
        hess=lambda x, a: np.block([[np.zeros((1, 1)), -w[None, :]], [-w[:, None], Q]]),
        size=n,
        bounds=nestopt.Bounds(np.zeros(n), np.full(n, C)),
        constraints=[nestopt.LinearConstraint(np.concatenate([[0.0], y])[None, :], 0.0, 0.0)],
        quadratic=True,
    )
    return nestopt.Problem([_leader(n), lower]), Q, y


def test_svm_dual_follower_is_solved_for_41_values_of_C():
    pytest.importorskip("sklearn")
    for C in np.logspace(-2, 2, 41):
        problem, Q, y = _svm(C)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
            result = nestopt.best_response(problem, [np.zeros(1), np.zeros(y.size)])
        a, nu = result.xs[1], float(result.multipliers[2][0])
        natural = np.max(np.abs(a - np.clip(a - (Q @ a - 1 + nu * y), 0.0, C)))
        assert natural <= 1e-10 * max(1.0, C * np.max(np.abs(Q))), (C, natural)
        assert abs(y @ a) <= 1e-10 * max(1.0, C * y.size)


def _follower(constraints, bounds=None):
    lower = nestopt.Level(
        value=lambda x, y: float(0.5 * y @ y - x[0] * y.sum()),
        grad=lambda x, y: np.concatenate([[-y.sum()], y - x[0]]),
        hess=lambda x, y: np.block(
            [[np.zeros((1, 1)), -np.ones((1, 3))], [-np.ones((3, 1)), np.eye(3)]]
        ),
        size=3,
        bounds=bounds,
        constraints=constraints,
        name="follower",
    )
    return nestopt.Problem([_leader(3), lower])


def test_an_equality_against_bounds_is_reported_infeasible():
    # y1 + y2 + y3 = 5 with 0 <= y <= 1: no point (the sum is at most 3).
    row = nestopt.LinearConstraint(np.array([[0.0, 1.0, 1.0, 1.0]]), 5.0, 5.0)
    problem = _follower([row], nestopt.Bounds(np.zeros(3), np.ones(3)))
    with pytest.raises(nestopt.InfeasibleError, match="level 2 .*Farkas"):
        nestopt.best_response(problem, [np.zeros(1), np.zeros(3)])


def test_linear_objective_over_a_ball_is_solved_exactly():
    # min c(x)'y over |y| <= 2: y* = -2 c / |c| with c = (1, x, -1); at x = 1, c = (1, 1, -1).
    ball = nestopt.NonlinearConstraint(
        lambda x, y: y @ y,
        -np.inf,
        4.0,
        jac=lambda x, y: np.concatenate([[0.0], 2 * y])[None, :],
        hess=lambda x, y, v: np.diag(np.concatenate([[0.0], 2 * v[0] * np.ones(3)])),
    )
    lower = nestopt.Level(
        value=lambda x, y: float(y[0] + x[0] * y[1] - y[2]),
        grad=lambda x, y: np.array([y[1], 1.0, x[0], -1.0]),
        hess=lambda x, y: np.array([[0, 0, 1.0, 0], [0, 0, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 0]]),
        size=3,
        constraints=[ball],
    )
    problem = nestopt.Problem([_leader(3), lower])
    result = nestopt.best_response(problem, [np.ones(1), np.zeros(3)])
    c = np.array([1.0, 1.0, -1.0])
    np.testing.assert_allclose(result.xs[1], -2 * c / np.linalg.norm(c), atol=1e-12)
    np.testing.assert_allclose(result.multipliers[2], [np.linalg.norm(c) / 4], rtol=1e-12)


def test_an_unbounded_follower_is_reported_as_unbounded():
    # min -y1 + y2^2/2 - x y2 over y1 - y2 >= 0, y1 >= 0: y1 runs off to infinity.
    lower = nestopt.Level(
        value=lambda x, y: float(-y[0] + 0.5 * y[1] ** 2 - x[0] * y[1]),
        grad=lambda x, y: np.array([-y[1], -1.0, y[1] - x[0]]),
        hess=lambda x, y: np.array([[0, 0, -1.0], [0, 0, 0], [-1.0, 0, 1.0]]),
        size=2,
        constraints=[nestopt.LinearConstraint(np.array([[0.0, 1.0, -1.0]]), 0.0, np.inf)],
        bounds=nestopt.Bounds(np.array([0.0, -np.inf]), np.full(2, np.inf)),
        name="follower",
    )
    problem = nestopt.Problem([_leader(2), lower])
    with pytest.raises(nestopt.UnboundedError, match="level 2 .*unbounded below") as info:
        nestopt.best_response(problem, [np.zeros(1), np.zeros(2)])
    assert info.value.level == 2 and info.value.status is nestopt.Status.UNBOUNDED
    with pytest.warns(nestopt.ConvergenceWarning, match="unbounded below"):
        solved = nestopt.solve(problem, [np.zeros(1), np.zeros(2)])
    assert solved.status is nestopt.Status.UNBOUNDED and solved.failed_level == 2


@pytest.mark.parametrize("target", [[0.25, -0.5], [2.0, 2.0]], ids=["interior", "active"])
def test_float32_follower_with_a_ball_solved_without_warnings(target):
    # min |y - t|^2 over |y|^2 <= 1: y* = t inside the ball, t / |t| outside.
    t = np.asarray(target, dtype=np.float32)
    ball = nestopt.NonlinearConstraint(
        lambda x, y: y @ y,
        -np.inf,
        1.0,
        jac=lambda x, y: np.concatenate([np.zeros(1, np.float32), 2 * y])[None, :],
        hess=lambda x, y, v: np.diag(np.concatenate([[0.0], 2 * v[0] * np.ones(2)])).astype(
            np.float32
        ),
    )
    lower = nestopt.Level(
        value=lambda x, y: float((y - t - x) @ (y - t - x)),
        grad=lambda x, y: np.concatenate([[-2 * np.sum(y - t - x)], 2 * (y - t - x)]).astype(
            np.float32
        ),
        hess=lambda x, y: np.array(
            [[4.0, -2.0, -2.0], [-2.0, 2.0, 0.0], [-2.0, 0.0, 2.0]], dtype=np.float32
        ),
        size=2,
        constraints=[ball],
    )
    leader = nestopt.Level(
        value=lambda x, y: float(x @ x),
        grad=lambda x, y: np.concatenate([2 * x, np.zeros(2, np.float32)]),
        hess=lambda x, y: np.diag(np.array([2.0, 0.0, 0.0], dtype=np.float32)),
        size=1,
    )
    problem = nestopt.Problem([leader, lower])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = nestopt.best_response(problem, [np.zeros(1, np.float32), np.zeros(2, np.float32)])
    expected = t if np.linalg.norm(t) < 1 else t / np.linalg.norm(t)
    assert result.xs[1].dtype == np.float32
    np.testing.assert_allclose(result.xs[1], expected, atol=10 * np.sqrt(np.finfo(np.float32).eps))


def test_linear_objective_over_30_ellipsoid_surfaces():
    # min (c + x e)'y over y'My = r^2 at x = 0: y* = -r M^-1 c / sqrt(c'M^-1 c).
    rng = np.random.default_rng(3)
    n, r = 4, 1.5
    for _ in range(30):
        B = rng.standard_normal((n, n))
        M = B @ B.T + 0.1 * np.eye(n)
        c, e = rng.standard_normal(n), rng.standard_normal(n)
        row = nestopt.NonlinearConstraint(
            lambda x, y, M=M: y @ M @ y,
            r * r,
            r * r,
            jac=lambda x, y, M=M: np.concatenate([[0.0], 2 * M @ y])[None, :],
            hess=lambda x, y, v, M=M: np.block(
                [[np.zeros((1, 1)), np.zeros((1, n))], [np.zeros((n, 1)), 2 * v[0] * M]]
            ),
        )
        lower = nestopt.Level(
            value=lambda x, y, c=c, e=e: float((c + x[0] * e) @ y),
            grad=lambda x, y, c=c, e=e: np.concatenate([[e @ y], c + x[0] * e]),
            hess=lambda x, y, e=e: np.block(
                [[np.zeros((1, 1)), e[None, :]], [e[:, None], np.zeros((n, n))]]
            ),
            size=n,
            constraints=[row],
        )
        problem = nestopt.Problem([_leader(n), lower])
        result = nestopt.best_response(problem, [np.zeros(1), np.full(n, 0.1)])
        w = np.linalg.solve(M, c)
        np.testing.assert_allclose(result.xs[1], -r * w / np.sqrt(c @ w), atol=1e-9)
        np.testing.assert_allclose(result.multipliers[2], [np.sqrt(c @ w) / (2 * r)], rtol=1e-9)


def test_unit_sphere_follower_started_at_its_centre():
    # At y = 0 the row's gradient vanishes (a maximum of its violation): not infeasible.
    c = np.array([1.0, 2.0, -0.5])
    row = nestopt.NonlinearConstraint(
        lambda x, y: y @ y,
        1.0,
        1.0,
        jac=lambda x, y: np.concatenate([[0.0], 2 * y])[None, :],
        hess=lambda x, y, v: np.diag(np.concatenate([[0.0], 2 * v[0] * np.ones(3)])),
    )
    lower = nestopt.Level(
        value=lambda x, y: float(c @ y),
        grad=lambda x, y: np.concatenate([[0.0], c]),
        hess=lambda x, y: np.zeros((4, 4)),
        size=3,
        constraints=[row],
    )
    result = nestopt.best_response(nestopt.Problem([_leader(3), lower]), [np.zeros(1), np.zeros(3)])
    np.testing.assert_allclose(result.xs[1], -c / np.linalg.norm(c), atol=1e-12)
