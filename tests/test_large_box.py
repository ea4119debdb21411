"""Bounds on large levels (issue 24): matrix-free (``hvp``) and sparse box-constrained levels.

Each is checked against a second method: the same level with a dense Hessian
(solved by the dense constrained engine, an independent implementation),
SciPy's L-BFGS-B with a free-block CG, or central differences of the value
function.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from helpers import max_follower, solve_quietly

import nestopt
from nestopt.problems import nnls

sparse = pytest.importorskip("scipy.sparse")

X = np.linspace(-0.5, 0.5, 5)


def _respond(problem, x=X):
    p = problem.sizes[1]
    return nestopt.best_response(problem, [np.asarray(x, dtype=float), np.zeros(p)])


@pytest.mark.parametrize("hessian", ["hvp", "sparse"])
def test_nnls_follower_matches_the_dense_path(hessian):
    dense = _respond(nnls(60, hessian="dense"))
    large = _respond(nnls(60, hessian=hessian))
    y = np.asarray(dense.xs[1])
    assert 10 <= np.sum(y == 0.0) <= 50  # some bounds active, some not
    np.testing.assert_allclose(np.asarray(large.xs[1]), y, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(large.xs[1]) == 0.0, y == 0.0)
    np.testing.assert_allclose(large.jacobians[2], dense.jacobians[2], rtol=0, atol=1e-8)
    np.testing.assert_allclose(large.hypergrad, dense.hypergrad, rtol=1e-8)
    # the bounds' multipliers (DESIGN's sign: <= 0 at a lower bound) as the dense engine's
    np.testing.assert_allclose(large.multipliers[2], dense.multipliers[2], rtol=0, atol=1e-8)
    assert np.all(np.asarray(large.multipliers[2]) <= 0.0)


def test_nnls_hypergradient_matches_differences_of_the_value_function():
    problem = nnls(200, hessian="hvp")
    result = _respond(problem)
    fd = _value_differences(problem, 1e-5)
    np.testing.assert_allclose(result.hypergrad, fd, rtol=1e-6, atol=1e-8)


def _value_differences(problem, h):
    """Central differences of the value function F(x, y*(x)) at X, one per leader entry."""
    fd = []
    for i in range(X.size):
        e = np.zeros(X.size)
        e[i] = h
        fd.append((_respond(problem, X + e).fun - _respond(problem, X - e).fun) / (2 * h))
    return fd


def _scipy_reference(problem, x):
    """L-BFGS-B on the follower, then one CG solve on its free block: ``(y, grad F)``."""
    import scipy.sparse.linalg as sl
    from scipy.optimize import minimize

    d = problem.data
    M, C, rho = d["M"], d["C"], d["ridge"]
    b = d["b0"] + C @ x
    p = M.shape[1]

    def fun(y):
        r = M @ y - b
        return 0.5 * r @ r + 0.5 * rho * y @ y, M.T @ r + rho * y

    res = minimize(
        fun, np.zeros(p), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * p,
        options={"ftol": 1e-16, "gtol": 1e-12, "maxiter": 50_000, "maxfun": 50_000},
    )  # fmt: skip
    y = res.x
    free = ~((y <= 0.0) & (fun(y)[1] > 0.0))
    mask = free.astype(float)
    A = sl.LinearOperator((p, p), matvec=lambda v: mask * fun_h(M, rho, mask * v))
    w, info = sl.cg(A, mask * (y - d["y_target"]), rtol=1e-12, maxiter=20_000)
    assert info == 0
    return y, d["mu"] * x + C.T @ (M @ w)


def fun_h(M, rho, v):
    return M.T @ (M @ v) + rho * v


@pytest.mark.parametrize("hessian", ["hvp", "sparse"])
def test_a_larger_nnls_follower_matches_scipy(hessian):
    problem = nnls(3000, hessian=hessian)
    result = _respond(problem)
    y_ref, g_ref = _scipy_reference(problem, X)
    y = np.asarray(result.xs[1])
    assert np.max(np.abs(y - y_ref)) <= 1e-6 * max(1.0, np.max(np.abs(y_ref)))
    assert np.sum(y == 0.0) >= 1000
    np.testing.assert_allclose(result.hypergrad, g_ref, rtol=1e-6)


def test_solve_over_a_matrix_free_box_follower_ends_where_the_dense_one_does():
    runs = {}
    for hessian in ("dense", "hvp"):
        problem = nnls(80, hessian=hessian)
        runs[hessian] = nestopt.solve(problem, [np.zeros(5), np.zeros(80)])
        assert runs[hessian].success, runs[hessian].message
    np.testing.assert_allclose(runs["hvp"].x, runs["dense"].x, rtol=0, atol=1e-7)
    np.testing.assert_allclose(runs["hvp"].fun, runs["dense"].fun, rtol=1e-10)


# -- trilevel: a box-constrained matrix-free level at the bottom and in the middle ------------


def _random_quadratic(sizes, seed, bounds_level, form):
    """Quadratic levels ``f_k = w^T Q_k w / 2 + c_k^T w`` (``w`` every variable) with
    level ``bounds_level`` boxed to ``[0, 1]`` and given by ``form`` ('hvp', 'sparse' or
    'dense')."""
    rng = np.random.default_rng(seed)
    D = sum(sizes)
    levels = []
    for k, size in enumerate(sizes, start=1):
        B = rng.standard_normal((D, D)) / np.sqrt(D)
        Q = B @ B.T + 2.0 * np.eye(D)
        c = 2.0 * rng.standard_normal(D)

        def split(w, sizes=sizes):
            return tuple(np.split(w, np.cumsum(sizes)[:-1]))

        def value(*xs, Q=Q, c=c):
            w = np.concatenate(xs)
            return 0.5 * w @ Q @ w + c @ w

        def grad(*xs, Q=Q, c=c, split=split):
            return split(Q @ np.concatenate(xs) + c)

        kwargs = dict(value=value, grad=grad, size=size, quadratic=True)
        if k == bounds_level:
            kwargs["bounds"] = nestopt.Bounds(np.zeros(size), np.ones(size))
            if form == "hvp":
                kwargs["hvp"] = lambda *args, Q=Q: Q @ args[-1]
            elif form == "sparse":
                Q_sparse = sparse.csr_matrix(Q)
                kwargs["hess"] = lambda *xs, Q=Q_sparse: Q
            else:
                kwargs["hess"] = lambda *xs, Q=Q: Q
        else:
            kwargs["hess"] = lambda *xs, Q=Q: Q
        levels.append(nestopt.Level(**kwargs))
    return nestopt.Problem(levels)


@pytest.mark.parametrize("bounds_level", [2, 3])
@pytest.mark.parametrize("curvature", ["first_order", "exact"])
@pytest.mark.parametrize("form", ["hvp", "sparse"])
def test_trilevel_with_a_large_box_level_matches_the_dense_one(bounds_level, curvature, form):
    sizes = (2, 6, 8)
    start = [np.array([0.3, -0.4]), np.full(6, 0.5), np.full(8, 0.5)]
    results = {}
    for kind in ("dense", form):
        problem = _random_quadratic(sizes, 7, bounds_level, kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
            results[kind] = nestopt.best_response(problem, start, curvature=curvature)
    dense, large = results["dense"], results[form]
    boxed = np.asarray(dense.xs[bounds_level - 1])
    assert np.any((boxed == 0.0) | (boxed == 1.0)), "the test needs an active bound"
    for k in range(1, 3):
        np.testing.assert_allclose(
            np.asarray(large.xs[k]), np.asarray(dense.xs[k]), rtol=0, atol=1e-9
        )
    np.testing.assert_allclose(large.hypergrad, dense.hypergrad, rtol=1e-7, atol=1e-9)
    for k in (2, 3):
        np.testing.assert_allclose(large.jacobians[k], dense.jacobians[k], rtol=0, atol=1e-7)


# -- what a matrix-free box level refuses or reports -------------------------------------


def _saddle_follower(bounds):
    """f = (y1^2 - y2^2)/2 - x y1 on a box: at x = 0 the centre y = 0 is a saddle."""
    K = np.array([[0.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    return nestopt.Level(
        value=lambda x, y: 0.5 * (y[0] ** 2 - y[1] ** 2) - x[0] * y[0],
        grad=lambda x, y: (-y[:1], np.array([y[0] - x[0], -y[1]])),
        hvp=lambda x, y, v: K @ v,
        size=2,
        bounds=bounds,
    )


def test_a_matrix_free_box_level_at_a_saddle_raises_as_a_dense_one_does():
    leader = nestopt.Level(
        value=lambda x, y: float(y @ y), grad=lambda x, y: (np.zeros(1), 2 * y),
        hess=lambda x, y: np.diag([0.0, 2.0, 2.0]), size=1,
    )  # fmt: skip
    follower = _saddle_follower(nestopt.Bounds(np.full(2, -1.0), np.ones(2)))
    problem = nestopt.Problem([leader, follower])
    with pytest.raises(nestopt.NotPositiveDefiniteError) as info:
        nestopt.best_response(problem, [np.zeros(1), np.zeros(2)])
    assert info.value.level == 2
    assert "matrix-free" in str(info.value)


def test_a_weakly_active_bound_of_a_matrix_free_level_is_reported():
    # y = max(x, 0) with x_1 = 0: y_1 sits at its bound with a zero multiplier.
    eye = np.eye(2)
    follower = max_follower(np.zeros(2), hessian="hvp")
    leader = nestopt.Level(
        value=lambda x, y: float(y.sum()), grad=lambda x, y: (np.zeros(2), np.ones(2)),
        hess=lambda x, y: np.zeros((4, 4)), size=2,
    )  # fmt: skip
    problem = nestopt.Problem([leader, follower])
    with pytest.warns(nestopt.DegeneracyWarning, match=r"bounds\[0\]"):
        result = nestopt.best_response(problem, [np.array([0.0, 0.7]), np.zeros(2)])
    np.testing.assert_allclose(result.xs[1], [0.0, 0.7], atol=1e-12)
    # the piece where the weak bound is released: y_1 = x_1 moves with x_1
    np.testing.assert_allclose(result.jacobians[2], eye, atol=1e-9)


def test_a_matrix_free_level_with_nonlinear_constraints_is_refused_when_it_is_built():
    K = np.eye(4)
    ball = nestopt.NonlinearConstraint(
        fun=lambda x, y: np.array([y @ y]), lb=-np.inf, ub=1.0,
        jac=lambda x, y: np.r_[0 * x, 2 * y][None, :],
        hess=lambda x, y, v: v[0] * np.diag([0.0, 0.0, 2.0, 2.0]),
    )  # fmt: skip
    with pytest.raises(TypeError, match="nonlinear constraints need its Hessian as hess"):
        nestopt.Level(
            value=lambda x, y: 0.5 * y @ y, grad=lambda x, y: (0 * x, y),
            hvp=lambda x, y, v: K @ v, size=2, constraints=[ball],
        )  # fmt: skip


def test_a_matrix_free_box_level_on_every_backend(xp):
    # y = clip(A^{-1}(b + x), 0, 1)-like closed form for a diagonal follower: the response
    # is y_i = clip((x_i + b_i) / a_i, 0, 1), its Jacobian diag(1/a_i) on the free entries.
    a = xp.asarray([1.0, 2.0, 4.0, 0.5], dtype=xp.float64)
    b = xp.asarray([0.3, -2.0, 1.0, 2.0], dtype=xp.float64)

    def hvp(x, y, v):
        vx, vy = v[:4], v[4:]
        return xp.concat([xp.zeros_like(vx) - vy, a * vy - vx])

    follower = nestopt.Level(
        value=lambda x, y: 0.5 * xp.sum(a * y * y) - (x + b) @ y,
        grad=lambda x, y: (-y, a * y - x - b),
        hvp=hvp,
        size=4,
        bounds=nestopt.Bounds(xp.zeros(4, dtype=xp.float64), xp.ones(4, dtype=xp.float64)),
    )
    leader = nestopt.Level(
        value=lambda x, y: 0.5 * (y @ y),
        grad=lambda x, y: (xp.zeros_like(x), y),
        hvp=lambda x, y, v: xp.concat([xp.zeros_like(x), v[4:]]),
        size=4,
    )
    x = xp.asarray([0.1, 0.2, 0.3, 0.4], dtype=xp.float64)
    result = nestopt.best_response(
        nestopt.Problem([leader, follower]), [x, xp.zeros(4, dtype=xp.float64)]
    )
    y = np.clip((np.asarray(x) + np.asarray(b)) / np.asarray(a), 0.0, 1.0)
    np.testing.assert_allclose(np.asarray(result.xs[1]), y, atol=1e-12)
    free = (y > 0) & (y < 1)
    np.testing.assert_allclose(
        np.asarray(result.jacobians[2]), np.diag(np.where(free, 1.0 / np.asarray(a), 0.0)),
        atol=1e-10,
    )  # fmt: skip
    np.testing.assert_allclose(
        np.asarray(result.hypergrad), np.where(free, y / np.asarray(a), 0.0), atol=1e-10
    )


# -- kinks of a matrix-free box level (DESIGN 9, "Kinks") ------------------------------------


def _kinked(k, leader_value, leader_grad, leader_hess):
    """Follower y = max(x, 0) in R^k given by hvp only; the leader's callables take (x, y)."""
    follower = max_follower(np.zeros(k), hessian="hvp")
    leader = nestopt.Level(value=leader_value, grad=leader_grad, hess=leader_hess, size=k)
    return nestopt.Problem([leader, follower])


