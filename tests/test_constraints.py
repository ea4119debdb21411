"""Constrained levels (issue 12): published solutions, closed forms and the value function."""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pytest
from helpers import relative_error

import nestopt
from nestopt.problems import bolib, bolib_names, constrained_trilevel, softplus_levels

ALL = bolib_names()
# Problems whose solution sits on a kink of F (a follower constraint weakly active there).
WEAK = ("Outrata1993Ex31", "Outrata1994Ex31", "DeSilva1978")
# Published starts on a kink between two optima (the published start of Aiyoshi & Shimizu
# is x = (10, 10), where the follower's bound turns weakly active).
KINK_STARTS = ("AiyoshiShimizu1984Ex2", "FloudasEtal2013")


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        return fn(*args, **kwargs)


# -- the follower's response: exact to rounding, with its published multipliers -----------


def _published_multipliers(problem, data_key, labels_key, level):
    """Our multiplier rows (constraints first, then bounds) for the published labels."""
    rows = {}
    labels = problem.data[labels_key]
    size = problem.sizes[level - 1]
    letter = "y" if level == 2 else "x"
    for label, value in problem.data[data_key].items():
        if label in labels:
            rows[labels.index(label)] = value
            continue
        found = re.fullmatch(rf"{letter}(\d?)\s*(<=|>=)\s*-?[\d.]+", label)
        assert found, label
        index = int(found.group(1) or 1) - 1
        rows[len(labels) + index] = value
    return rows, size


@pytest.mark.parametrize("name", ALL)
def test_follower_response_and_multipliers_at_the_published_solution(name):
    problem = bolib(name)
    x1, y = problem.solution
    result = quiet(nestopt.best_response, problem, [x1, problem.x0[1]])
    assert np.max(np.abs(result.xs[1] - y)) <= 1e-9 * max(1.0, np.max(np.abs(y)))
    rows, _ = _published_multipliers(problem, "multipliers_lower", "lower_constraints", 2)
    lam = result.multipliers[2]
    for row, value in rows.items():
        assert abs(abs(lam[row]) - abs(value)) <= 1e-7 * max(1.0, abs(value)), (row, lam, value)
    weak = result.weakly_active.get(2, ())
    assert len(result.active[2]) + len(weak) == len(problem.data["active_lower"])
    assert bool(weak) == bool(problem.data["weakly_active"])


# -- solving the published problems ------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in ALL if n not in WEAK])
def test_published_problems_are_solved_to_their_solution(name):
    problem = bolib(name)
    start = list(problem.x0)
    if name in KINK_STARTS:
        start[0] = np.array([5.0, 5.0])  # off the kink: see KINK_STARTS
    result = nestopt.solve(problem, start, options={"gtol": 1e-10})
    assert result.success, result.message
    for got, expected in zip(result.xs, problem.solution):
        assert np.max(np.abs(got - expected)) <= 1e-6 * max(1.0, np.max(np.abs(expected)))
    assert abs(result.fun - problem.data["F"]) <= 1e-6 * max(1.0, abs(problem.data["F"]))


