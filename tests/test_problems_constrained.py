"""The constrained benchmark families `svm_dual` and `box_qp`: derivatives and followers.

The followers nestopt returns are checked against references computed here
without nestopt's solver: SciPy's SLSQP (SVM dual) or L-BFGS-B (box QP)
finds the active set, then one exact linear solve on the free variables
(with the SVM's equality row) gives the solution to rounding, and its KKT
conditions (signs of the multipliers included) are verified before it is
used. (Three of these cases failed with the interior point that issue 20's
engine replaced: breast_cancer at C = 1, wine at C = 0.1 and 100.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import fd_gradient, relative_error

import nestopt
from nestopt.problems import KnownProblem, box_qp, svm_dual, svm_dual_kkt_residual

pytest.importorskip("scipy")
pytest.importorskip("sklearn")


# -- independent references ---------------------------------------------------------


def svm_reference(Q, y, C):
    """The SVM dual's minimizer at ``C``: SLSQP's active set, then the exact free-block solve.

    Returns ``a``, the intercept ``b`` (the equality's multiplier: ``Q a -
    1 + b y = 0`` on the free entries) and the KKT residual.
    """
    from scipy.optimize import minimize

    n = y.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(
            lambda a: (0.5 * a @ Q @ a - a.sum(), Q @ a - 1.0),
            np.zeros(n),
            jac=True,
            method="SLSQP",
            bounds=[(0.0, C)] * n,
            constraints=[{"type": "eq", "fun": lambda a: y @ a, "jac": lambda a: y}],
            options={"ftol": 1e-15, "maxiter": 1000},
        )
    a = np.clip(res.x, 0.0, C)
    at_c = a > C * (1.0 - 1e-6)
    free = (a > 1e-6 * C) & ~at_c
    # [Q_FF  y_F] [a_F]   [1 - Q_FU C 1]
    # [y_F'  0  ] [b  ] = [-y_U' C 1   ]
    k = int(free.sum())
    if k == 0:  # a vertex: n + 1 rows active, the intercept is any b in an interval
        a = np.where(at_c, C, 0.0)
        return a, None, svm_dual_kkt_residual(Q, y, C, a)
    K = np.zeros((k + 1, k + 1))
    K[:k, :k] = Q[np.ix_(free, free)]
    K[:k, k] = K[k, :k] = y[free]
    rhs = np.concatenate([1.0 - C * Q[np.ix_(free, at_c)].sum(axis=1), [-C * y[at_c].sum()]])
    sol = np.linalg.solve(K, rhs)
    a = np.where(at_c, C, 0.0)
    a[free] = sol[:k]
    return a, sol[k], svm_dual_kkt_residual(Q, y, C, a)


def box_qp_reference(problem, x, y0=None):
    """The box QP follower's minimizer at ``x``: L-BFGS-B's active set, then a free-block solve."""
    from scipy.optimize import minimize

    data = problem.data
    Q = data["Q0"] + np.diag(np.exp(x))
    q = x + data["c"]
    lb, ub = data["lb"], data["ub"]
    res = minimize(
        lambda y: (0.5 * y @ Q @ y + q @ y, Q @ y + q),
        np.zeros_like(x) if y0 is None else y0,
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lb, ub, strict=True)),
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000},
    )
    y = np.clip(res.x, lb, ub)
    at_lb, at_ub = y <= lb + 1e-7, y >= ub - 1e-7
    free = ~(at_lb | at_ub)
    y = np.where(at_lb, lb, np.where(at_ub, ub, y))
    fixed = ~free
    y[free] = np.linalg.solve(Q[np.ix_(free, free)], -q[free] - Q[np.ix_(free, fixed)] @ y[fixed])
    g = Q @ y + q  # multipliers: g >= 0 at lb, <= 0 at ub, 0 where free
    assert np.all(y >= lb) and np.all(y <= ub)
    assert np.max(np.abs(g[free]), initial=0.0) <= 1e-10 * max(1.0, np.max(np.abs(q)))
    assert np.all(g[at_lb] > 0) and np.all(g[at_ub] < 0), "reference active set is wrong"
    return y


# -- the families build and their derivatives are right ------------------------------


SVM_DATA = ("breast_cancer", "iris", "wine")


@pytest.mark.parametrize("param", ["log_C", "C"])
@pytest.mark.parametrize("data", SVM_DATA)
def test_svm_dual_builds_with_exact_derivatives(data, param):
    problem = svm_dual(data, param=param, backend="numpy")
    assert isinstance(problem, KnownProblem)
    assert problem.sizes == (1, 60)
    X, y, Q = problem.data["X"], problem.data["y"], problem.data["Q"]
    np.testing.assert_allclose(Q, (y[:, None] * X) @ (y[:, None] * X).T, atol=1e-12)
    # standardized with the training statistics; both classes present, not balanced
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    assert 0 < np.sum(y > 0) < 60 and np.sum(y > 0) != 30
    rng = np.random.default_rng(4)
    t = np.array([0.3]) if param == "log_C" else np.array([1.5])
    report = nestopt.check_derivatives(problem, [t, rng.uniform(0.0, 1.0, 60)])
    assert report.ok, report.summary


def test_svm_dual_objectives_are_the_documented_formulas():
    problem = svm_dual("wine", backend="numpy", ridge=0.5)
    d = problem.data
    a = np.random.default_rng(0).uniform(0.0, 1.0, 60)
    t = np.array([0.0])
    f = 0.5 * a @ d["Q"] @ a - a.sum() + 0.25 * a @ a
    w = d["X"].T @ (a * d["y"])
    F = 0.5 * np.mean((1.0 - d["y_val"] * (d["X_val"] @ w)) ** 2)
    assert relative_error(problem.levels[1].value(t, a), f) < 1e-13
    assert relative_error(problem.levels[0].value(t, a), F) < 1e-13
    assert np.all(np.diff(d["C_grid"]) > 0) and d["C_grid"][[0, -1]].tolist() == [0.01, 100.0]


@pytest.mark.parametrize("bounds", [True, False])
def test_box_qp_builds_with_exact_derivatives(bounds):
    problem = box_qp(12, seed=1, bounds=bounds, backend="numpy")
    assert problem.sizes == (12, 12)
    assert (problem.levels[1].bounds is not None) == bounds
    rng = np.random.default_rng(2)
    report = nestopt.check_derivatives(
        problem, [0.3 * rng.standard_normal(12), rng.uniform(-1, 1, 12)]
    )
    assert report.ok, report.summary


def test_families_build_on_array_api_strict():
    pytest.importorskip("array_api_strict")
    import array_api_strict as xp

    for problem in (
        svm_dual("iris", backend="array_api_strict"),
        box_qp(5, backend="array_api_strict"),
    ):
        xs = [xp.asarray(np.asarray(v)) for v in problem.x0]
        report = nestopt.check_derivatives(problem, xs)
        assert report.ok, report.summary


def test_box_qp_has_active_and_free_bounds_at_its_start():
    problem = box_qp(100, backend="numpy")
    assert 10 <= problem.data["active_at_x0"] <= 60


# -- the followers nestopt returns match the references ----------------------------

SVM_CASES = [
    pytest.param(data, C, id=f"{data}-C{C:g}")
    for data in SVM_DATA
    for C in (0.01, 0.1, 1.0, 10.0, 100.0)
    if (data, C) != ("iris", 0.01)  # a vertex, see the next test
]


@pytest.mark.parametrize(("data", "C"), SVM_CASES)
def test_svm_dual_follower_matches_scipy(data, C):
    problem = svm_dual(data, backend="numpy")
    Q, y = problem.data["Q"], problem.data["y"]
    a_ref, _, residual = svm_reference(Q, y, C)
    assert residual <= 1e-10, f"the reference itself is not a KKT point ({residual:.1e})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        result = nestopt.best_response(problem, [np.array([np.log(C)]), np.zeros(60)])
    a = np.asarray(result.xs[1])
    assert svm_dual_kkt_residual(Q, y, C, a) <= 1e-8
    # the minimizer is unique here (positive definite reduced Hessian): same point
    assert np.max(np.abs(a - a_ref)) <= 1e-8 * C


# (d, seed) of the box QP; today's engine solves these.
@pytest.mark.parametrize(("d", "seed"), [(10, 0), (20, 1)])
def test_box_qp_follower_and_hypergradient_match_scipy(d, seed):
    problem = box_qp(d, seed=seed, backend="numpy")
    x = 0.5 * np.random.default_rng(seed + 10).standard_normal(d)
    result = nestopt.best_response(problem, [x, np.zeros(d)])
    y_ref = box_qp_reference(problem, x)
    assert np.max(np.abs(np.asarray(result.xs[1]) - y_ref)) <= 1e-10
    assert 0 < int(np.sum(np.abs(y_ref) == 1.0)) < d  # some bounds active, some free

    def F(x):
        y = box_qp_reference(problem, x, y_ref)  # started at the solution at x: faster
        return 0.5 * np.sum((y - problem.data["y_target"]) ** 2) + 0.5 * problem.data["mu"] * x @ x

    # the active set is locally constant at this x, so F is smooth and differences are exact
    g_fd = fd_gradient(F, x, h=1e-4)
    assert relative_error(result.hypergrad, g_fd) <= 1e-7


def test_box_qp_without_bounds_is_the_closed_form():
    problem = box_qp(8, seed=3, bounds=False, backend="numpy")
    x = np.full(8, 0.2)
    result = nestopt.best_response(problem, [x, np.zeros(8)])
    Q = problem.data["Q0"] + np.diag(np.exp(x))
    expected = -np.linalg.solve(Q, x + problem.data["c"])
    assert relative_error(result.xs[1], expected) <= 1e-12


def test_svm_dual_at_a_vertex_is_refused_or_solved_exactly():
    # iris at C = 0.01: every a_i sits at 0 or C and y^T a = 0 still holds, so 61 rows are
    # active in 60 variables (LICQ fails; the intercept is not unique, the response is).
    problem = svm_dual("iris", backend="numpy")
    Q, y, C = problem.data["Q"], problem.data["y"], 0.01
    a_ref, b_ref, residual = svm_reference(Q, y, C)
    assert b_ref is None and residual <= 1e-10
    try:
        with warnings.catch_warnings():
            # at a vertex some bound may be weakly active: that is reported, and allowed here
            warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
            result = nestopt.best_response(problem, [np.array([np.log(C)]), np.zeros(60)])
    except nestopt.ConstraintQualificationError as exc:
        assert "level 2" in str(exc)
    else:
        assert np.max(np.abs(np.asarray(result.xs[1]) - a_ref)) <= 1e-8 * C


@pytest.mark.parametrize("C", [3.16227766, 3.98107171])
def test_svm_dual_with_a_set_of_minimizers_is_refused_by_name(C):
    """iris's linear-kernel Q has rank 4 on 60 duals: at these C the optimal face is not a
    point (shown here without nestopt: a direction along which the objective, the equality
    row and the box all stay optimal), so no best-response Jacobian exists. nestopt refuses,
    names the level and says how to make the response unique (Clarabel returns one of the
    minimizers)."""
    problem = svm_dual("iris", backend="numpy")
    Q, y = problem.data["Q"], problem.data["y"]
    a = _interior_svm_minimizer(Q, y, C)
    assert svm_dual_kkt_residual(Q, y, C, a) <= 1e-8
    free = (a > 1e-6 * C) & (a < C * (1.0 - 1e-6))
    # Directions on the free entries that Q and the equality row do not see.
    block = np.vstack([Q[np.ix_(free, free)], y[free][None, :]])
    _, s, vt = np.linalg.svd(block)
    assert np.sum(s > 1e-10 * s[0]) < free.sum()
    d = np.zeros_like(a)
    d[free] = vt[-1]
    room = np.min(np.where(d[free] > 0, (C - a[free]) / d[free], a[free] / -d[free]))
    other = a + 0.5 * room * d
    objective = lambda v: 0.5 * v @ Q @ v - v.sum()  # noqa: E731
    assert np.max(np.abs(other - a)) > 1e-3 * C  # a different point ...
    assert abs(objective(other) - objective(a)) <= 1e-12 * max(1.0, abs(objective(a)))
    assert svm_dual_kkt_residual(Q, y, C, other) <= 1e-8  # ... just as optimal
    with pytest.raises(nestopt.NotPositiveDefiniteError) as info:
        nestopt.best_response(problem, [np.array([np.log(C)]), np.zeros(y.size)])
    assert info.value.level == 2
    assert "ridge" in str(info.value) and "not locally unique" in str(info.value)


def _interior_svm_minimizer(Q, y, C):
    """A minimizer of the SVM dual from SciPy's trust-constr (an interior method: it ends
    inside the optimal face, where the face's directions are free to move)."""
    from scipy.optimize import Bounds, LinearConstraint, minimize

    n = y.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(
            lambda a: 0.5 * a @ Q @ a - a.sum(),
            np.full(n, C / 2),
            jac=lambda a: Q @ a - 1.0,
            hess=lambda a: Q,
            method="trust-constr",
            bounds=Bounds(np.zeros(n), np.full(n, C)),
            constraints=[LinearConstraint(y[None, :], 0.0, 0.0)],
            options={"gtol": 1e-13, "xtol": 1e-14, "maxiter": 5000},
        )
    return np.clip(res.x, 0.0, C)
