"""The constrained engine on convex QPs: SVM duals, infeasible, unbounded, stiff and mixed scales.

Every answer is checked by conditions computed here, without the engine: the
natural residual of the SVM dual's KKT conditions, closed forms, and Farkas
inequalities.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_cases import QuadraticProgram

from nestopt._respond.constrained.engine import solve_nlp
from nestopt._respond.constrained.nlp import EngineStatus, WarmStart

sklearn = pytest.importorskip("sklearn.datasets")

C_VALUES = np.logspace(-2, 2, 41)


def _standardized(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _dataset(name):
    if name == "breast_cancer":
        X, y = sklearn.load_breast_cancer(return_X_y=True)
        pick = np.random.default_rng(0).choice(y.size, 60, replace=False)
        X, y = X[pick], y[pick]
    elif name == "iris":
        X, y = sklearn.load_iris(return_X_y=True)
        keep = y > 0  # versicolor against virginica: not separable
        X, y = X[keep], y[keep] - 1
    else:
        X, y = sklearn.load_wine(return_X_y=True)
        keep = y < 2
        X, y = X[keep], y[keep]
    return _standardized(X), np.where(y == 1, 1.0, -1.0)


def _svm_dual(xp, X, labels, C, convex=True):
    n = labels.size
    Q = (labels[:, None] * labels[None, :]) * (X @ X.T)
    return Q, QuadraticProgram(
        xp, Q, -np.ones(n), labels[None, :], [0.0], [0.0], np.zeros(n), np.full(n, C), convex
    )


def _svm_kkt_residuals(Q, labels, C, a, nu):
    """Natural residual of the box, the equality row's violation: independent of the engine."""
    grad = Q @ a - 1.0 + nu * labels
    natural = np.max(np.abs(a - np.clip(a - grad, 0.0, C)))
    return natural, abs(labels @ a), float(np.min(a)), float(np.max(a) - C)


@pytest.mark.parametrize("name", ["breast_cancer", "iris", "wine"])
def test_svm_duals_over_41_values_of_C_meet_their_kkt_conditions(xp, name):
    X, labels = _dataset(name)
    # Every C on NumPy (LDL^T path); a sample on the strict namespace (condensed Cholesky).
    values = C_VALUES if xp.__name__ == "numpy" else C_VALUES[::8]
    for C in values:
        Q, problem = _svm_dual(xp, X, labels, C)
        result = solve_nlp(problem, xp.zeros(labels.size, dtype=xp.float64))
        assert result.status is EngineStatus.SOLVED, (name, C, result.status)
        a, nu = np.asarray(result.x), float(np.asarray(result.y)[0])
        natural, row, lowest, highest = _svm_kkt_residuals(Q, labels, C, a, nu)
        scale = max(1.0, float(np.max(np.abs(Q))) * C)
        assert natural <= 1e-9 * scale, (name, C, natural)
        assert row <= 1e-10 * max(1.0, C * labels.size), (name, C, row)
        assert lowest >= 0.0 and highest <= 0.0
        # The bound multipliers close the stationarity of the Lagrangian f + nu y'a + z'a.
        z = np.asarray(result.z)
        assert np.max(np.abs(Q @ a - 1.0 + nu * labels + z)) <= 1e-9 * scale
        assert np.all(z[a <= 0.0] <= 0.0) and np.all(z[a >= C] >= 0.0)


def test_svm_duals_also_solved_by_the_monotone_filter_method(xp):
    X, labels = _dataset("breast_cancer")
    for C in C_VALUES[:: 4 if xp.__name__ == "numpy" else 20]:
        Q, problem = _svm_dual(xp, X, labels, C, convex=False)
        result = solve_nlp(problem, xp.zeros(labels.size, dtype=xp.float64))
        assert result.status is EngineStatus.SOLVED, (C, result.status)
        a, nu = np.asarray(result.x), float(np.asarray(result.y)[0])
        natural, row, _, _ = _svm_kkt_residuals(Q, labels, C, a, nu)
        assert natural <= 1e-9 * max(1.0, float(np.max(np.abs(Q))) * C)
        assert row <= 1e-10 * max(1.0, C * labels.size)


