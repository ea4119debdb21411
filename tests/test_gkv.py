"""The trilevel problems of Giovannelli, Kent & Vicente (GdKent/TSG, tsg/functions.py).

Every truth here is computed in plain NumPy from the formulas of the original
classes ``Quadratic`` and ``Quartic``, written out again below: the levels'
values, the best responses derived by hand (and checked to be stationary by
finite differences), value functions ``F_1`` built from them, and explicit
linear algebra (`quad_reference`) on matrices assembled term by term.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_array_on, relative_error

import nestopt
from nestopt.problems import gkv_quadratic, gkv_quartic, quad_reference


def on(xp, arrays):
    return [xp.asarray(np.asarray(a, dtype=np.float64)) for a in arrays]


def central(fun, x, h):
    """Central differences of a scalar function of a vector, one coordinate at a time."""
    grad = np.empty_like(x)
    for i in range(x.shape[0]):
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return grad


def floats(arrays):
    return [float(nestopt.to_numpy(a)[0]) for a in arrays]


# -- the quadratic ----------------------------------------------------------------------


def quadratic_levels(h_x, h_y, h_z, H_yy=4.0):
    """f_1, f_2, f_3 of the original, with identity couplings."""

    def f1(x, y, z):
        return h_x @ x + h_y @ y + h_z @ z + x @ x / 2 + x @ y + x @ z

    def f2(x, y, z):
        return H_yy * (y @ y) / 2 - y @ x - y @ z

    def f3(x, y, z):
        return z @ z / 2 - z @ x - z @ y

    return f1, f2, f3


# Best responses by hand: grad_z f_3 = z - x - y, and along z = x + y the middle
# level sees f_2 = y.y - 2 y.x, whose gradient is 2 (y - x).
def z_response(x, y):
    return x + y


def y_response(x):
    return x


def quadratic_F1(problem):
    f1, _, _ = quadratic_levels(*(problem.data[k] for k in ("h_x", "h_y", "h_z")))

    def F1(x):
        y = y_response(x)
        return f1(x, y, z_response(x, y))

    return F1


def test_quadratic_draws_follow_the_original_recipe():
    """Seed 42 with the legacy generator: h_x, h_y, h_z ~ U[0, 10), then the start ~ 20 U[0, 1)."""
    problem = gkv_quadratic(d=1, backend="numpy")
    # np.random.seed(42); np.random.rand(6): the first draws of the original "Quadratic1".
    first = [0.3745401188473625, 0.9507143064099162, 0.7319939418114051]
    first += [0.5986584841970366, 0.15601864044243652, 0.15599452033620265]
    got = [problem.data[k][0] for k in ("h_x", "h_y", "h_z")] + floats(problem.x0)
    np.testing.assert_allclose(got, [10 * u for u in first[:3]] + [20 * u for u in first[3:]])
    # With d > 1 each vector takes d consecutive draws, in the same order.
    d = 7
    problem = gkv_quadratic(d=d, seed=3, backend="numpy")
    u = np.random.RandomState(3).random_sample(6 * d).reshape(6, d)
    for k, name in enumerate(("h_x", "h_y", "h_z")):
        np.testing.assert_allclose(problem.data[name], 10 * u[k], rtol=1e-15)
    for k, x in enumerate(problem.x0):
        np.testing.assert_allclose(nestopt.to_numpy(x), 20 * u[3 + k], rtol=1e-15)
    assert problem.description == "gkv_quadratic(d=7, seed=3)"


def test_quadratic_values_are_the_original_formulas(xp):
    problem = gkv_quadratic(d=5, seed=1)
    expected = quadratic_levels(*(problem.data[k] for k in ("h_x", "h_y", "h_z")))
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = [3 * rng.standard_normal(5) for _ in range(3)]
        for level, f in zip(problem.levels, expected):
            value = level.value(*on(xp, point))
            assert_array_on(value, xp, shape=(), dtype=xp.float64)
            assert float(value) == pytest.approx(f(*point), rel=1e-13, abs=1e-12)


def test_quadratic_hand_responses_are_stationary():
    """The responses used below really are the levels' minimizers (by finite differences)."""
    problem = gkv_quadratic(d=4, seed=5, backend="numpy")
    _, f2, f3 = quadratic_levels(*(problem.data[k] for k in ("h_x", "h_y", "h_z")))
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(4), rng.standard_normal(4)
    # Quadratics: central differences are exact up to rounding.
    grad_z = central(lambda z: f3(x, y, z), z_response(x, y), 1e-3)
    assert np.max(np.abs(grad_z)) <= 1e-9

    def reduced_f2(y):
        return f2(x, y, z_response(x, y))

    assert np.max(np.abs(central(reduced_f2, y_response(x), 1e-3))) <= 1e-9
    # ... and minimizers, not saddles: the reduced Hessians (1 and 2 per coordinate) are positive.
    e = np.eye(4)[0]
    assert f3(x, y, z_response(x, y) + e) - f3(x, y, z_response(x, y)) == pytest.approx(0.5)
    assert reduced_f2(y_response(x) + e) - reduced_f2(y_response(x)) == pytest.approx(1.0)


