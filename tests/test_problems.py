"""Problem families: derivatives, known solutions, and the answers the solver reaches.

Each known solution is checked against a truth computed here independently of
the family's code: explicit linear algebra (`quad_reference`) on matrices
written out from the docstrings, hand-derived closed forms, or finite
differences of value functions. The problems of Giovannelli, Kent & Vicente
have their own file, test_gkv.py; here they only take part in the tests of
every family.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_array_on, relative_error

import nestopt
from nestopt.problems import (
    KnownProblem,
    data_poisoning,
    gkv_quadratic,
    gkv_quartic,
    quad_reference,
    stackelberg_market,
)


def small_poisoning(**kwargs):
    return data_poisoning(n_train=8, n_val=20, seed=3, **kwargs)


FAMILIES = {
    "gkv_quadratic": lambda: gkv_quadratic(d=4, seed=1),
    "gkv_quartic": gkv_quartic,
    "stackelberg_market": lambda: stackelberg_market(products=3, seed=2),
    "poisoning": small_poisoning,
    "poisoning_per_feature": lambda: small_poisoning(per_feature=True),
    "poisoning_bilevel": lambda: small_poisoning(attacker=False),
    "poisoning_bilevel_per_feature": lambda: small_poisoning(attacker=False, per_feature=True),
}
WITH_SOLUTION = ("gkv_quadratic", "gkv_quartic", "stackelberg_market")


def numpy_point(problem, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(size) for size in problem.sizes]


def on(xp, arrays):
    return [xp.asarray(np.asarray(a, dtype=np.float64)) for a in arrays]


# -- every family ----------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_family_is_a_known_problem_on_the_backend_in_force(name, xp):
    problem = FAMILIES[name]()
    assert isinstance(problem, KnownProblem)
    assert problem.description
    assert all(level.name for level in problem.levels)
    assert all(level.value is not None for level in problem.levels)
    for x, size in zip(problem.x0, problem.sizes):
        assert_array_on(x, xp, shape=(size,), dtype=xp.float64)
    if name in WITH_SOLUTION:
        for x, size in zip(problem.solution, problem.sizes):
            assert_array_on(x, xp, shape=(size,), dtype=xp.float64)
    else:
        assert problem.solution is None


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree_with_finite_differences(name, seed, xp):
    problem = FAMILIES[name]()
    report = nestopt.check_derivatives(problem, on(xp, numpy_point(problem, seed)), seed=seed)
    assert report.ok, report.summary
    for level, level_report in zip(problem.levels, report.levels):
        # Levels with nonzero third derivatives must bring their own hess_dir.
        assert (level_report.errors["hess_dir"] is None) == level.quadratic, report.summary


@pytest.mark.parametrize("name", WITH_SOLUTION)
def test_known_solution_is_a_fixed_point_of_the_lower_levels(name, xp):
    problem = FAMILIES[name]()
    start = [problem.solution[0], *problem.x0[1:]]
    if name == "gkv_quartic":  # start the lower levels on the branch z = x + y
        start = on(xp, [[-6 / 11], [0.0], [-6 / 11]])
    result = nestopt.best_response(problem, start, level_options={"tol": 1e-12})
    for got, expected in zip(result.xs, problem.solution):
        assert relative_error(got, expected) <= 1e-10
    # The solution is a stationary point of F_1: the hypergradient vanishes.
    assert float(np.max(np.abs(nestopt.to_numpy(result.hypergrad)))) <= 1e-10


@pytest.mark.parametrize("name", WITH_SOLUTION)
@pytest.mark.parametrize("curvature", ["exact", "first_order"])
def test_solve_reaches_the_known_solution(name, curvature, xp):
    problem = FAMILIES[name]()
    result = nestopt.solve(problem, problem.x0, curvature=curvature, options={"gtol": 1e-11})
    assert result.success, result.message
    for got, expected in zip(result.xs, problem.solution):
        # |x - x*| <= gtol / (smallest curvature of F_1): 7 and 11 (GKV), b/2 >= 1/4.
        assert float(np.max(np.abs(nestopt.to_numpy(got) - nestopt.to_numpy(expected)))) <= 1e-9


# -- Stackelberg market ----------------------------------------------------------------


def market_matrices(a, b, c):
    """Firm k's objective sum((b Q + c_k - a) q_k) as 1/2 w^T Q_k w + c_k^T w."""
    m = a.shape[0]
    B = np.diag(b)
    Qs, cs = [], []
    for k in range(3):
        Q = np.zeros((3 * m, 3 * m))
        for j in range(3):
            # d^2/dq_k dq_j of b Q q_k is b (j != k), 2 b (j == k).
            Q[k * m : (k + 1) * m, j * m : (j + 1) * m] += B
            Q[j * m : (j + 1) * m, k * m : (k + 1) * m] += B
        lin = np.zeros(3 * m)
        lin[k * m : (k + 1) * m] = c[k] - a
        Qs.append(Q)
        cs.append(lin)
    return Qs, cs