def test_warm_start_near_a_solution_takes_few_iterations(xp):
    X, labels = _dataset("breast_cancer")
    Q, problem = _svm_dual(xp, X, labels, 1.0)
    cold = solve_nlp(problem, xp.zeros(labels.size, dtype=xp.float64))
    Q2, nearby = _svm_dual(xp, X, labels, 1.001)
    warm = WarmStart(cold.x, cold.y, cold.z, cold.delta_w)
    again = solve_nlp(nearby, cold.x, warm=warm)
    fresh = solve_nlp(nearby, xp.zeros(labels.size, dtype=xp.float64))
    assert again.status is EngineStatus.SOLVED and fresh.status is EngineStatus.SOLVED
    assert again.iterations <= max(fresh.iterations // 2, 3), (again.iterations, fresh.iterations)
    a, nu = np.asarray(again.x), float(np.asarray(again.y)[0])
    natural, row, _, _ = _svm_kkt_residuals(Q2, labels, 1.001, a, nu)
    assert natural <= 1e-9 * max(1.0, float(np.max(np.abs(Q2))))


def _farkas_margin(A, lower, upper, xl, xu, y):
    """min over the box of (A'y).x less the largest y.(A x) the rows allow: > 0 proves
    that no x satisfies lower <= A x <= upper inside the box."""
    w = A.T @ y
    least = np.sum(np.where(w > 0, w * xl, np.where(w < 0, w * xu, 0.0)))
    most = np.sum(np.where(y > 0, y * upper, np.where(y < 0, y * lower, 0.0)))
    return least - most


@pytest.mark.parametrize("convex", [True, False])
def test_equality_against_bounds_is_infeasible_with_a_farkas_certificate(xp, convex):
    A = np.array([[1.0, 1.0, 1.0]])
    problem = QuadraticProgram(
        xp, np.eye(3), np.zeros(3), A, [5.0], [5.0], np.zeros(3), np.ones(3), convex
    )
    result = solve_nlp(problem, xp.zeros(3, dtype=xp.float64))
    assert result.status is EngineStatus.INFEASIBLE
    y = np.asarray(result.certificate)
    assert _farkas_margin(A, np.array([5.0]), np.array([5.0]), np.zeros(3), np.ones(3), y) > 0.5


@pytest.mark.parametrize("convex", [True, False])
def test_unbounded_objective_is_reported_with_a_descent_direction(xp, convex):
    # min -x1 + x2^2/2  s.t.  x1 - x2 >= 0, x1 >= 0: x1 runs off to infinity.
    Q, q = np.diag([0.0, 1.0]), np.array([-1.0, 0.0])
    problem = QuadraticProgram(
        xp, Q, q, np.array([[1.0, -1.0]]), [0.0], [np.inf],
        np.array([0.0, -np.inf]), np.full(2, np.inf), convex,
    )  # fmt: skip
    result = solve_nlp(problem, xp.zeros(2, dtype=xp.float64))
    assert result.status is EngineStatus.UNBOUNDED
    d = np.asarray(result.certificate)
    # A recession direction: f decreases along it and it stays feasible.
    assert q @ d < 0 and abs(d @ Q @ d) <= 1e-8 and d[0] - d[1] >= -1e-12 and d[0] >= 0


@pytest.mark.parametrize("curvature", [1e7, 1e12])
@pytest.mark.parametrize("convex", [True, False])
def test_stiff_bounds_are_solved_with_exact_multipliers_and_not_weakly_active(
    xp, curvature, convex
):
    # min (k x1^2 + x2^2)/2 over 1 <= x <= 5: both lower bounds hold, multipliers (-k, -1).
    problem = QuadraticProgram(
        xp, np.diag([curvature, 1.0]), np.zeros(2), np.zeros((0, 2)), [], [],
        np.ones(2), np.full(2, 5.0), convex,
    )  # fmt: skip
    result = solve_nlp(problem, xp.asarray([3.0, 3.0], dtype=xp.float64))
    assert result.status is EngineStatus.SOLVED
    assert np.max(np.abs(np.asarray(result.x) - 1.0)) <= 1e-12
    z = np.asarray(result.z)
    assert abs(z[0] + curvature) <= 1e-9 * curvature and abs(z[1] + 1.0) <= 1e-9
    assert list(result.active_bounds) == [True, True]
    assert not np.any(result.weak_bounds)


@pytest.mark.parametrize("convex", [True, False])
def test_mixed_units_are_not_flagged_weakly_active(xp, convex):
    # Solution (1e6, 1e-4) with both x >= 0 bounds inactive.
    Q = np.diag([1e-12, 1e8])
    q = -np.array([1e6 * 1e-12, 1e-4 * 1e8])
    problem = QuadraticProgram(
        xp, Q, q, np.zeros((0, 2)), [], [], np.zeros(2), np.full(2, np.inf), convex
    )
    result = solve_nlp(problem, xp.asarray([1.0, 1.0], dtype=xp.float64))
    assert result.status is EngineStatus.SOLVED
    x = np.asarray(result.x)
    assert abs(x[0] - 1e6) <= 1e-9 * 1e6 and abs(x[1] - 1e-4) <= 1e-9 * 1e-4
    assert not np.any(result.weak_bounds) and not np.any(result.active_bounds)


def test_a_weakly_active_bound_is_flagged(xp):
    # min (x1^2 + (x2 - 1)^2)/2, x >= 0: x1 = 0 with a zero multiplier.
    problem = QuadraticProgram(
        xp, np.eye(2), np.array([0.0, -1.0]), np.zeros((0, 2)), [], [],
        np.zeros(2), np.full(2, np.inf), False,
    )  # fmt: skip
    result = solve_nlp(problem, xp.asarray([1.0, 1.0], dtype=xp.float64))
    assert result.status is EngineStatus.SOLVED
    assert list(result.weak_bounds) == [True, False]
    assert np.max(np.abs(np.asarray(result.x) - np.array([0.0, 1.0]))) <= 1e-12