@pytest.mark.parametrize(("d", "seed"), [(1, 42), (50, 42), (6, 0)])
def test_quadratic_closed_form_optimum_against_the_value_function(d, seed):
    problem = gkv_quadratic(d=d, seed=seed, backend="numpy")
    h_x, h_y, h_z = (problem.data[k] for k in ("h_x", "h_y", "h_z"))
    x_star = -(h_x + h_y + 2 * h_z) / 7
    for got, expected in zip(problem.solution, (x_star, x_star, 2 * x_star)):
        assert relative_error(got, expected) <= 1e-15
    F1 = quadratic_F1(problem)
    # |F_1| is about 1e3 at most: rounding in the differences is about 1e-13 / h.
    assert np.max(np.abs(central(F1, x_star, 1e-3))) <= 1e-8
    # F_1 has curvature 7 in every coordinate, so x* is its minimum.
    for i in range(min(d, 3)):
        step = np.zeros(d)
        step[i] = 0.1
        assert F1(x_star + step) - F1(x_star) == pytest.approx(7 * 0.01 / 2, rel=1e-9)
    assert F1(x_star) == pytest.approx(problem.data["optimal_value"], rel=1e-14)
    assert problem.data["optimal_value"] == pytest.approx(-np.sum(7 * x_star**2) / 2, rel=1e-14)


def test_quadratic_optimum_by_explicit_linear_algebra():
    """Backward induction on the levels' matrices, assembled term by term from the formulas."""
    d = 3
    problem = gkv_quadratic(d=d, backend="numpy")
    h = np.concatenate([problem.data[k] for k in ("h_x", "h_y", "h_z")])
    I, Z = np.eye(d), np.zeros((d, d))
    Q1 = np.block([[I, I, I], [I, Z, Z], [I, Z, Z]])  # x.x/2 + x.y + x.z
    Q2 = np.block([[Z, -I, Z], [-I, 4 * I, -I], [Z, -I, Z]])  # 2 y.y - y.x - y.z
    Q3 = np.block([[Z, Z, -I], [Z, Z, -I], [-I, -I, I]])  # z.z/2 - z.x - z.y
    zero = np.zeros(3 * d)
    reference = quad_reference([Q1, Q2, Q3], [h, zero, zero], (d, d, d))
    for got, expected in zip(problem.solution, reference["solution"]):
        assert relative_error(got, expected) <= 1e-13
    np.testing.assert_allclose(reference["hessian"], 7 * np.eye(d), atol=1e-13)


@pytest.mark.parametrize("d", [1, 50])
def test_quadratic_solve_reaches_the_optimum_from_the_published_start(d, xp):
    problem = gkv_quadratic(d=d)
    result = nestopt.solve(problem, problem.x0)
    assert result.success, result.message
    for got, expected in zip(result.xs, problem.solution):
        # Default gtol 1e-6 on F_1's gradient, curvature 7: |x - x*| <= 1.5e-7.
        assert float(np.max(np.abs(nestopt.to_numpy(got) - nestopt.to_numpy(expected)))) <= 1e-6