@pytest.mark.parametrize("k", [1, 2])
def test_a_strict_kink_minimum_of_a_matrix_free_box_level_is_certified(k):
    # F = sum(-x/2 + y): slopes -1/2 left of each kink and +1/2 right: a strict minimum at 0
    # (the pieces' cones and one-sided gradients span the space: a first-order certificate).
    problem = _kinked(
        k,
        lambda x, y: float(np.sum(-0.5 * x + y)),
        lambda x, y: (np.full(k, -0.5), np.ones(k)),
        lambda x, y: np.zeros((2 * k, 2 * k)),
    )
    result = solve_quietly(problem, -np.ones(k))
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert f"kink certified: {k} weakly active row" in result.message
    np.testing.assert_allclose(result.x, np.zeros(k), atol=1e-8)


def test_a_kink_minimum_with_a_smooth_direction_needs_the_second_order_test():
    # Follower y = (max(x1, 1), x2) (bound y1 >= 1, y2 free); F = -x1 + 2 y1 + (y2 - 0.3)^2
    # + x2^2 / 2 falls with slope -1 up to x1 = 1 and rises with slope +1 after: a kink in
    # x1, while x2 is smooth with zero slope at x2 = 0.2 on both pieces. First order leaves
    # x2 critical; the pieces' curvature along it (3) certifies the minimum.
    follower = max_follower([1.0, -np.inf], hessian="hvp")
    leader = nestopt.Level(
        value=lambda x, y: -x[0] + 2.0 * y[0] + (y[1] - 0.3) ** 2 + 0.5 * x[1] ** 2,
        grad=lambda x, y: (np.array([-1.0, x[1]]), np.array([2.0, 2.0 * (y[1] - 0.3)])),
        hess=lambda x, y: np.diag([0.0, 1.0, 0.0, 2.0]),
        size=2,
    )
    result = solve_quietly(nestopt.Problem([leader, follower]), [2.0, 0.0])
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert "kink certified: 1 weakly active row, 2 pieces checked" in result.message
    np.testing.assert_allclose(result.x, [1.0, 0.2], atol=1e-6)  # to the run's gtol


