"""Problem families: derivatives, known solutions, and the answers the solver reaches.

Each known solution is checked against a truth computed here independently of
the family's code: explicit linear algebra (`quad_reference`) on matrices
written out from the docstrings, hand-derived closed forms, or finite
differences of value functions.
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
        # |x - x*| <= gtol / (smallest curvature of F_1): 1/3 (GKV), 11/9, b/2 >= 1/4.
        assert float(np.max(np.abs(nestopt.to_numpy(got) - nestopt.to_numpy(expected)))) <= 1e-9


# -- GKV quadratic -----------------------------------------------------------------


def gkv_matrices_from_docstring(h_x, h_y, h_z):
    """The levels of the Notes as dense matrices, written out term by term."""
    d = h_x.shape[0]
    I, Z = np.eye(d), np.zeros((d, d))
    # q = 1/2|x|^2 + 2|y|^2 + 1/2|z|^2 + x.y + x.z + y.z + h.w
    Q1 = np.block([[I, I, I], [I, 4 * I, I], [I, I, I]])
    # f_2 = q - 1/2|x|^2 - h_x.x - x.z
    Q2 = np.block([[Z, I, Z], [I, 4 * I, I], [Z, I, I]])
    # f_3 = 1/2|z|^2 + z.(x + y) + h_z.z
    Q3 = np.block([[Z, Z, I], [Z, Z, I], [I, I, I]])
    zero = np.zeros(d)
    cs = [np.concatenate(c) for c in ([h_x, h_y, h_z], [zero, h_y, h_z], [zero, zero, h_z])]
    return [Q1, Q2, Q3], cs


@pytest.mark.parametrize(("d", "seed"), [(1, 0), (5, 3), (50, 0)])
def test_gkv_quadratic_solution_matches_explicit_linear_algebra(d, seed):
    problem = gkv_quadratic(d=d, seed=seed, backend="numpy")
    h = problem.data
    assert all(np.all((h[k] >= 0) & (h[k] <= 10)) for k in ("h_x", "h_y", "h_z"))
    Qs, cs = gkv_matrices_from_docstring(h["h_x"], h["h_y"], h["h_z"])
    reference = quad_reference(Qs, cs, (d, d, d))
    for got, expected in zip(problem.solution, reference["solution"]):
        assert relative_error(got, expected) <= 1e-12
    # F_1 is strongly convex with Hessian I / 3, and its optimal value is as documented.
    np.testing.assert_allclose(reference["hessian"], np.eye(d) / 3, atol=1e-12)
    w_star = np.concatenate(reference["solution"])
    h_x, h_y, h_z = h["h_x"], h["h_y"], h["h_z"]
    documented = -np.sum(9 * h_x**2 - 18 * h_x * h_z + h_y**2 - 2 * h_y * h_z + 13 * h_z**2) / 6
    assert 0.5 * w_star @ Qs[0] @ w_star + cs[0] @ w_star == pytest.approx(documented, rel=1e-12)
    # Its callables are those matrices: value at a random point.
    w = np.random.default_rng(seed).standard_normal(3 * d)
    parts = np.split(w, 3)
    for level, Q, c in zip(problem.levels, Qs, cs):
        assert abs(float(level.value(*parts)) - (0.5 * w @ Q @ w + c @ w)) <= 1e-10 * (
            1 + abs(0.5 * w @ Q @ w)
        )


def test_gkv_quadratic_hypergradient_is_the_closed_form_gradient(xp):
    problem = gkv_quadratic(d=6, seed=2)
    h = problem.data
    reference = quad_reference(*gkv_matrices_from_docstring(h["h_x"], h["h_y"], h["h_z"]), (6,) * 3)
    x1 = np.linspace(-2.0, 3.0, 6)
    grad = nestopt.hypergradient(problem, on(xp, [x1, np.zeros(6), np.zeros(6)]))
    expected = reference["hessian"] @ x1 + reference["grad_at_zero"]
    assert relative_error(grad, expected) <= 1e-10


# -- GKV quartic -------------------------------------------------------------------


def test_gkv_quartic_start_and_solution_values():
    problem = gkv_quartic(backend="numpy")
    x0 = [float(v[0]) for v in problem.x0]
    assert x0 == [-0.4, -0.2, -0.6] and x0[2] == pytest.approx(x0[0] + x0[1])
    x, y, z = (float(v[0]) for v in problem.solution)
    assert (x, y, z) == pytest.approx((-6 / 11, 2 / 11, -4 / 11), abs=1e-15)
    assert z == pytest.approx(x + y)  # on the branch
    f3 = problem.levels[2].value
    # z = 0 and z = x + y are minimizers (value 0), z = (x + y) / 2 a maximum.
    a, b = np.array([0.3]), np.array([-0.9])
    s = a[0] + b[0]
    for zz in (0.0, s):
        assert float(f3(a, b, np.array([zz]))) <= 1e-30
    mid = float(f3(a, b, np.array([s / 2])))
    assert mid == pytest.approx(0.5 * (s / 2) ** 4)
    assert mid > float(f3(a, b, np.array([s / 2 + 1e-3])))


@pytest.mark.parametrize("x1", [-0.4, -6 / 11, -0.9, 0.5])
def test_gkv_quartic_best_response_stays_on_its_branch(x1, xp):
    """Started on z = x + y (away from the optimum of y), the responses are y = -x/3, z = 2x/3."""
    problem = gkv_quartic()
    y0 = 0.1 if x1 > 0 else -0.2
    start = on(xp, [[x1], [y0], [x1 + y0]])
    result = nestopt.best_response(problem, start, level_options={"tol": 1e-12})
    y, z = (float(nestopt.to_numpy(v)[0]) for v in result.xs[1:])
    assert y == pytest.approx(-x1 / 3, abs=1e-10)
    assert z == pytest.approx(2 * x1 / 3, abs=1e-10)
    # On the branch F_1(x) = 11 x^2 / 18 + 2 x / 3 exactly.
    grad = float(nestopt.to_numpy(result.hypergrad)[0])
    assert grad == pytest.approx(11 * x1 / 9 + 2 / 3, abs=1e-9)
    # dz/dx_1 along the branch is 2/3; dy/dx_1 is -1/3.
    assert float(nestopt.to_numpy(result.sensitivity[2])[0, 0]) == pytest.approx(-1 / 3)
    assert float(nestopt.to_numpy(result.sensitivity[3])[0, 0]) == pytest.approx(2 / 3)


def test_gkv_quartic_other_branch_is_a_different_response(xp):
    """Started near z = 0 the lower level keeps that branch: then y = 0 and z = 0."""
    problem = gkv_quartic()
    result = nestopt.best_response(
        problem, on(xp, [[-0.4], [-0.2], [0.05]]), level_options={"tol": 1e-12}
    )
    y, z = (float(nestopt.to_numpy(v)[0]) for v in result.xs[1:])
    assert abs(y) <= 1e-10 and abs(z) <= 1e-10


def test_gkv_quartic_solve_reaches_x_star_from_the_given_start(xp):
    problem = gkv_quartic()
    result = nestopt.solve(problem, problem.x0, curvature="exact")
    assert result.success, result.message
    x, y, z = (float(nestopt.to_numpy(v)[0]) for v in result.xs)
    assert abs(x + 6 / 11) <= 1e-6
    assert abs(y - 2 / 11) <= 1e-6 and abs(z + 4 / 11) <= 1e-6


def test_gkv_quartic_hypergradient_against_the_value_function():
    problem = gkv_quartic(backend="numpy")
    check = nestopt.check_hypergradient(
        problem, [np.array([-0.3]), np.array([0.0]), np.array([-0.3])]
    )
    assert check.rel_error <= 1e-8


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