def test_quadratic_hypergradient_against_the_numpy_value_function(xp):
    problem = gkv_quadratic(d=4, seed=7)
    x = np.random.default_rng(2).uniform(-5, 5, 4)
    grad = nestopt.hypergradient(problem, on(xp, [x, np.zeros(4), np.zeros(4)]))
    fd = central(quadratic_F1(problem), x, 1e-3)
    assert relative_error(grad, fd) <= 1e-9


@pytest.mark.parametrize("seed", [0, 1])
def test_quadratic_derivatives_against_finite_differences(seed, xp):
    problem = gkv_quadratic(d=3, seed=seed)
    point = [np.random.default_rng(seed).standard_normal(3) for _ in range(3)]
    report = nestopt.check_derivatives(problem, on(xp, point), seed=seed)
    assert report.ok, report.summary
    assert all(level.quadratic for level in problem.levels)


def test_quadratic_rejects_a_bad_size():
    for d in (0, 2.0, True):
        with pytest.raises(ValueError, match="d must be a positive int"):
            gkv_quadratic(d=d)


# -- the quartic ------------------------------------------------------------------------


def quartic_f1(x, y, z):
    return x + y + z + x**2 / 2 + x * y + x * z


def quartic_f2(x, y, z):
    return 3 * y**2 / 2 - y * x - y * z


def quartic_f3(x, y, z):
    return (z**2 - z * x - z * y) ** 2 / 2


def quartic_F1(x, branch):
    """F_1 with the responses derived by hand on each branch of level 3."""
    if branch == "z = x + y":
        y = 2 * x  # f_2(x, y, x + y) = y^2 / 2 - 2 x y
        return quartic_f1(x, y, x + y)
    y = x / 3  # f_2(x, y, 0) = 3 y^2 / 2 - x y
    return quartic_f1(x, y, 0.0)


def test_quartic_start_constants_and_optimum():
    problem = gkv_quartic(backend="numpy")
    assert floats(problem.x0) == [-0.4, -0.2, -0.6]
    x, y, z = floats(problem.solution)
    assert (x, y, z) == pytest.approx((-6 / 11, -12 / 11, -18 / 11), rel=1e-15)
    assert z == pytest.approx(x + y)  # on the branch of the original's z_opt
    assert problem.data["optimal_value"] == pytest.approx(quartic_F1(x, "z = x + y"), rel=1e-14)
    assert problem.sizes == (1, 1, 1)


def test_quartic_values_are_the_original_formulas(xp):
    problem = gkv_quartic()
    rng = np.random.default_rng(3)
    for _ in range(4):
        point = rng.uniform(-2, 2, 3)
        for level, f in zip(problem.levels, (quartic_f1, quartic_f2, quartic_f3)):
            value = level.value(*on(xp, [[p] for p in point]))
            assert_array_on(value, xp, shape=(), dtype=xp.float64)
            assert float(value) == pytest.approx(f(*point), rel=1e-13, abs=1e-14)


def test_quartic_branch_structure_of_the_lowest_level():
    """Minimizers z = 0 and z = s, maximum z = s/2, f_3'' = 6 z^2 - 6 s z + s^2."""
    x, y = 0.3, -0.9
    s = x + y

    def f3(z):
        return quartic_f3(x, y, z)

    def second(z, h=1e-4):
        return (f3(z + h) - 2 * f3(z) + f3(z - h)) / h**2

    assert f3(0.0) == 0.0 and f3(s) == pytest.approx(0.0, abs=1e-30)
    for z in (0.0, s):
        assert second(z) == pytest.approx(s**2, rel=1e-6)
    assert f3(s / 2) == pytest.approx(s**4 / 32)
    assert second(s / 2) == pytest.approx(-(s**2) / 2, rel=1e-6)
    # The second derivative changes sign at |z - s/2| = |s| / (2 sqrt 3).
    edge = abs(s) / (2 * np.sqrt(3))
    assert second(s / 2 + 1.01 * edge) > 0 > second(s / 2 + 0.99 * edge)
    assert second(s / 2 - 1.01 * edge) > 0 > second(s / 2 - 0.99 * edge)