def test_a_matrix_free_kink_that_is_a_maximum_along_x2_is_not_certified():
    # As above with -x2^2 (F = ... - 2 x2^2 + (y2 - 0.3)^2 curves down along x2): not a
    # minimum, never certified.
    follower = max_follower([1.0, -np.inf], hessian="hvp")
    leader = nestopt.Level(
        value=lambda x, y: -x[0] + 2.0 * y[0] + (y[1] - 0.3) ** 2 - 2.0 * x[1] ** 2,
        grad=lambda x, y: (np.array([-1.0, -4.0 * x[1]]), np.array([2.0, 2.0 * (y[1] - 0.3)])),
        hess=lambda x, y: np.diag([0.0, -4.0, 0.0, 2.0]),
        size=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = solve_quietly(nestopt.Problem([leader, follower]), [2.0, -0.2])
    assert not (result.success and "kink certified" in result.message), result.message


def _quadratic_follower(Q, c, d1, form, **constrained):
    """The follower ``f_2 = z^T Q z / 2 + c^T z`` (``z = (x, y)``, ``x`` of size ``d1``) with
    its Hessian as products (``form='hvp'``) or dense, and ``constrained`` (bounds, rows)."""
    kwargs = {"hvp": lambda x, y, v: Q @ v} if form == "hvp" else {"hess": lambda x, y: Q}
    return nestopt.Level(
        value=lambda x, y: 0.5 * np.r_[x, y] @ Q @ np.r_[x, y] + c @ np.r_[x, y],
        grad=lambda x, y: tuple(np.split(Q @ np.r_[x, y] + c, [d1])),
        size=Q.shape[0] - d1,
        **constrained,
        **kwargs,
    )


@pytest.mark.parametrize("seed", range(12))  # 300 seeds agreed when written
def test_random_box_followers_matrix_free_and_dense_agree(seed):
    # Random strongly convex quadratic followers on random boxes (some bounds two-sided,
    # some one-sided, some infinite), leaders at random points: the matrix-free path and
    # the dense engine must return the same response, Jacobian and hypergradient.
    rng = np.random.default_rng(seed)
    d1, d2 = 3, int(rng.integers(4, 12))
    B = rng.standard_normal((d1 + d2, d1 + d2))
    Q = B @ B.T / (d1 + d2) + np.diag(np.r_[np.zeros(d1), rng.uniform(0.05, 2.0, d2)])
    c = 2.0 * rng.standard_normal(d1 + d2)
    lb = np.where(rng.random(d2) < 0.8, rng.uniform(-1.0, 0.0, d2), -np.inf)
    ub = np.where(rng.random(d2) < 0.6, lb + rng.uniform(0.2, 1.5, d2), np.inf)
    ub = np.where(np.isfinite(ub), ub, np.inf)
    target = rng.standard_normal(d2)

    def build(form):
        bounds = nestopt.Bounds(np.where(np.isfinite(lb), lb, -np.inf), ub)
        follower = _quadratic_follower(Q, c, d1, form, bounds=bounds)
        leader = nestopt.Level(
            value=lambda x, y: 0.5 * (y - target) @ (y - target) + 0.1 * x @ x,
            grad=lambda x, y: (0.2 * x, y - target),
            hess=lambda x, y: np.diag(np.r_[np.full(d1, 0.2), np.ones(d2)]),
            size=d1,
        )
        return nestopt.Problem([leader, follower])

    x = rng.standard_normal(d1)
    start = np.clip(np.zeros(d2), np.where(np.isfinite(lb), lb, -1e300), ub)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        dense = nestopt.best_response(build("dense"), [x, start])
        large = nestopt.best_response(build("hvp"), [x, start])
    np.testing.assert_allclose(large.xs[1], dense.xs[1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(large.jacobians[2], dense.jacobians[2], rtol=0, atol=1e-7)
    np.testing.assert_allclose(large.hypergrad, dense.hypergrad, rtol=1e-7, atol=1e-9)


# -- linear rows on large levels (their multipliers by Newton on the Schur complement) -------


def _with_rows(hessian, budget, p=60):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 1.5, p)
    rows = [
        # a budget a^T y <= budget, and 0.3 x_1 + sum(y) = 1 (moving with the leader)
        nestopt.LinearConstraint(np.r_[np.zeros(5), a][None, :], -np.inf, budget),
        nestopt.LinearConstraint(np.r_[0.3, np.zeros(4), np.ones(p)][None, :], 1.0, 1.0),
    ]
    problem = nnls(p, hessian=hessian)
    follower = dataclasses.replace(problem.levels[1], constraints=rows)
    return nestopt.Problem([problem.levels[0], follower]), a


@pytest.mark.parametrize("hessian", ["hvp", "sparse"])
@pytest.mark.parametrize("budget", [3.0, 0.75, 0.65])
def test_linear_rows_on_a_large_level_match_the_dense_engine(hessian, budget):
    # budget 3: the inequality inactive; 0.75 and 0.65: active with both multipliers large
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        dense = _respond(_with_rows("dense", budget)[0])
        large = _respond(_with_rows(hessian, budget)[0])
    y, a = np.asarray(dense.xs[1]), _with_rows("dense", budget)[1]
    assert (a @ y < budget - 1e-9) == (budget == 3.0)  # the budget row active or not
    np.testing.assert_allclose(large.xs[1], y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(large.multipliers[2], dense.multipliers[2], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(large.jacobians[2], dense.jacobians[2], rtol=0, atol=1e-10)
    np.testing.assert_allclose(large.hypergrad, dense.hypergrad, rtol=1e-10, atol=1e-10)
    assert large.active[2] == dense.active[2]


def test_linear_rows_on_a_large_level_hypergradient_matches_differences():
    problem, _ = _with_rows("hvp", 0.7, p=40)
    result = _respond(problem)
    np.testing.assert_allclose(result.hypergrad, _value_differences(problem, 1e-6), rtol=1e-6,
                               atol=1e-7)  # fmt: skip


def _rows_trilevel(form, level):
    """_random_quadratic's trilevel with a box on ``level`` and, on it, the row
    sum(x_level) + 0.5 x_1[0] <= 1.5 (and, at the bottom, x_2[0] - x_3[0] = 0.1)."""
    sizes = (2, 6, 8)
    problem = _random_quadratic(sizes, 7, level, form)
    D = sum(sizes)
    start = sum(sizes[: level - 1])
    row = np.zeros(D)
    row[start : start + sizes[level - 1]] = 1.0
    row[0] = 0.5
    rows = [nestopt.LinearConstraint(row[None, :], -np.inf, 1.5)]
    if level == 3:
        coupled = np.zeros(D)
        coupled[2], coupled[8] = 1.0, -1.0
        rows.append(nestopt.LinearConstraint(coupled[None, :], 0.1, 0.1))
    levels = list(problem.levels)
    levels[level - 1] = dataclasses.replace(levels[level - 1], constraints=rows)
    return nestopt.Problem(levels)


@pytest.mark.parametrize("level", [2, 3])
@pytest.mark.parametrize("curvature", ["first_order", "exact"])
@pytest.mark.parametrize("form", ["hvp", "sparse"])
def test_trilevel_with_rows_on_a_large_level_matches_the_dense_one(level, curvature, form):
    start = [np.array([0.3, -0.4]), np.full(6, 0.5), np.full(8, 0.5)]
    results = {}
    for kind in ("dense", form):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
            results[kind] = nestopt.best_response(
                _rows_trilevel(kind, level), start, curvature=curvature
            )
    dense, large = results["dense"], results[form]
    assert any(name.startswith("linear") for name in dense.active[level]), dense.active
    for k in range(1, 3):
        np.testing.assert_allclose(large.xs[k], dense.xs[k], rtol=0, atol=1e-9)
    np.testing.assert_allclose(large.hypergrad, dense.hypergrad, rtol=1e-7, atol=1e-9)
    for k in (2, 3):
        np.testing.assert_allclose(large.jacobians[k], dense.jacobians[k], rtol=0, atol=1e-7)


def test_rows_on_a_large_level_that_involve_a_lower_level_are_refused_by_name():
    problem = _random_quadratic((2, 6, 8), 7, 2, "hvp")
    row = np.zeros(16)
    row[2], row[8] = 1.0, 1.0  # x_2[0] + x_3[0] <= 1: a row of level 2 on level 3's variable
    levels = list(problem.levels)
    levels[1] = dataclasses.replace(
        levels[1], constraints=[nestopt.LinearConstraint(row[None, :], -np.inf, 1.0)]
    )
    start = [np.array([0.3, -0.4]), np.full(6, 0.5), np.full(8, 0.5)]
    with pytest.raises(nestopt.OracleError, match="variables of levels below") as info:
        nestopt.best_response(nestopt.Problem(levels), start)
    assert info.value.level == 2


@pytest.mark.parametrize("seed", range(12))  # 800 seeds: 798 agreed, 1 refused, 1 both
def test_random_followers_with_rows_matrix_free_and_dense_agree(seed):
    # Random strongly convex quadratic followers with a box and two random rows (one
    # inequality, one two-sided) moving with the leader: the matrix-free path and the dense
    # engine return the same response, multipliers, Jacobian and hypergradient.
    rng = np.random.default_rng(100 + seed)
    d1, d2 = 2, int(rng.integers(4, 10))
    D = d1 + d2
    B = rng.standard_normal((D, D))
    Q = B @ B.T / D + np.diag(np.r_[np.zeros(d1), rng.uniform(0.1, 2.0, d2)])
    c = 2.0 * rng.standard_normal(D)
    R = rng.standard_normal((2, D))
    rows = [
        nestopt.LinearConstraint(R[:1], -np.inf, 0.3),
        nestopt.LinearConstraint(R[1:], -0.5, 0.5),
    ]
    bounds = nestopt.Bounds(np.full(d2, -1.0), np.full(d2, 1.0))
    target = rng.standard_normal(d2)

    def build(form):
        follower = _quadratic_follower(Q, c, d1, form, bounds=bounds, constraints=rows)
        leader = nestopt.Level(
            value=lambda x, y: 0.5 * (y - target) @ (y - target),
            grad=lambda x, y: (np.zeros(d1), y - target),
            hess=lambda x, y: np.diag(np.r_[np.zeros(d1), np.ones(d2)]),
            size=d1,
        )
        return nestopt.Problem([leader, follower])

    x = 0.3 * rng.standard_normal(d1)
    results = {}
    for form in ("dense", "hvp"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
                results[form] = nestopt.best_response(build(form), [x, np.zeros(d2)])
        except nestopt.NestoptError as exc:  # infeasible rows, say: both must say so
            results[form] = type(exc)
    dense, large = results["dense"], results["hvp"]
    if isinstance(dense, type):  # the dense engine refused (infeasible rows, say)
        assert isinstance(large, type), (dense, large)  # never an answer where it has none
        return
    if large is nestopt.ConvergenceError:
        # The matrix-free active-set method may cycle where the QP is no M-matrix (1 of 800
        # random seeds when written, none of these 12); it then says so, never wrongly.
        return
    assert not isinstance(large, type), large
    np.testing.assert_allclose(large.xs[1], dense.xs[1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(large.multipliers[2], dense.multipliers[2], rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(large.jacobians[2], dense.jacobians[2], rtol=0, atol=1e-7)
    np.testing.assert_allclose(large.hypergrad, dense.hypergrad, rtol=1e-7, atol=1e-9)


@pytest.mark.slow  # about 10 s: the size
def test_an_nnls_follower_with_100000_variables_matches_scipy():
    # At p = 10^5 SciPy's L-BFGS-B stops at a natural residual near 1e-5, so the follower is
    # checked by its own KKT residual (computed here, without nestopt) and the hypergradient
    # against L-BFGS-B's solution plus one CG on its free variables (agreeing to about the
    # reference's accuracy).
    problem = nnls(100_000, hessian="hvp")
    g = nestopt.hypergradient(problem, [X, np.zeros(100_000)])
    result = nestopt.best_response(problem, [X, np.zeros(100_000)])
    y = np.asarray(result.xs[1])
    g_y = problem.levels[1].grad(X, y)[1]
    assert np.max(np.abs(y - np.maximum(y - g_y, 0.0))) <= 1e-10
    assert np.sum(y == 0.0) >= 40_000
    _, g_ref = _scipy_reference(problem, X)
    np.testing.assert_allclose(g, g_ref, rtol=1e-5)
    np.testing.assert_allclose(result.hypergrad, g, rtol=1e-12)