@pytest.mark.parametrize("name", WEAK)
def test_solutions_on_a_kink_are_never_reported_as_clean_successes(name):
    problem = bolib(name)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        at_solution = nestopt.best_response(problem, [problem.solution[0], problem.x0[1]])
    degeneracy = [w for w in record if issubclass(w.category, nestopt.DegeneracyWarning)]
    assert degeneracy and "weakly active" in str(degeneracy[0].message)
    assert "level 2" in str(degeneracy[0].message)
    assert at_solution.weakly_active[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = nestopt.solve(problem, problem.x0)
    if result.success:  # only if it really got there
        for got, expected in zip(result.xs, problem.solution):
            assert np.max(np.abs(got - expected)) <= 1e-6
    else:
        assert result.status in (
            nestopt.Status.DEGENERATE,
            nestopt.Status.LINE_SEARCH_FAILED,
            nestopt.Status.SMALL_STEP,
        )


def test_the_top_level_interior_point_reports_leader_multipliers():
    problem = bolib("ShimizuAiyoshi1981Ex2")
    result = nestopt.solve(problem, problem.x0)
    assert result.success and result.optimizer == "interior_point"
    np.testing.assert_allclose(result.multipliers[1][:2], [10.0, 30.0], rtol=1e-9)
    np.testing.assert_allclose(result.multipliers[2], [20.0, 0.0], atol=1e-9)
    assert result.active == {2: ("bounds[0]",), 1: ("linear[0][0]", "linear[0][1]")}
    # Every per-level dictionary is keyed by every constrained level.
    assert result.weakly_active == {1: (), 2: ()}
    assert set(result.multipliers) == {1, 2}


def test_per_level_dictionaries_have_every_constrained_level():
    # y <= -0.5 binds (y* = x = 0.4 would break it); the bound is strictly active.
    rows = [nestopt.LinearConstraint(np.array([[0, 0, 1.0, 1.0]]), -np.inf, -0.5)]
    problem = _lower_with(rows)
    x = [np.array([0.4, 0.3]), np.zeros(2)]
    found = nestopt.best_response(problem, x)
    assert found.active == {2: ("linear[0][0]",)}
    assert found.weakly_active == {2: ()}
    assert set(found.multipliers) == {2} and found.multipliers[2][0] > 0
    result = nestopt.solve(problem, x)
    assert result.success
    assert set(result.multipliers) == set(result.active) == set(result.weakly_active) == {2}
    assert result.weakly_active[2] == ()


# -- constrained trilevel problems with closed-form optima ------------------------------


@pytest.mark.parametrize("which", ["equality", "bound"])
@pytest.mark.parametrize("optimizer", [None, "newton"])
def test_constrained_trilevel_closed_forms(which, optimizer):
    problem = constrained_trilevel(which)
    result = nestopt.solve(problem, problem.x0, optimizer=optimizer, options={"gtol": 1e-12})
    assert result.success, result.message
    for got, expected in zip(result.xs, problem.solution):
        assert np.max(np.abs(got - expected)) <= 1e-8
    for k in (2, 3):
        assert result.active[k], f"level {k} should have active constraints"


# -- hypergradients against the value function ---------------------------------------------


def ball(radius):
    """``|x_3|^2 <= radius^2``: a nonlinear constraint of the bottom level."""
    return nestopt.NonlinearConstraint(
        fun=lambda x1, x2, x3: np.array([x3 @ x3]),
        lb=-np.inf,
        ub=radius**2,
        jac=lambda x1, x2, x3: (None, None, 2 * x3[None, :]),
        hess=lambda x1, x2, x3, v: [
            [None] * 3,
            [None] * 3,
            [None, None, 2 * v[0] * np.eye(x3.size)],
        ],
        name="ball",
    )


def constrained_softplus(kind):
    base = softplus_levels(3, (2, 3, 3), seed=3, beta=2.0)
    levels = list(base.levels)
    if kind == "ball":
        levels[2] = dataclasses.replace(levels[2], constraints=[ball(0.3)])
    else:  # a bound and a coupled linear row active, one direction left free
        row = nestopt.LinearConstraint(np.array([[0, 0, 0.3, 0, 0.2, 1, 1, 0.0]]), -np.inf, -1.0)
        levels[2] = dataclasses.replace(
            levels[2], constraints=[row], bounds=nestopt.Bounds([-np.inf, 0.05, -np.inf], np.inf)
        )
    return nestopt.Problem(levels)


@pytest.mark.parametrize("kind", ["ball", "bound_and_coupled"])
def test_constrained_hypergradients_against_the_value_function(kind):
    problem = constrained_softplus(kind)
    x = [np.array([0.5, -0.4]), np.zeros(3), np.zeros(3)]
    response = nestopt.best_response(problem, x)
    expected = {"ball": {"ball[0]"}, "bound_and_coupled": {"linear[0][0]", "bounds[1]"}}[kind]
    assert set(response.active[3]) == expected
    exact = nestopt.check_hypergradient(problem, x, curvature="exact")
    assert exact.ok and exact.rel_error <= 1e-8
    first = nestopt.check_hypergradient(problem, x, curvature="first_order")
    assert first.rel_error >= 1e-5  # the curvature term matters here
    solved = nestopt.solve(problem, x)
    assert solved.success


@pytest.mark.parametrize("name", [n for n in ALL if n not in WEAK])
def test_bilevel_hypergradients_against_the_value_function(name):
    problem = bolib(name)
    x1 = problem.solution[0] + 1e-3
    report = quiet(nestopt.check_hypergradient, problem, [x1, problem.solution[1]])
    assert report.ok and report.rel_error <= 1e-8


# -- failures that end in their own status ----------------------------------------------------


def _lower_with(constraints=(), bounds=None):
    """f_2 = |y - x|^2 / 2 over y in R^2, leader f_1 = |y|^2 / 2 + |x - 1|^2 / 2."""
    lower = nestopt.Level(
        value=lambda x, y: 0.5 * (y - x) @ (y - x),
        grad=lambda x, y: (x - y, y - x),
        hess=lambda x, y: np.block([[np.eye(2), -np.eye(2)], [-np.eye(2), np.eye(2)]]),
        size=2,
        name="follower",
        constraints=constraints,
        bounds=bounds,
    )
    upper = nestopt.Level(
        value=lambda x, y: 0.5 * y @ y + 0.5 * (x - 1) @ (x - 1),
        grad=lambda x, y: (x - 1, y),
        hess=lambda x, y: np.eye(4),
        size=2,
    )
    return nestopt.Problem([upper, lower])


def test_an_infeasible_level_has_its_own_status():
    rows = [
        nestopt.LinearConstraint(np.array([[0, 0, 1.0, 1.0]]), 2.0, np.inf),
        nestopt.LinearConstraint(np.array([[0, 0, 1.0, 1.0]]), -np.inf, 1.0),
    ]
    problem = _lower_with(rows)
    with pytest.raises(nestopt.InfeasibleError, match="could not be satisfied") as info:
        nestopt.hypergradient(problem, [np.zeros(2), np.zeros(2)])
    assert info.value.level == 2 and info.value.status is nestopt.Status.INFEASIBLE
    with pytest.warns(nestopt.ConvergenceWarning):
        result = nestopt.solve(problem, [np.zeros(2), np.zeros(2)])
    assert result.status is nestopt.Status.INFEASIBLE and result.failed_level == 2


def test_dependent_active_constraints_lose_the_constraint_qualification():
    row = np.array([[0, 0, 1.0, 1.0]])
    problem = _lower_with([nestopt.LinearConstraint(row, -np.inf, -1.0)] * 2)
    with pytest.raises(nestopt.ConstraintQualificationError, match="LICQ") as info:
        nestopt.hypergradient(problem, [np.zeros(2), np.zeros(2)])
    assert info.value.status is nestopt.Status.CONSTRAINT_QUALIFICATION
    assert "linear[0][0]" in str(info.value) and "linear[1][0]" in str(info.value)


def test_lb_above_ub_is_refused_up_front():
    problem = _lower_with([nestopt.LinearConstraint(np.array([[0, 0, 1.0, 0]]), 1.0, 0.0)])
    with pytest.raises(ValueError, match="lb > ub"):
        nestopt.hypergradient(problem, [np.zeros(2), np.zeros(2)])


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda: nestopt.Bounds(np.inf, np.inf), "Bounds: every entry"),
        (lambda: nestopt.Bounds(-np.inf, -np.inf), "Bounds: every entry"),
        (lambda: nestopt.Bounds([0.0, -1.0], [1.0, -np.inf]), "Bounds: entry 1"),
        (
            lambda: nestopt.LinearConstraint(np.eye(4)[2:], np.inf, np.inf),
            "LinearConstraint: every entry",
        ),
        (lambda: nestopt.LinearConstraint(np.eye(4)[2:], [0.0, np.inf], np.inf), "entry 1"),
        (
            lambda: nestopt.NonlinearConstraint(
                lambda x, y: y, [-1.0, -np.inf], -np.inf, jac=lambda x, y: np.eye(4)[2:]
            ),
            "NonlinearConstraint: entry 0",
        ),
    ],
)
def test_an_infinite_bound_on_the_closed_side_is_refused_when_built(build, where):
    # lb = +inf or ub = -inf: no finite point meets the row (lb > ub is refused as well).
    with pytest.raises(ValueError, match=rf"{re.escape(where)} has lb = .*open side"):
        build()