def test_quartic_hand_responses_are_stationary_on_both_branches():
    x = -0.4
    for branch, y in (("z = x + y", 2 * x), ("z = 0", x / 3)):

        def z_of(y, branch=branch):
            return x + y if branch == "z = x + y" else 0.0

        h = 1e-4
        df3 = (quartic_f3(x, y, z_of(y) + h) - quartic_f3(x, y, z_of(y) - h)) / (2 * h)
        df2 = (quartic_f2(x, y + h, z_of(y + h)) - quartic_f2(x, y - h, z_of(y - h))) / (2 * h)
        # f_3 is quartic: the difference errs by |s| h^2 (1e-8); the reduced f_2 is quadratic.
        assert abs(df3) <= 1e-7 and abs(df2) <= 1e-10, branch


def test_quartic_published_optimum_against_the_value_function():
    x_star = -6 / 11
    h = 1e-4
    for branch, optimum in (("z = x + y", x_star), ("z = 0", -4 / 5)):

        def F1(x, branch=branch):
            return quartic_F1(x, branch)

        assert abs((F1(optimum + h) - F1(optimum - h)) / (2 * h)) <= 1e-10
        assert F1(optimum + 0.1) > F1(optimum) < F1(optimum - 0.1)
    # The published branch gives the lower value: -18/11 against -8/15.
    assert quartic_F1(x_star, "z = x + y") == pytest.approx(-18 / 11)
    assert quartic_F1(-4 / 5, "z = 0") == pytest.approx(-8 / 15)


@pytest.mark.parametrize("curvature", ["exact", "first_order"])
def test_quartic_solve_reaches_x_star_from_the_published_start(curvature, xp):
    problem = gkv_quartic()
    result = nestopt.solve(problem, problem.x0, curvature=curvature)
    assert result.success, result.message
    x, y, z = floats(result.xs)
    # Default gtol 1e-6 over the curvature 11 of F_1: |x - x*| <= 1e-7.
    assert abs(x + 6 / 11) <= 1e-6
    assert abs(y + 12 / 11) <= 1e-6 and abs(z + 18 / 11) <= 1e-6


@pytest.mark.parametrize("x1", [-0.4, -6 / 11, -1.5, 0.5])
def test_quartic_hypergradient_on_the_published_branch(x1, xp):
    problem = gkv_quartic()
    start = on(xp, [[x1], [x1], [2 * x1]])  # z on the branch z = x + y
    result = nestopt.best_response(problem, start, level_options={"tol": 1e-12})
    y, z = floats(result.xs[1:])
    assert y == pytest.approx(2 * x1, abs=1e-10) and z == pytest.approx(3 * x1, abs=1e-10)
    h = 1e-4
    fd = (quartic_F1(x1 + h, "z = x + y") - quartic_F1(x1 - h, "z = x + y")) / (2 * h)
    # F_1 is quadratic on the branch: the difference is exact up to rounding (1e-12).
    assert floats([result.hypergrad])[0] == pytest.approx(fd, rel=1e-9, abs=1e-10)


def test_quartic_started_near_zero_the_lowest_level_keeps_the_other_branch(xp):
    problem = gkv_quartic()
    x1 = -0.4
    result = nestopt.best_response(
        problem, on(xp, [[x1], [-0.2], [0.05]]), level_options={"tol": 1e-12}
    )
    y, z = floats(result.xs[1:])
    assert y == pytest.approx(x1 / 3, abs=1e-10) and abs(z) <= 1e-10
    h = 1e-4
    fd = (quartic_F1(x1 + h, "z = 0") - quartic_F1(x1 - h, "z = 0")) / (2 * h)
    assert floats([result.hypergrad])[0] == pytest.approx(fd, rel=1e-9)


@pytest.mark.parametrize(
    "point", [(-0.4, -0.2, -0.6), (-6 / 11, -12 / 11, -18 / 11), (0.3, -0.7, 1.1), (1.2, 0.4, -0.5)]
)
def test_quartic_derivatives_against_finite_differences(point, xp):
    problem = gkv_quartic()
    report = nestopt.check_derivatives(problem, on(xp, [[p] for p in point]))
    assert report.ok, report.summary
    upper, middle, lower = report.levels
    # The quartic level brings hess_dir and it is checked; the quadratic ones need none.
    assert lower.errors["hess_dir"] is not None and lower.errors["hess_dir"] <= 1e-6
    assert upper.errors["hess_dir"] is None and middle.errors["hess_dir"] is None
