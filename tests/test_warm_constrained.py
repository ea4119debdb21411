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
from nestopt._respond.constrained import solve as constrained_solve
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
        # Without the bounds' multipliers: the same primal part and row multipliers.
        part = np.asarray(factor.solve(xp.asarray(rhs), bound_multipliers=False))
        np.testing.assert_allclose(part, got[: d + r], rtol=1e-12, atol=1e-12)


def test_the_factor_tells_a_minimum_from_a_saddle_on_the_null_space():
    # A = diag(1, -1): indefinite, but the row y_2 = 0 (a bound) removes the bad direction.
    A = np.diag([1.0, -1.0])
    assert ActiveSetKKT(np, A, np.zeros((0, 2)), np.array([False, True])).minimum
    assert not ActiveSetKKT(np, A, np.zeros((0, 2)), np.array([True, False])).minimum
    # The same through a general row: x_2 = 0 keeps it a minimum, x_1 = 0 does not.
    assert ActiveSetKKT(np, A, np.array([[0.0, 1.0]]), np.zeros(2, dtype=bool)).minimum
    assert not ActiveSetKKT(np, A, np.array([[1.0, 0.0]]), np.zeros(2, dtype=bool)).minimum


def _answers(problem, x, starts):
    out = []
    for y0 in starts:
        r = nestopt.best_response(problem, [x, y0])
        out.append((r.xs[1], r.multipliers[2], r.jacobians[2], r.hypergrad, r.level_nit[1]))
    return out


STARTS = {"zeros": 0.0, "ones": 1.0, "minus_ones": -1.0}


@pytest.mark.parametrize("start", list(STARTS))
def test_active_set_starts_give_the_interior_points_answer(start, monkeypatch):
    """From zero, from every variable at a bound (most of them wrong) and from the solution,
    the active-set start (no interior-point iteration) ends where the interior point does."""
    problem = box_qp(30, backend="numpy")
    x = np.asarray(problem.x0[0])
    y0 = np.full(30, STARTS[start])
    solution = nestopt.best_response(problem, [x, np.zeros(30)]).xs[1]
    fast = _answers(problem, x, [y0, np.asarray(solution)])
    monkeypatch.setattr(constrained_solve, "_warm_start", lambda *args, **kwargs: None)
    slow = _answers(problem, x, [y0, np.asarray(solution)])
    for got, reference in zip(fast, slow):
        assert got[4] == 0 and reference[4] > 0  # no interior point, and the interior point
        np.testing.assert_allclose(got[0], reference[0], rtol=0, atol=1e-14)
        np.testing.assert_allclose(got[1], reference[1], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[2], reference[2], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[3], reference[3], rtol=1e-10, atol=1e-13)
    assert int(np.sum(np.abs(solution) == 1.0)) > 5  # bounds are active: the test means it


def test_an_active_set_that_does_not_settle_falls_back_to_the_interior_point(monkeypatch):
    problem = box_qp(30, backend="numpy")
    x = np.asarray(problem.x0[0])
    reference = nestopt.best_response(problem, [x, np.zeros(30)])
    # No correction allowed: from zero (every bound inactive) the set cannot settle.
    monkeypatch.setattr(constrained_solve, "WARM_CHANGES", 0)
    monkeypatch.setattr(constrained_solve, "WARM_CHANGES_QP", 0)
    fallback = nestopt.best_response(problem, [x, np.zeros(30)])
    assert fallback.level_nit[1] > 0
    np.testing.assert_allclose(fallback.xs[1], reference.xs[1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(fallback.hypergrad, reference.hypergrad, rtol=1e-10, atol=1e-13)


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


def test_no_internal_linear_algebra_error_escapes_a_published_problem():
    """FloudasEtal2013 from its published start once leaked the engine's internal
    FactorizationError (a Newton solve that gave NaN in the predictor-corrector)."""
    from nestopt.problems import bolib

    problem = bolib("FloudasEtal2013", backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = nestopt.solve(problem, problem.x0, options={"gtol": 1e-10})
    assert isinstance(result.status, nestopt.Status)


@pytest.mark.parametrize("x", [-1.71, -0.8, -0.13])
def test_a_singular_active_set_is_never_accepted_as_a_solution(x):
    """LamparielloSagratella2017Ex23's follower from y = 0: the rows at a bound there (the
    cubic y1^3 - y2 <= 0 and y2 >= 0) have dependent gradients, so the active set's Newton
    system is singular at the start. The warm start once returned that start, not stationary
    (both rows called weakly active), as the solution; the response is y = (x, 0)."""
    from nestopt.problems import bolib

    problem = bolib("LamparielloSagratella2017Ex23", backend="numpy")
    result = nestopt.best_response(problem, [np.array([x]), np.zeros(2)])
    np.testing.assert_allclose(result.xs[1], [x, 0.0], atol=1e-12)
    assert result.active[2] == ("bounds[1]",)
    np.testing.assert_allclose(result.multipliers[2], [0.0, 0.0, -2.0], atol=1e-12)


@pytest.mark.parametrize("C", [0.01, 0.0126])
def test_a_degenerate_vertex_with_a_unique_response_is_solved(C):
    """Iris SVM dual at small C: all 60 a_i sit at a bound and y'a = 0 holds as well, 61
    active rows on 60 variables (LICQ fails). The response is still unique: the vertex those
    rows fix, moving with C, optimal while some multipliers have every sign strictly right.
    Its Jacobian and hypergradient are checked against differences of the solved responses
    and of the value function (piecewise linear in log C here), and the multipliers by the
    KKT conditions computed here."""
    pytest.importorskip("sklearn")
    pytest.importorskip("scipy")
    from nestopt.problems import svm_dual

    problem = svm_dual("iris", backend="numpy")
    n = problem.data["y"].size
    lc = np.log(C)

    def solve(t):
        return nestopt.best_response(problem, [np.array([t]), np.zeros(n)])

    result = solve(lc)
    assert any("degenerate vertex" in note for note in result.notes)
    h = 1e-6
    plus, minus = solve(lc + h), solve(lc - h)
    G_fd = (np.asarray(plus.xs[1]) - np.asarray(minus.xs[1])) / (2 * h)
    np.testing.assert_allclose(result.jacobians[2][:, 0], G_fd, rtol=0, atol=1e-8 * C)
    np.testing.assert_allclose(result.hypergrad, [(plus.fun - minus.fun) / (2 * h)], rtol=1e-6)
    # Stationarity and strict signs of the multipliers returned (one choice of many).
    a, y, Q = np.asarray(result.xs[1]), problem.data["y"], problem.data["Q"]
    lam = np.asarray(result.multipliers[2])
    equality, upper, lower = lam[0], lam[1 : 1 + n], lam[1 + n :]
    gradient = Q @ a - 1.0
    np.testing.assert_allclose(gradient + equality * y + upper + lower, 0.0, atol=1e-12)
    at_upper = a >= C * (1 - 1e-12)
    assert np.all(upper[at_upper] > 0) and np.all(lower[~at_upper] < 0)
