"""Hypergradients and best responses against independent truth.

Truth is (a) the closed form of quadratic problems, computed by
`quad_reference` with dense NumPy algebra (itself checked here against
finite differences of its value function), and (b) fourth-order central
differences of the value function ``F_1`` of nonlinear problems.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import assert_array_on, fd_gradient, relative_error, value_function

import nestopt
from nestopt.problems import quad, quad_reference, softplus_levels

UNEVEN = {2: (3, 2), 3: (2, 4, 1), 4: (3, 1, 2, 4), 5: (2, 3, 1, 2, 3)}


def reference(problem):
    data = problem.data
    return quad_reference(data["Q"], data["c"], data["sizes"])


def numpy_point(problem, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(d) for d in problem.sizes]


# -- the closed form is itself right ------------------------------------------------


def test_closed_form_matches_finite_differences_of_its_value_function():
    problem = quad(3, (2, 3, 2), seed=11)
    ref = reference(problem)
    Q1, c1 = problem.data["Q"][0], problem.data["c"][0]

    def F1(x1):
        x = np.concatenate(ref["responses"](x1))
        return 0.5 * x @ Q1 @ x + c1 @ x

    x1 = np.array([0.3, -0.7])
    assert relative_error(ref["hessian"] @ x1 + ref["grad_at_zero"], fd_gradient(F1, x1)) < 1e-9


# -- quadratics: closed form, both modes, n = 2..5, uneven sizes ----------------------


@pytest.mark.parametrize("curvature", ["exact", "first_order"])
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_quadratic_hypergradient_matches_closed_form(xp, n, curvature):
    problem = quad(n, UNEVEN[n], seed=n)
    ref = reference(problem)
    x1 = np.random.default_rng(n).standard_normal(UNEVEN[n][0])
    start = [xp.asarray(x1)] + [xp.zeros(d, dtype=xp.float64) for d in UNEVEN[n][1:]]
    g = nestopt.hypergradient(problem, start, curvature=curvature)
    assert_array_on(g, xp, shape=(UNEVEN[n][0],), dtype=xp.float64)
    assert relative_error(g, ref["hessian"] @ x1 + ref["grad_at_zero"]) <= 1e-10


def test_lower_levels_are_solved_to_the_closed_form_responses(xp):
    problem = quad(4, UNEVEN[4], seed=7)
    ref = reference(problem)
    x1 = np.linspace(-1.0, 1.0, UNEVEN[4][0])
    start = [xp.asarray(x1)] + [xp.zeros(d, dtype=xp.float64) for d in UNEVEN[4][1:]]
    result = nestopt.best_response(problem, start)
    for k, expected in enumerate(ref["responses"](x1)):
        assert relative_error(result.xs[k], expected) < 1e-11


def test_sensitivities_match_the_affine_responses():
    problem = quad(3, UNEVEN[3], seed=5)
    ref = reference(problem)
    x1 = np.zeros(UNEVEN[3][0])
    result = nestopt.best_response(problem, [x1, np.zeros(4), np.zeros(1)])
    for k in (2, 3):
        # The responses are affine, so one-sided differences with step 1 are exact.
        columns = [
            ref["responses"](x1 + e)[k - 1] - ref["responses"](x1)[k - 1] for e in np.eye(x1.size)
        ]
        assert relative_error(result.sensitivity[k], np.stack(columns, axis=1)) < 1e-11


def test_best_response_jacobians_by_finite_differences():
    """G_k = dx_k*/dx_<k: re-solve the levels k.. with x_<k perturbed."""
    problem = softplus_levels(3, (2, 3, 2), seed=4, beta=2.0)
    xs = [np.array([0.5, -0.2]), np.zeros(3), np.zeros(2)]
    result = nestopt.best_response(problem, xs, level_options={"tol": 1e-13})
    G2 = result.jacobians[2]
    assert G2.shape == (3, 2)
    assert result.jacobians[3].shape == (2, 5)
    h = 1e-5
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        plus = nestopt.best_response(
            problem, [xs[0] + e, *result.xs[1:]], level_options={"tol": 1e-13}
        )
        minus = nestopt.best_response(
            problem, [xs[0] - e, *result.xs[1:]], level_options={"tol": 1e-13}
        )
        column = (plus.xs[1] - minus.xs[1]) / (2 * h)
        # Central difference: truncation h^2 ~ 1e-10, rounding eps/h ~ 1e-11.
        assert relative_error(G2[:, i], column) < 1e-7


# -- nonlinear trilevel: exact mode against the value function ---------------------


@pytest.fixture(scope="module")
def nonlinear():
    problem = softplus_levels(3, (3, 4, 2), seed=1, beta=3.0)
    x1 = np.array([0.8, -0.4, 1.1])
    truth = fd_gradient(lambda x: value_function(problem, x), x1)
    return problem, x1, truth


def test_exact_with_hess_dir_matches_value_function(nonlinear):
    problem, x1, truth = nonlinear
    result = nestopt.best_response(problem, [x1, np.zeros(4), np.zeros(2)], curvature="exact")
    assert "hess_dir" in result.exactness
    assert relative_error(result.hypergrad, truth) <= 1e-7


def test_exact_without_hess_dir_matches_value_function(nonlinear):
    problem, x1, truth = nonlinear
    levels = list(problem.levels)
    levels[2] = dataclasses.replace(levels[2], hess_dir=None)
    bare = nestopt.Problem(levels)
    result = nestopt.best_response(bare, [x1, np.zeros(4), np.zeros(2)], curvature="exact")
    assert "central difference" in result.exactness
    assert relative_error(result.hypergrad, truth) <= 1e-6


def test_first_order_is_measurably_wrong_there(nonlinear):
    problem, x1, truth = nonlinear
    g = nestopt.hypergradient(problem, [x1, np.zeros(4), np.zeros(2)], curvature="first_order")
    assert relative_error(g, truth) > 1e-4


def test_exact_mode_on_array_api_strict_matches_numpy(nonlinear):
    problem, x1, _ = nonlinear
    g_np = nestopt.hypergradient(problem, [x1, np.zeros(4), np.zeros(2)])
    with nestopt.backend("array_api_strict") as chosen:
        strict_problem = softplus_levels(3, (3, 4, 2), seed=1, beta=3.0)
        xp = chosen.xp
        g_strict = nestopt.hypergradient(
            strict_problem,
            [xp.asarray(x1), xp.zeros(4, dtype=xp.float64), xp.zeros(2, dtype=xp.float64)],
        )
    assert_array_on(g_strict, xp, shape=(3,))
    assert relative_error(g_strict, g_np) <= 1e-12


def test_check_hypergradient_agrees(nonlinear):
    problem, x1, _ = nonlinear
    report = nestopt.check_hypergradient(problem, [x1, np.zeros(4), np.zeros(2)])
    assert report.ok and report.rel_error < 1e-7
    wrong = nestopt.check_hypergradient(
        problem, [x1, np.zeros(4), np.zeros(2)], curvature="first_order"
    )
    assert not wrong.ok


# -- four levels and more ---------------------------------------------------------------


def test_exact_for_four_nonquadratic_levels_is_refused():
    problem = softplus_levels(4, 2, seed=0)
    with pytest.raises(NotImplementedError, match="first_order"):
        nestopt.hypergradient(problem, problem.x0, curvature="exact")


def test_exact_for_four_levels_with_quadratic_bottom_matches_value_function():
    """Level 3 nonlinear, level 4 quadratic: the exact term needs only hess_dir of level 3."""
    base = softplus_levels(4, 2, seed=2, beta=2.0)
    levels = list(base.levels)
    levels[3] = dataclasses.replace(quad(4, 2, seed=9).levels[3], name="bottom")
    problem = nestopt.Problem(levels)
    x1 = np.array([0.4, -0.9])
    truth = fd_gradient(lambda x: value_function(problem, x), x1)
    result = nestopt.best_response(problem, [x1] + [np.zeros(2)] * 3, curvature="exact")
    assert relative_error(result.hypergrad, truth) <= 1e-7
    first = nestopt.hypergradient(problem, [x1] + [np.zeros(2)] * 3, curvature="first_order")
    assert relative_error(first, truth) > 1e-4


# -- work done: one factorization per level, reused ---------------------------------


def test_each_level_is_factored_once_at_a_solved_point():
    problem = softplus_levels(3, (3, 4, 2), seed=1, beta=3.0)
    solved = nestopt.best_response(problem, problem.x0).xs
    result = nestopt.best_response(problem, solved, curvature="exact")
    # Level 3 (2x2) and level 2 (4x4) once each: the adjoint for the exact term
    # and the Jacobians reuse level 3's factor, the convergence test the step's.
    assert result.factorizations == (0, 1, 1)


def test_predictor_saves_newton_steps_on_quadratics():
    problem = quad(3, 4, seed=3)
    result = nestopt.best_response(problem, problem.x0)
    # Level 3 needs one Newton step for the first level-2 iterate; after that the
    # first-order prediction of its response is exact, so no more steps.
    assert result.level_nit == (0, 1, 1)


# -- inputs are never modified or aliased ------------------------------------------------


def test_inputs_are_not_modified_or_aliased():
    problem = softplus_levels(3, (2, 2, 2), seed=0)
    xs = [np.array([1.0, 2.0]), np.array([0.5, 0.5]), np.array([-1.0, 0.0])]
    copies = [x.copy() for x in xs]
    result = nestopt.best_response(problem, xs)
    for x, c in zip(xs, copies):
        assert np.array_equal(x, c)
    for x, y in zip(xs, result.xs):
        assert not np.shares_memory(x, y)


# -- bad input ---------------------------------------------------------------------------


def test_problem_needs_two_levels():
    with pytest.raises(ValueError, match="at least 2 levels"):
        nestopt.Problem([quad(2, 1).levels[0]])


def test_level_rejects_non_callables_and_bad_sizes():
    with pytest.raises(TypeError, match="grad"):
        nestopt.Level(grad=None, hess=lambda: 0, size=1)
    with pytest.raises(ValueError, match="size"):
        nestopt.Level(grad=lambda: 0, hess=lambda: 0, size=0)


def test_wrong_number_of_starting_points():
    problem = quad(3, 2)
    with pytest.raises(ValueError, match="3 levels"):
        nestopt.hypergradient(problem, [np.zeros(2), np.zeros(2)])


def test_wrong_starting_shape_names_the_level():
    problem = quad(3, 2)
    with pytest.raises(ValueError, match="level 2"):
        nestopt.hypergradient(problem, [np.zeros(2), np.zeros(3), np.zeros(2)])


def test_wrong_gradient_shape_names_level_and_callable():
    problem = quad(2, 2)
    bad = dataclasses.replace(problem.levels[1], grad=lambda x1, x2: np.zeros(3))
    with pytest.raises(nestopt.OracleError, match=r"level 2.*'grad'.*shape \(3,\)"):
        nestopt.hypergradient(nestopt.Problem([problem.levels[0], bad]), problem.x0)


def test_not_positive_definite_lower_level():
    problem = quad(2, 2, seed=1)
    concave = dataclasses.replace(
        problem.levels[1],
        value=lambda x1, x2: -problem.levels[1].value(x1, x2),
        grad=lambda x1, x2: -problem.levels[1].grad(x1, x2),
        hess=lambda x1, x2: -problem.levels[1].hess(x1, x2),
    )
    with pytest.raises(nestopt.NotPositiveDefiniteError, match="smallest eigenvalue") as info:
        nestopt.hypergradient(nestopt.Problem([problem.levels[0], concave]), problem.x0)
    assert info.value.level == 2
    assert "ridge" in str(info.value)


def test_unknown_option_values_are_listed():
    problem = quad(2, 2)
    with pytest.raises(ValueError, match="exact, first_order"):
        nestopt.hypergradient(problem, problem.x0, curvature="second")
    with pytest.raises(ValueError, match="implicit, itd"):
        nestopt.hypergradient(problem, problem.x0, method="unrolled")
    with pytest.raises(ValueError, match="tol, maxiter, ridge"):
        nestopt.hypergradient(problem, problem.x0, level_options={"tolerance": 1e-9})


def test_level_options_by_number_name_and_list():
    problem = quad(3, 2, seed=1)
    by_list = nestopt.best_response(problem, problem.x0, level_options=[{"maxiter": 5}, {}])
    by_name = nestopt.best_response(problem, problem.x0, level_options={"level 3": {"tol": 1e-12}})
    by_number = nestopt.best_response(problem, problem.x0, level_options={2: {"maxiter": 7}})
    for result in (by_list, by_name, by_number):
        assert relative_error(result.xs[2], problem.solution[2]) < 1.0  # ran, same problem
    with pytest.raises(ValueError, match="neither an option"):
        nestopt.best_response(problem, problem.x0, level_options={7: {}})


def test_none_gradient_blocks_are_zero_blocks():
    # Level 2's objective ignores x_1 (its rows and columns of Q_2 for x_1 are
    # zero), so its gradient block 1 is identically zero: returning None there
    # must give exactly what returning the zeros gives.
    base = quad(2, (2, 3), seed=6)
    Q, c = base.data["Q"][1].copy(), base.data["c"][1].copy()
    Q[:2, :] = 0.0
    Q[:, :2] = 0.0
    c[:2] = 0.0
    lower_flat = nestopt.Level(
        grad=lambda x1, x2: Q @ np.concatenate([x1, x2]) + c,
        hess=lambda x1, x2: Q,
        size=3,
    )
    lower_none = dataclasses.replace(
        lower_flat, grad=lambda x1, x2: (None, (Q @ np.concatenate([x1, x2]) + c)[2:])
    )
    xs = [np.array([0.3, -0.2]), np.zeros(3)]
    flat = nestopt.best_response(nestopt.Problem([base.levels[0], lower_flat]), xs)
    with_none = nestopt.best_response(nestopt.Problem([base.levels[0], lower_none]), xs)
    np.testing.assert_array_equal(with_none.hypergrad, flat.hypergrad)
    np.testing.assert_array_equal(with_none.xs[1], flat.xs[1])


# -- row-block Hessians (hess_rows=True) ----------------------------------------------------


@pytest.mark.parametrize("curvature", ["exact", "first_order"])
def test_row_block_hessians_give_the_full_hessian_answer(curvature):
    rows = softplus_levels(3, (2, 3, 4), seed=8, beta=2.0, hess_rows=True)
    full = softplus_levels(3, (2, 3, 4), seed=8, beta=2.0, hess_rows=False)
    x = [np.array([0.3, -0.6]), np.zeros(3), np.zeros(4)]
    a = nestopt.best_response(rows, x, curvature=curvature)
    b = nestopt.best_response(full, x, curvature=curvature)
    assert relative_error(a.hypergrad, b.hypergrad) <= 1e-13
    for k in (2, 3):
        assert relative_error(a.jacobians[k], b.jacobians[k]) <= 1e-13
    assert a.nfev["hess"] == b.nfev["hess"]


def test_row_block_hessians_are_asked_only_for_their_rows():
    problem = softplus_levels(3, (2, 3, 4), seed=8, beta=2.0, hess_rows=True)
    asked = []
    levels = list(problem.levels)
    for k in (2, 3):
        level = levels[k - 1]

        def hess(*xs, start=0, level=level, k=k):
            asked.append((k, start))
            return level.hess(*xs, start=start)

        levels[k - 1] = dataclasses.replace(level, hess=hess)
    nestopt.hypergradient(
        nestopt.Problem(levels), [np.array([0.3, -0.6]), np.zeros(3), np.zeros(4)]
    )
    assert {start for k, start in asked if k == 2} == {2}
    # Level 3's rows: from 5 for its own solve, from 2 for level 2's curvature term.
    assert {start for k, start in asked if k == 3} <= {2, 5} and (3, 5) in asked


def test_hess_rows_must_be_a_flag():
    level = softplus_levels(2, 2, seed=0).levels[1]
    with pytest.raises(TypeError, match="hess_rows must be True or False"):
        dataclasses.replace(level, hess_rows=lambda *xs: None)


# -- work reused exactly (issue 17) ------------------------------------------------------


def _undeclared(problem):
    return nestopt.Problem([dataclasses.replace(lv, quadratic=False) for lv in problem.levels])


def test_a_cold_start_factors_no_more_than_a_solved_point():
    problem = quad(3, 6, seed=2)
    x1 = np.linspace(-1.0, 1.0, 6)
    cold = nestopt.best_response(problem, [x1, np.zeros(6), np.zeros(6)], curvature="first_order")
    solved = nestopt.best_response(problem, cold.xs, curvature="first_order")
    assert cold.factorizations == solved.factorizations == (0, 1, 1)
    # Without the declaration every Newton iterate is factored again.
    plain = nestopt.best_response(
        _undeclared(problem), [x1, np.zeros(6), np.zeros(6)], curvature="first_order"
    )
    assert sum(plain.factorizations) > sum(cold.factorizations)
    assert relative_error(plain.hypergrad, cold.hypergrad) <= 1e-13
    for k in (2, 3):
        assert relative_error(plain.jacobians[k], cold.jacobians[k]) <= 1e-12


def test_responses_are_reused_only_for_bit_identical_inputs():
    from nestopt._methods.run import start_run

    problem = softplus_levels(3, (2, 3, 2), seed=5, beta=2.0)
    run = start_run(problem, problem.x0, "implicit", {})
    engine = run.engine
    first = engine.respond(run.xs)
    factored = sum(engine.stats.factorizations)
    again = engine.respond(tuple(np.array(x, copy=True) for x in run.xs))
    assert again is first and sum(engine.stats.factorizations) == factored
    nudged = (np.nextafter(run.xs[0], np.inf), *run.xs[1:])
    moved = engine.respond(nudged)
    assert moved is not first and sum(engine.stats.factorizations) > factored
    g_first = engine.hypergradient(first)
    g_moved = engine.hypergradient(moved)
    assert relative_error(g_moved, g_first) <= 1e-12  # one ulp apart


def test_first_order_mode_takes_no_more_newton_steps_than_exact():
    problem = softplus_levels(3, 30, seed=0)
    exact = nestopt.best_response(problem, problem.x0, curvature="exact")
    first = nestopt.best_response(problem, problem.x0, curvature="first_order")
    assert first.level_nit == exact.level_nit
    same = nestopt.best_response(
        problem, problem.x0, curvature="first_order", newton_curvature="same"
    )
    assert sum(same.level_nit) > sum(first.level_nit)
    # Both stop within tol = 1.5e-10 (relative step) of the same solution.
    np.testing.assert_allclose(first.xs[1], same.xs[1], atol=1e-8 * np.max(np.abs(first.xs[1])))


def test_a_run_leaves_nothing_alive_behind_it():
    # Responses reach the nest through a weak proxy: when a call returns, its matrices are
    # freed by reference counting at once (a cycle once kept them until the cyclic garbage
    # collector ran, and repeated calls slowed down).
    import gc
    import weakref

    from nestopt._methods.run import start_run

    problem = softplus_levels(3, (2, 3, 2), seed=1)
    gc.disable()
    try:
        run = start_run(problem, problem.x0, "implicit", {})
        state = run.engine.respond(run.xs)
        run.engine.hypergradient(state)
        alive = weakref.ref(run.engine.nest)
        del run, state
        assert alive() is None
    finally:
        gc.enable()


def test_a_quadratic_levels_hessian_is_asked_once_and_not_kept():
    # Declared constant: while R_j is unchanged its factored block serves again without
    # the oracle, and the (D - s_{j-1}) x D rows it was built from are freed at once.
    import gc
    import weakref

    from nestopt._methods.run import start_run

    problem = quad(3, 4, seed=3)
    calls, outputs = [0, 0, 0], []

    def counted(k, hess):
        def wrapped(*xs):
            calls[k - 1] += 1
            out = np.array(hess(*xs), copy=True)  # a fresh array each call
            outputs.append((k, weakref.ref(out)))
            return out

        return wrapped

    levels = [
        dataclasses.replace(lv, hess=counted(k, lv.hess))
        for k, lv in enumerate(problem.levels, start=1)
    ]
    counted_problem = nestopt.Problem(levels)
    run = start_run(counted_problem, problem.x0, "implicit", {"curvature": "first_order"})
    state = run.engine.respond(run.xs)
    g = run.engine.hypergradient(state)
    gc.collect()
    assert all(ref() is None for k, ref in outputs if k == 2), "level 2's Hessian was kept"
    rows_shape = (problem.dim - problem.sizes[0], problem.dim)  # M_2's rows s_1:D
    held = []
    for value in run.engine.nest.blocks.values():
        held += list(vars(value).values()) if dataclasses.is_dataclass(value) else [value]
    assert all(getattr(a, "shape", None) != rows_shape for a in held), "M_2's rows are kept"
    result = nestopt.solve(counted_problem, problem.x0, curvature="first_order")
    assert result.success
    reference = nestopt.hypergradient(problem, problem.x0, curvature="first_order")
    assert relative_error(g, reference) <= 1e-13
    calls[:] = [0, 0, 0]
    nestopt.solve(counted_problem, problem.x0, curvature="first_order")
    assert calls[1:] == [1, 1], calls  # once per run for levels 2 and 3


def test_a_nan_in_the_cross_rows_of_a_later_call_is_still_caught():
    # Finiteness of an undeclared level's Hessian is checked on every call (only a declared
    # quadratic level's constant Hessian is checked once per level object); the NaN sits
    # in the rows B that no factorization reads.
    problem = quad(2, 3, seed=4)
    level = problem.levels[1]
    calls = [0]

    def hess(*xs):
        calls[0] += 1
        out = np.array(level.hess(*xs), copy=True)
        if calls[0] > 1:
            out[3, 0] = out[0, 3] = np.nan
        return out

    nan_later = nestopt.Problem(
        [problem.levels[0], dataclasses.replace(level, hess=hess, quadratic=False)]
    )
    nestopt.hypergradient(nan_later, problem.solution)
    with pytest.raises(nestopt.NonFiniteError, match="level 2"):
        nestopt.hypergradient(nan_later, problem.solution)


def test_first_order_mode_at_a_solved_point_does_no_third_order_work():
    # Newton steps use the exact curvature ("best"), the Jacobians first_order: at a point
    # where the lower levels are already solved no Newton step is taken, so the third-order
    # oracle of level 3 must not be called at all.
    base = softplus_levels(3, (3, 4, 2), seed=1, beta=3.0)
    calls = []
    levels = list(base.levels)
    original = levels[2].hess_dir
    assert original is not None

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    levels[2] = dataclasses.replace(levels[2], hess_dir=counted)
    problem = nestopt.Problem(levels)
    solved = nestopt.best_response(problem, base.x0, level_options={"tol": 1e-12}).xs
    calls.clear()
    got = nestopt.hypergradient(problem, solved, curvature="first_order")
    assert not calls, f"{len(calls)} third-order calls at a solved point in first_order mode"
    reference = nestopt.hypergradient(
        problem, solved, curvature="first_order", newton_curvature="same"
    )
    assert relative_error(got, reference) <= 1e-12
    moved = [solved[0] + 0.1, *solved[1:]]  # not solved there: Newton runs, exact steps
    nestopt.hypergradient(problem, moved, curvature="first_order")
    assert calls