def test_scipy_rows_with_an_infinite_closed_side_are_refused_naming_the_row():
    import scipy.optimize as so

    start = [np.zeros(2), np.zeros(2)]
    with pytest.raises(
        ValueError, match=r"bounds of level 2 \('follower'\): entry 1 has lb = -inf"
    ):
        nestopt.hypergradient(_lower_with(bounds=so.Bounds([-1, -np.inf], [1, -np.inf])), start)
    rows = so.LinearConstraint(np.eye(4)[2:], [-1.0, np.inf], np.inf)
    with pytest.raises(ValueError, match=r"level 2 \('follower'\): linear\[0\]\[1\] has lb = inf"):
        nestopt.hypergradient(_lower_with([rows]), start)


def test_a_nonlinear_constraint_written_for_the_other_convention_is_named():
    import scipy.optimize as so

    start = [np.zeros(2), np.zeros(2)]
    # SciPy's object with nestopt's per-level callables fun(x, y).
    theirs = so.NonlinearConstraint(
        lambda x, y: np.array([y @ y]), -np.inf, 1.0, jac=lambda x, y: np.zeros((1, 4))
    )
    with pytest.raises(TypeError, match=r"level 2 \('follower'\).*one flat\s+vector x"):
        nestopt.hypergradient(_lower_with([theirs]), start)
    # nestopt's object with SciPy's flat callable fun(z).
    ours = nestopt.NonlinearConstraint(
        lambda z: np.array([z[2:] @ z[2:]]), -np.inf, 1.0, jac=lambda z: np.zeros((1, 4))
    )
    with pytest.raises(TypeError, match=r"take the 2 per-level arrays"):
        nestopt.hypergradient(_lower_with([ours]), start)
    # Callables that take either (varargs) are used as their object says.
    either = so.NonlinearConstraint(
        lambda *z: np.array([z[0][2] ** 2]),
        -np.inf,
        0.01,
        jac=lambda *z: np.array([[0, 0, 2 * z[0][2], 0.0]]),
    )
    result = nestopt.best_response(_lower_with([either]), [np.array([0.4, 0.3]), np.zeros(2)])
    assert abs(result.xs[1][0]) <= 0.1 + 1e-12