@pytest.mark.parametrize(("products", "seed"), [(1, 0), (5, 0), (7, 4)])
def test_market_equilibrium_matches_backward_induction(products, seed):
    problem = stackelberg_market(products=products, seed=seed, backend="numpy")
    a, b, c = problem.data["a"], problem.data["b"], problem.data["c"]
    assert np.all(a > c.max(axis=0)) and np.all(b > 0)
    Qs, cs = market_matrices(a, b, c)
    reference = quad_reference(Qs, cs, (products,) * 3)
    for got, expected in zip(problem.solution, reference["solution"]):
        assert relative_error(got, expected) <= 1e-12
        assert np.all(expected > 0)  # every firm sells in every market
    # The leader's reduced objective has curvature b / 2 per market.
    np.testing.assert_allclose(reference["hessian"], np.diag(b / 2), atol=1e-12)
    # Firm 1's profit at the equilibrium is the Stackelberg leader's (a - c_eff)^2 / (8 b) form:
    # with p = (a + c3 + 2 c2 - b q1) / 4, profit = (p - c1) q1.
    q1 = problem.solution[0]
    price = (a + c[2] + 2 * c[1] - b * q1) / 4
    assert float(problem.levels[0].value(*problem.solution)) == pytest.approx(
        -np.sum((price - c[0]) * q1)
    )


def test_market_value_is_minus_profit(xp):
    problem = stackelberg_market(products=4, seed=5)
    a, b, c = problem.data["a"], problem.data["b"], problem.data["c"]
    qs = [np.abs(q) for q in numpy_point(problem, seed=3, scale=2.0)]
    price = a - b * (qs[0] + qs[1] + qs[2])
    for k, level in enumerate(problem.levels):
        profit = np.sum((price - c[k]) * qs[k])
        value = float(nestopt.to_numpy(level.value(*on(xp, qs))))
        assert value == pytest.approx(-profit, rel=1e-13)


# -- data poisoning ------------------------------------------------------------------


def test_poisoning_split_and_standardization():
    problem = data_poisoning(n_train=40, n_val=100, seed=7, backend="numpy")
    data = problem.data
    assert data["X_train"].shape == (40, 10) and data["X_val"].shape == (100, 10)
    assert data["X_test"].shape == (442 - 140, 10) and data["y_test"].shape == (302,)
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data["X_train"].std(axis=0), 1.0, atol=1e-12)
    assert abs(data["y_train"].mean()) <= 1e-12 and abs(data["y_train"].std() - 1) <= 1e-12
    # The split is a partition of the 442 rows: recover it from the raw data.
    from sklearn.datasets import load_diabetes

    X, _ = load_diabetes(return_X_y=True)
    rows = np.concatenate([data["X_train"], data["X_val"], data["X_test"]])
    raw = rows * data["feature_scale"] + data["feature_mean"]
    assert sorted(map(tuple, np.round(raw, 10))) == sorted(map(tuple, np.round(X, 10)))
    assert problem.sizes == (1, 400, 10)
    assert data_poisoning(per_feature=True, backend="numpy").sizes == (10, 400, 10)
    assert data_poisoning(attacker=False, backend="numpy").sizes == (1, 10)


@pytest.mark.parametrize("per_feature", [False, True])
def test_poisoning_values_are_the_documented_formulas(per_feature, xp):
    problem = small_poisoning(per_feature=per_feature, penalty=0.7)
    d = problem.data
    lam, P, theta = numpy_point(problem, seed=4)
    n, p = d["X_train"].shape
    r = (d["X_train"] + P.reshape(n, p)) @ theta - d["y_train"]
    ridge = 0.5 * np.sum(np.exp(lam) * theta**2)
    expected = [
        np.sum((d["X_val"] @ theta - d["y_val"]) ** 2) / (2 * d["X_val"].shape[0]),
        -(r @ r) / (2 * n) + 0.35 * np.sum(P**2),
        (r @ r) / (2 * n) + ridge,
    ]
    for level, want in zip(problem.levels, expected):
        got = float(nestopt.to_numpy(level.value(*on(xp, [lam, P, theta]))))
        assert got == pytest.approx(want, rel=1e-12)


def ridge_fit(X, y, weights):
    n = X.shape[0]
    return np.linalg.solve(X.T @ X / n + np.diag(weights), X.T @ y / n)


def attacker_reduced_gradient(problem, lam, P, theta):
    """grad_P f_2 + (dtheta*/dP)^T grad_theta f_2, from the formulas of the Notes."""
    d = problem.data
    X, y = d["X_train"], d["y_train"]
    n, p = X.shape
    A = X + P.reshape(n, p)
    r = A @ theta - y
    weights = np.broadcast_to(np.exp(lam), (p,))
    H = A.T @ A / n + np.diag(weights)
    # d(grad_theta f_3)/dP_ij = (A_i. theta_j + r_i e_j) / n, row (i, j) of the (n p, p) block.
    cross = (A[:, None, :] * theta[None, :, None] + r[:, None, None] * np.eye(p)) / n
    J = -np.linalg.solve(H, cross.reshape(n * p, p).T)  # (p, n p)
    g_P = -(np.outer(r, theta) / n).ravel() + problem.data["penalty"] * P
    g_theta = -A.T @ r / n
    return g_P + J.T @ g_theta


