"""Warm starts of constrained levels, and the active-set KKT factor they are vetted with.

A constrained level solved near an earlier solution (the user's start at a
solution, the next outer iteration) polishes the guessed active set first
and skips the interior point; whatever it returns must equal a cold solve
(point, multipliers, Jacobian), and a wrong guess must fall back to the
interior point, not end in a wrong answer.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nestopt
from nestopt._linalg.active_set import ActiveSetKKT
from nestopt.problems import box_qp


def _full_kkt(A, J_R, fixed):
    """K with the bounds as rows of the identity (the matrix ActiveSetKKT never forms)."""
    E = np.eye(A.shape[0])[fixed]
    J = np.vstack([J_R, E])
    a = J.shape[0]
    return np.block([[A, J.T], [J, np.zeros((a, a))]])


def _inertia_is_a_minimum(K, d, a):
    eig = np.linalg.eigvalsh(K)
    return int(np.sum(eig > 0)) == d and int(np.sum(eig < 0)) == a


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
@pytest.mark.parametrize(
    ("r", "n_fixed", "shift"),
    [(0, 0, 1.0), (0, 3, 1.0), (2, 0, 1.0), (2, 3, 1.0), (2, 3, -0.3), (0, 3, -0.3), (3, 5, 1.0)],
)
def test_active_set_factor_solves_and_vets_like_the_full_kkt_matrix(backend, r, n_fixed, shift):
    if backend == "array_api_strict":
        xp = pytest.importorskip("array_api_strict")
    else:
        xp = np
    rng = np.random.default_rng(r + 10 * n_fixed)
    d = 8
    M = rng.standard_normal((d, d))
    # shift < 0: A indefinite; the rows and bounds may or may not make it a minimum.
    A = M @ M.T / d + shift * np.eye(d)
    A[0, 0] -= 2.0 if shift < 0 else 0.0
    J_R = rng.standard_normal((r, d))
    fixed = np.zeros(d, dtype=bool)
    fixed[rng.choice(d, n_fixed, replace=False)] = True
    K = _full_kkt(A, J_R, fixed)
    factor = ActiveSetKKT(xp, xp.asarray(A), xp.asarray(J_R), fixed)
    assert factor.minimum == _inertia_is_a_minimum(K, d, r + n_fixed)
    for shape in ((K.shape[0],), (K.shape[0], 3)):
        rhs = rng.standard_normal(shape)
        got = np.asarray(factor.solve(xp.asarray(rhs)))
        np.testing.assert_allclose(got, np.linalg.solve(K, rhs), rtol=1e-10, atol=1e-10)


def test_the_factor_tells_a_minimum_from_a_saddle_on_the_null_space():
    # A = diag(1, -1): indefinite, but the row y_2 = 0 (a bound) removes the bad direction.
    A = np.diag([1.0, -1.0])
    assert ActiveSetKKT(np, A, np.zeros((0, 2)), np.array([False, True])).minimum
    assert not ActiveSetKKT(np, A, np.zeros((0, 2)), np.array([True, False])).minimum
    # The same through a general row: x_2 = 0 keeps it a minimum, x_1 = 0 does not.
    assert ActiveSetKKT(np, A, np.array([[0.0, 1.0]]), np.zeros(2, dtype=bool)).minimum
    assert not ActiveSetKKT(np, A, np.array([[1.0, 0.0]]), np.zeros(2, dtype=bool)).minimum


def _cold_and_warm(problem, x, y_start):
    cold = nestopt.best_response(problem, [x, y_start])
    warm = nestopt.best_response(problem, [x, np.asarray(cold.xs[1])])
    return cold, warm


def test_a_start_at_the_solution_skips_the_interior_point_and_changes_nothing():
    problem = box_qp(30, backend="numpy")
    x = np.asarray(problem.x0[0])
    cold, warm = _cold_and_warm(problem, x, np.zeros(30))
    assert cold.level_nit[1] > 0  # the interior point ran
    assert warm.level_nit[1] == 0  # the polish settled it alone
    assert warm.active[2] == cold.active[2] and len(cold.active[2]) > 0
    np.testing.assert_allclose(warm.xs[1], cold.xs[1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(warm.multipliers[2], cold.multipliers[2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(warm.jacobians[2], cold.jacobians[2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(warm.hypergrad, cold.hypergrad, rtol=1e-10, atol=1e-13)


def test_a_wrong_guess_falls_back_to_the_interior_point():
    problem = box_qp(30, backend="numpy")
    x = np.asarray(problem.x0[0])
    cold = nestopt.best_response(problem, [x, np.zeros(30)])
    # Every variable at its upper bound: about two thirds of the guessed rows are wrong,
    # more changes than a warm start may make.
    wrong = nestopt.best_response(problem, [x, np.ones(30)])
    assert wrong.level_nit[1] > 0
    np.testing.assert_allclose(wrong.xs[1], cold.xs[1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(wrong.hypergrad, cold.hypergrad, rtol=1e-10, atol=1e-13)


def test_outer_iterations_reuse_the_last_active_set():
    problem = box_qp(20, backend="numpy")
    x0 = [np.asarray(a) for a in problem.x0]
    one_cold = nestopt.best_response(problem, x0).level_nit[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        result = nestopt.solve(problem, x0, options={"gtol": 1e-9})
    assert result.success, result.message
    solves, iterations = result.level_solves[1], result.level_nit[1]
    assert solves >= 5
    # Most follower solves are warm (no interior-point iteration): far fewer iterations
    # than a cold solve each would take.
    assert iterations <= 0.05 * solves * one_cold
    # The answer is the follower's true response at the leader's solution.
    check = nestopt.best_response(problem, [result.xs[0], np.zeros(20)])
    np.testing.assert_allclose(result.xs[1], check.xs[1], rtol=0, atol=1e-12)