def test_a_constraint_returning_nan_is_named():
    bad = nestopt.NonlinearConstraint(
        fun=lambda x, y: np.array([np.nan]),
        lb=-np.inf,
        ub=1.0,
        jac=lambda x, y: np.zeros((1, 4)),
        name="broken",
    )
    with pytest.raises(
        nestopt.NonFiniteError, match=r"level 2 \('follower'\), callable 'broken.fun'"
    ):
        nestopt.hypergradient(_lower_with([bad]), [np.zeros(2), np.zeros(2)])


def test_a_jacobian_of_the_wrong_shape_is_named():
    bad = nestopt.NonlinearConstraint(
        fun=lambda x, y: np.array([y @ y]), lb=-np.inf, ub=1.0, jac=lambda x, y: np.zeros((1, 3))
    )
    with pytest.raises(nestopt.OracleError, match=r"nonlinear\[0\].jac.*\(1, 4\)"):
        nestopt.hypergradient(_lower_with([bad]), [np.zeros(2), np.zeros(2)])


def test_a_nonlinear_constraint_needs_its_jacobian():
    with pytest.raises(TypeError, match="analytic jac"):
        nestopt.NonlinearConstraint(fun=lambda x, y: y, lb=0, ub=1)


# -- SciPy's objects and other backends -----------------------------------------------------