@pytest.mark.parametrize("per_feature", [False, True])
def test_poisoning_best_response_is_stationary_for_both_lower_levels(per_feature, xp):
    problem = small_poisoning(per_feature=per_feature)
    lam = np.full(problem.sizes[0], -0.5)
    result = nestopt.best_response(
        problem,
        on(xp, [lam, np.zeros(problem.sizes[1]), np.zeros(10)]),
        level_options={"tol": 1e-12},
    )
    P, theta = (nestopt.to_numpy(x) for x in result.xs[1:])
    d = problem.data
    n = d["X_train"].shape[0]
    weights = np.broadcast_to(np.exp(lam), (10,))
    # The learner is the ridge fit on the poisoned features ...
    expected = ridge_fit(d["X_train"] + P.reshape(n, 10), d["y_train"], weights)
    assert relative_error(theta, expected) <= 1e-10
    # ... and the attack is stationary for the attacker's reduced objective, and not zero.
    assert np.max(np.abs(attacker_reduced_gradient(problem, lam, P, theta))) <= 1e-10
    assert np.max(np.abs(P)) >= 1e-3


def test_poisoning_bilevel_hypergradient_matches_closed_form_value_function(xp):
    problem = small_poisoning(attacker=False)
    d = problem.data

    def F1(lam):
        theta = ridge_fit(d["X_train"], d["y_train"], np.full(10, np.exp(lam)))
        r = d["X_val"] @ theta - d["y_val"]
        return r @ r / (2 * r.shape[0])

    lam, h = -0.3, 1e-4
    fd = (F1(lam - 2 * h) - 8 * F1(lam - h) + 8 * F1(lam + h) - F1(lam + 2 * h)) / (12 * h)
    grad = nestopt.hypergradient(problem, on(xp, [[lam], np.zeros(10)]))
    assert float(nestopt.to_numpy(grad)[0]) == pytest.approx(fd, rel=1e-8)


@pytest.mark.parametrize("curvature", ["exact", "first_order"])
def test_poisoning_trilevel_hypergradient_against_the_value_function(curvature):
    problem = small_poisoning()
    start = [np.array([-0.5]), np.zeros(problem.sizes[1]), np.zeros(10)]
    check = nestopt.check_hypergradient(problem, start, curvature=curvature)
    if curvature == "exact":
        assert check.rel_error <= 1e-7
    else:
        # The learner's response is nonlinear in (lam, P): dropping S_2 is visibly biased.
        assert check.rel_error >= 1e-4


def test_poisoning_solve_trilevel_and_bilevel_on_array_api_strict_agree_with_numpy():
    answers = {}
    for name in ("numpy", "array_api_strict"):
        with nestopt.backend(name):
            for attacker in (False, True):
                problem = small_poisoning(attacker=attacker)
                result = nestopt.solve(problem, problem.x0, options={"gtol": 1e-9})
                assert result.success, result.message
                answers[name, attacker] = nestopt.to_numpy(result.xs[-1])
    for attacker in (False, True):
        assert (
            relative_error(answers["array_api_strict", attacker], answers["numpy", attacker])
            <= 1e-8
        )
    # The attacker changes the learned model.
    assert relative_error(answers["numpy", True], answers["numpy", False]) >= 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_poisoning_default_penalty_keeps_the_attacker_strongly_convex(seed):
    """At the solved problem, the attacker's exact reduced Hessian (finite differences of
    the independent reduced gradient) has eigenvalues well above zero, as documented."""
    problem = data_poisoning(n_train=12, n_val=30, seed=seed, backend="numpy")
    result = nestopt.solve(problem, problem.x0)
    assert result.success, result.message
    lam, P, theta = (nestopt.to_numpy(x) for x in result.xs)
    # The attacker stops at a relative Newton step below tol = 1.5e-10 (|P| ~ 1); its
    # reduced Hessian has eigenvalues up to ~1e2, so its gradient is below ~2e-8.
    assert np.max(np.abs(attacker_reduced_gradient(problem, lam, P, theta))) <= 1e-7

    def reduced_gradient(P):
        d = problem.data
        n = d["X_train"].shape[0]
        theta = ridge_fit(
            d["X_train"] + P.reshape(n, 10), d["y_train"], np.full(10, np.exp(lam[0]))
        )
        return attacker_reduced_gradient(problem, lam, P, theta)

    h = 1e-6
    columns = [
        (reduced_gradient(P + h * e) - reduced_gradient(P - h * e)) / (2 * h)
        for e in np.eye(P.shape[0])
    ]
    H = np.array(columns)
    smallest = np.linalg.eigvalsh((H + H.T) / 2).min()
    penalty = problem.data["penalty"]
    assert 0.5 * penalty <= smallest <= penalty


@pytest.mark.parametrize("d", [True, (2, 0, 2), (2, 2)])
def test_quad_refuses_level_sizes_that_are_not_sizes(d):
    # A bool is an int to Python but no size: it is refused like the other bad sizes
    # (it used to escape as "'bool' object is not iterable").
    from nestopt.problems import quad

    with pytest.raises(ValueError, match="d must be a positive int or 3 positive sizes"):
        quad(3, d)
