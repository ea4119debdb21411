"""Per-call shortcuts (issue: fixed costs) change nothing a user can see.

The default per-level settings are computed once per problem and precision
(not on every call), and float64 NumPy starts are copied without the general
conversion path. These tests pin what must not change: options given on a
call still apply, nothing is aliased, other dtypes keep their policy, and the
cache lets a problem go.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import nestopt
from nestopt._backend.points import prepare_points
from nestopt._methods import implicit, options
from nestopt.problems import quad, softplus_levels


def _solved(problem):
    start = [np.asarray(a) for a in problem.x0]
    return [np.asarray(a) for a in nestopt.best_response(problem, start).xs]


def test_default_settings_are_computed_once_and_options_still_apply():
    problem = quad(2, 5)
    xs = _solved(problem)
    nestopt.hypergradient(problem, xs)
    nestopt.hypergradient(problem, xs)
    assert len(implicit._CONFIGS[problem]) == 1
    # Given options are not cached and are not hidden by the cached defaults.
    start = [np.asarray(problem.x0[0]), np.full(5, 10.0)]
    with pytest.raises(nestopt.ConvergenceError):
        nestopt.hypergradient(problem, start, level_options={"maxiter": 0})
    assert len(implicit._CONFIGS[problem]) == 1


@pytest.mark.parametrize("solver", [None, "cholesky", "lu", "cg", "minres"])
def test_shared_default_settings_equal_the_checked_ones(solver):
    """Without level_options the settings come from a cache shared by all problems: the
    same as those checked level by level, and a dense solver on an hvp-only level is still
    refused by name."""
    import dataclasses

    for problem in (quad(3, 4), softplus_levels(2, 3)):
        for dtype in (np.float64, np.float32):
            eps = float(np.finfo(dtype).eps)
            shared = options.level_settings(problem, eps, dtype, None, solver)
            checked = options._level_settings(problem, eps, dtype, None, solver)
            assert shared == checked
    lower = quad(2, 3).levels[1]
    hvp_only = dataclasses.replace(lower, hess=None, hvp=lambda *a: lower.hess(*a[:-1]) @ a[-1])
    problem = nestopt.Problem([quad(2, 3).levels[0], hvp_only])
    if solver in (None, "cg", "minres"):
        assert options.level_settings(problem, 1e-16, np.float64, None, solver)[1].linear_solver
    else:
        with pytest.raises(ValueError, match="level 2 has no hess"):
            options.level_settings(problem, 1e-16, np.float64, None, solver)


def test_the_settings_cache_lets_a_problem_go():
    problem = quad(2, 5)
    nestopt.hypergradient(problem, _solved(problem))
    ref = weakref.ref(problem)
    del problem
    gc.collect()
    assert ref() is None


def test_float64_starts_are_copied_and_float32_keeps_its_precision():
    problem = quad(2, 5)
    xs = _solved(problem)
    given = [x.copy() for x in xs]
    result = nestopt.best_response(problem, given)
    given[1][:] = 123.0  # the user's array changes after the call: the result must not
    np.testing.assert_allclose(result.xs[1], xs[1], rtol=0, atol=1e-12)
    assert result.xs[1] is not given[1]
    _, _, single = prepare_points(problem, [x.astype(np.float32) for x in xs])
    assert all(x.dtype == np.float32 for x in single)
    _, _, mixed = prepare_points(problem, [np.arange(5), xs[1]])  # integers: float64
    assert all(x.dtype == np.float64 for x in mixed)


def test_cached_methods_still_refuse_keywords_of_the_wrong_type():
    problem = quad(2, 5)
    xs = _solved(problem)
    nestopt.hypergradient(problem, xs, predict=True)  # cached under (True, bool)
    with pytest.raises(TypeError, match="predict"):
        nestopt.hypergradient(problem, xs, predict=1)  # equal to True, but not a bool


def test_configurations_are_per_method_and_dtype():
    # f_2 = |y - 2x|^2 / 2, f_1 = |x - 1|^2 / 2 + |y|^2 / 2: dF_1/dx = (x - 1) + 4x;
    # written in the inputs' dtype, so one problem runs in float32 and float64.
    lower = nestopt.Level(
        grad=lambda x, y: np.concatenate([-2 * (y - 2 * x), y - 2 * x]),
        hess=lambda x, y: np.array([[4.0, -2.0], [-2.0, 1.0]], dtype=x.dtype),
        size=1,
    )
    upper = nestopt.Level(
        grad=lambda x, y: np.concatenate([x - 1, y]),
        hess=lambda x, y: np.eye(2, dtype=x.dtype),
        size=1,
    )
    small = nestopt.Problem([upper, lower])
    for dtype in (np.float64, np.float32, np.float64):
        g = nestopt.hypergradient(small, [np.array([0.5], dtype), np.array([1.0], dtype)])
        assert g.dtype == dtype
        np.testing.assert_allclose(g, [(0.5 - 1) + 4 * 0.5], rtol=1e-6)
    problem = quad(2, 5)
    xs = _solved(problem)
    g64 = nestopt.hypergradient(problem, xs)
    # An unhashable method (level_options as a dict) is configured on every call, and applies.
    method = nestopt.Implicit(level_options={"ridge": 1.0})
    ridged = nestopt.hypergradient(problem, xs, method=method)
    assert not np.allclose(ridged, g64)
    np.testing.assert_array_equal(nestopt.hypergradient(problem, xs, method=method), ridged)
    np.testing.assert_array_equal(nestopt.hypergradient(problem, xs), g64)


def test_a_matrix_free_hypergradient_makes_no_product_a_bare_cg_would_not_but_its_test():
    """At a solved point: the bare CG's products on the adjoint system and its cross
    product, plus the follower's convergence test (one CG run to a relative residual of
    0.5: one or two products); the true residual of the adjoint solve shares the cross
    product's product."""
    from dataclasses import replace

    import scipy.sparse.linalg as sl

    from nestopt.problems import group_ridge

    p = 3000
    problem = group_ridge(p, 300, 10, seed=0)
    lam = np.full(10, -6.0)
    xs = nestopt.best_response(problem, [lam, np.zeros(p)]).xs
    learner = problem.levels[1]
    calls = [0]

    def hvp(*args):
        calls[0] += 1
        return learner.hvp(*args)

    counted = nestopt.Problem([problem.levels[0], replace(learner, hvp=hvp)])
    nestopt.hypergradient(counted, xs)  # the once-per-level symmetry probe
    calls[0] = 0
    g = nestopt.hypergradient(counted, xs)
    ours = calls[0]
    zeros = np.zeros(10)
    iterations = [0]
    operator = sl.LinearOperator(
        (p, p), matvec=lambda v: learner.hvp(*xs, np.concatenate([zeros, v]))[10:]
    )
    _, w = problem.levels[0].grad(*xs)
    rtol = 0.01 * np.sqrt(np.finfo(float).eps)  # nestopt's default krylov_rtol

    def count(_):
        iterations[0] += 1

    y, info = sl.cg(operator, w, rtol=rtol, maxiter=10_000, callback=count)
    assert info == 0
    bare = -learner.hvp(*xs, np.concatenate([zeros, y]))[:10]
    np.testing.assert_allclose(g, bare, rtol=1e-8, atol=1e-12 * np.max(np.abs(bare)))
    assert ours <= iterations[0] + 1 + 2, (ours, iterations[0])


def test_problem_says_whether_any_level_is_constrained():
    problem = quad(2, 3)
    assert problem.constrained is False
    lower = problem.levels[1]
    from dataclasses import replace

    boxed = nestopt.Problem([problem.levels[0], replace(lower, bounds=nestopt.Bounds(0.0, 1.0))])
    assert boxed.constrained is True
    with pytest.raises(AttributeError):
        boxed.constrained = False  # read only: it follows from the (frozen) levels


def test_linear_rows_are_built_once_per_problem_and_let_it_go():
    from nestopt._levels import build_rows
    from nestopt.problems import box_qp

    problem = box_qp(6, backend="numpy")
    x = np.asarray(problem.x0[0])
    first = nestopt.best_response(problem, [x, np.zeros(6)])
    again = nestopt.best_response(problem, [x, np.asarray(first.xs[1])])
    assert len(build_rows._LINEAR[problem]) == 1
    np.testing.assert_allclose(again.hypergrad, first.hypergrad, rtol=1e-12, atol=1e-14)
    assert again.active == first.active
    ref = weakref.ref(problem)
    del problem, first, again
    gc.collect()
    assert ref() is None