def test_scipy_constraint_objects_mean_what_they_mean_in_scipy():
    import scipy.optimize as so

    ours = _lower_with(
        [
            nestopt.LinearConstraint(np.array([[0, 0, 1.0, 1.0]]), -np.inf, -0.5),
            nestopt.NonlinearConstraint(
                fun=lambda x, y: np.array([y[0] ** 2]),
                lb=-np.inf,
                ub=0.01,
                jac=lambda x, y: np.array([[0, 0, 2 * y[0], 0.0]]),
                hess=lambda x, y, v: np.diag([0, 0, 2 * v[0], 0.0]),
            ),
        ],
        bounds=nestopt.Bounds(-1.0, 1.0),
    )
    theirs = _lower_with(
        [
            so.LinearConstraint(np.array([[0, 0, 1.0, 1.0]]), -np.inf, -0.5),
            so.NonlinearConstraint(
                lambda z: np.array([z[2] ** 2]),
                -np.inf,
                0.01,
                jac=lambda z: np.array([[0, 0, 2 * z[2], 0.0]]),
                hess=lambda z, v: np.diag([0, 0, 2 * v[0], 0.0]),
            ),
        ],
        bounds=so.Bounds(-1.0, 1.0),
    )
    x = [np.array([0.4, 0.3]), np.zeros(2)]
    a = nestopt.best_response(ours, x)
    b = nestopt.best_response(theirs, x)
    np.testing.assert_allclose(b.hypergrad, a.hypergrad, rtol=1e-12)
    np.testing.assert_allclose(b.xs[1], a.xs[1], rtol=1e-12)
    assert a.active[2] == b.active[2] and a.active[2]


def test_constrained_levels_run_on_array_api_strict():
    problem = bolib("MuuQuy2003Ex2")
    reference = nestopt.solve(problem, problem.x0, options={"gtol": 1e-10})
    with nestopt.backend("array_api_strict") as chosen:
        strict = bolib("MuuQuy2003Ex2")
        xp = chosen.xp
        result = nestopt.solve(strict, [xp.asarray(x) for x in problem.x0], options={"gtol": 1e-10})
    assert result.success
    assert relative_error(result.x, reference.x) <= 1e-9


def test_itd_refuses_constrained_lower_levels():
    problem = bolib("b_1998_05")
    with pytest.raises(NotImplementedError, match="implicit method"):
        nestopt.hypergradient(problem, problem.x0, method="itd", steps=5)


def test_check_derivatives_checks_constraint_jacobians_and_hessians():
    problem = bolib("Colson2002BIPA5")
    report = nestopt.check_derivatives(problem, [np.array([1.3]), np.array([0.4, 0.7])])
    assert report.ok
    assert any(name.endswith(".hess") for name in report.levels[1].errors)
    level = problem.levels[1]
    wrong = dataclasses.replace(
        level.constraints[0], jac=lambda x, y: 2.0 * level.constraints[0].jac(x, y)
    )
    broken = dataclasses.replace(level, constraints=[wrong, *level.constraints[1:]])
    bad = nestopt.check_derivatives(broken, [np.array([1.3]), np.array([0.4, 0.7])])
    assert not bad.ok and "jac" in bad.summary


def test_matrix_free_and_sparse_levels_take_bounds():
    # Both were refused before issue 24; tests/test_large_box.py checks their answers.
    sp = pytest.importorskip("scipy.sparse")
    eye = np.eye(2)
    K = np.block([[eye, -eye], [-eye, eye]])
    problem = _lower_with(bounds=nestopt.Bounds(np.zeros(2), np.full(2, np.inf)))
    start = [np.array([-1.0, 1.0]), np.zeros(2)]
    dense = nestopt.best_response(problem, start)
    for form in (
        {"hvp": lambda x, y, v: K @ v, "hess": None},
        {"hess": lambda x, y: sp.csr_matrix(K)},
    ):
        follower = dataclasses.replace(problem.levels[1], **form)
        large = nestopt.best_response(nestopt.Problem([problem.levels[0], follower]), start)
        np.testing.assert_allclose(large.xs[1], dense.xs[1], atol=1e-12)
        np.testing.assert_allclose(large.jacobians[2], dense.jacobians[2], atol=1e-10)
