"""nestopt.solve against closed-form optima, constrained truth from SciPy, and its contract."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from helpers import relative_error

import nestopt
from nestopt.problems import quad, quad_reference


def closed_form(problem):
    return quad_reference(problem.data["Q"], problem.data["c"], problem.data["sizes"])


@pytest.fixture(scope="module")
def quad3():
    return quad(3, 50, seed=0, backend="numpy")


def test_reaches_closed_form_optimum_of_every_level(quad3):
    result = nestopt.solve(quad3, quad3.x0, options={"gtol": 1e-10})
    assert result.success and result.status is nestopt.Status.SUCCESS
    assert relative_error(result.x, quad3.solution[0]) <= 1e-8
    for k in (1, 2):
        assert relative_error(result.xs[k], quad3.solution[k]) <= 1e-8
    assert len(result.history["fun"]) == result.nit + 1
    assert result.history["grad_norm"][-1] <= 1e-10


@pytest.mark.parametrize(
    ("optimizer", "options", "tol"),
    [
        ("gd", {"gtol": 1e-7, "maxiter": 2000}, 1e-5),
        ("adam", {"gtol": 1e-5, "maxiter": 3000, "lr": 0.05}, 1e-3),
    ],
)
def test_first_order_optimizers_reach_the_optimum(optimizer, options, tol):
    problem = quad(2, 4, seed=1, backend="numpy")
    result = nestopt.solve(problem, problem.x0, optimizer=optimizer, options=options)
    assert result.success, result.message
    # gtol bounds the gradient; the error is at most gtol / lambda_min(F_1'') (~0.1 here).
    assert relative_error(result.x, problem.solution[0]) <= tol


def test_same_answer_on_array_api_strict(quad3):
    reference = nestopt.solve(quad3, quad3.x0, options={"gtol": 1e-10})
    with nestopt.backend("array_api_strict"):
        strict = quad(3, 50, seed=0)
        result = nestopt.solve(strict, strict.x0, options={"gtol": 1e-10})
    assert relative_error(result.x, reference.x) <= 1e-9


def test_box_with_optimum_on_the_boundary():
    from scipy.optimize import minimize

    problem = quad(2, 3, seed=2, backend="numpy")
    ref = closed_form(problem)
    free = problem.solution[0]
    lower = np.full(3, -np.inf)
    upper = free - 0.5  # every coordinate of the free optimum lies outside the box
    upper[1] = np.inf
    H, b = ref["hessian"], ref["grad_at_zero"]
    truth = minimize(
        lambda x: 0.5 * x @ H @ x + b @ x,
        np.minimum(np.zeros(3), upper),
        jac=lambda x: H @ x + b,
        method="L-BFGS-B",
        bounds=list(zip(lower, upper)),
        options={"gtol": 1e-14, "ftol": 1e-16},
    ).x
    result = nestopt.solve(problem, problem.x0, bounds=(lower, upper), options={"gtol": 1e-10})
    assert result.success
    assert np.all(result.x <= upper + 1e-15)
    assert np.any(np.isclose(result.x, upper))
    assert relative_error(result.x, truth) <= 1e-7


def test_bounds_as_pairs_and_scalars():
    problem = quad(2, 2, seed=3, backend="numpy")
    box = nestopt.Bounds([-0.1, -np.inf], [0.1, 0.05])
    boxed = nestopt.solve(problem, problem.x0, bounds=box)
    assert np.all(boxed.x <= np.array([0.1, 0.05]) + 1e-15)
    scalars = nestopt.solve(problem, problem.x0, bounds=(-0.1, 0.1))
    assert np.all(np.abs(scalars.x) <= 0.1 + 1e-15)
    three = quad(2, 3, seed=3, backend="numpy")
    pairs = nestopt.solve(three, three.x0, bounds=[(-0.1, 0.1), (None, 0.05), (0.0, None)])
    same = nestopt.solve(
        three, three.x0, bounds=nestopt.Bounds([-0.1, -np.inf, 0], [0.1, 0.05, np.inf])
    )
    np.testing.assert_array_equal(pairs.x, same.x)


@pytest.mark.parametrize(
    "bounds",
    [
        ([0.0, 2.0], [1.0, 3.0]),
        (np.array([0.0, 2.0]), np.array([1.0, 3.0])),
        [(-0.1, 0.1), (None, 0.05)],
    ],
    ids=["lists", "arrays", "pairs-with-none"],
)
def test_two_variable_pair_of_pairs_is_refused_as_ambiguous(bounds):
    # For d_1 = 2, ([0, 2], [1, 3]) is lower/upper arrays or two (lo, hi) pairs; the
    # two readings give different boxes, and once one of them was solved silently.
    problem = quad(2, 2, seed=3, backend="numpy")
    with pytest.raises(ValueError, match=r"reads two ways.*nestopt\.Bounds"):
        nestopt.solve(problem, problem.x0, bounds=bounds)
    result = nestopt.solve(problem, problem.x0, bounds=nestopt.Bounds([0.0, 2.0], [1.0, 3.0]))
    assert np.all((result.x >= [0.0, 2.0]) & (result.x <= [1.0, 3.0]))


def test_scipy_bounds_and_level_bounds_are_the_same_box():
    from scipy.optimize import Bounds as ScipyBounds

    problem = quad(2, 3, seed=2, backend="numpy")
    upper = problem.solution[0] - 0.5
    ours = nestopt.solve(problem, problem.x0, bounds=nestopt.Bounds(-np.inf, upper))
    scipys = nestopt.solve(problem, problem.x0, bounds=ScipyBounds(-np.inf, upper))
    top = dataclasses.replace(problem.levels[0], bounds=nestopt.Bounds(-np.inf, upper))
    on_level = nestopt.solve(nestopt.Problem([top, problem.levels[1]]), problem.x0)
    np.testing.assert_array_equal(ours.x, scipys.x)
    np.testing.assert_array_equal(ours.x, on_level.x)
    with pytest.raises(ValueError, match="give them once"):
        nestopt.solve(nestopt.Problem([top, problem.levels[1]]), problem.x0, bounds=(0, 1))
    with pytest.raises(ValueError, match="NaN"):
        nestopt.solve(problem, problem.x0, bounds=nestopt.Bounds(np.nan, 1.0))


def test_user_projection_onto_a_ball():
    from scipy.optimize import minimize

    problem = quad(2, 3, seed=4, backend="numpy")
    ref = closed_form(problem)
    H, b = ref["hessian"], ref["grad_at_zero"]
    radius = 0.5 * np.linalg.norm(problem.solution[0])

    def project(x):
        norm = np.linalg.norm(x)
        return x if norm <= radius else x * (radius / norm)

    truth = minimize(
        lambda x: 0.5 * x @ H @ x + b @ x,
        np.zeros(3),
        jac=lambda x: H @ x + b,
        method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda x: radius**2 - x @ x}],
        options={"ftol": 1e-15, "maxiter": 500},
    ).x
    result = nestopt.solve(
        problem,
        problem.x0,
        optimizer="gd",
        project=project,
        options={"gtol": 1e-9, "maxiter": 5000},
    )
    assert result.success, result.message
    assert np.linalg.norm(result.x) <= radius * (1 + 1e-12)
    assert relative_error(result.x, truth) <= 1e-6


def test_callback_can_stop_the_run():
    problem = quad(2, 3, seed=5, backend="numpy")
    seen = []

    def callback(intermediate):
        seen.append(intermediate.nit)
        if intermediate.nit == 2:
            raise StopIteration

    result = nestopt.solve(problem, problem.x0, callback=callback, options={"gtol": 1e-14})
    assert result.status is nestopt.Status.CALLBACK and not result.success
    assert seen == [1, 2] and result.nit == 2


def test_verbose_prints_one_line_per_iteration(capsys):
    problem = quad(2, 3, seed=6, backend="numpy")
    result = nestopt.solve(problem, problem.x0, verbose=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("iter")]
    assert len(lines) == result.nit


def test_silent_by_default_and_logs(capsys, caplog):
    problem = quad(2, 3, seed=6, backend="numpy")
    with caplog.at_level(logging.DEBUG, logger="nestopt"):
        result = nestopt.solve(problem, problem.x0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    iteration_records = [r for r in caplog.records if r.getMessage().startswith("iter")]
    assert len(iteration_records) == result.nit
    assert any("converged" in r.getMessage() for r in caplog.records)


def test_progress_bar_runs():
    pytest.importorskip("tqdm")
    problem = quad(2, 3, seed=6, backend="numpy")
    assert nestopt.solve(problem, problem.x0, progress=True).success


def test_max_iterations_is_a_reported_failure():
    problem = quad(2, 5, seed=7, backend="numpy")
    with pytest.warns(nestopt.ConvergenceWarning, match="maxiter"):
        result = nestopt.solve(problem, problem.x0, options={"maxiter": 1, "gtol": 1e-14})
    assert not result.success and result.status is nestopt.Status.MAX_ITER


def test_unsolvable_lower_level_is_a_status_not_a_crash():
    problem = quad(2, 2, seed=1, backend="numpy")
    lower = problem.levels[1]
    concave = dataclasses.replace(
        lower,
        value=lambda x1, x2: -lower.value(x1, x2),
        grad=lambda x1, x2: -lower.grad(x1, x2),
        hess=lambda x1, x2: -lower.hess(x1, x2),
        name="follower",
    )
    bad = nestopt.Problem([problem.levels[0], concave])
    with pytest.warns(nestopt.ConvergenceWarning):
        result = nestopt.solve(bad, problem.x0)
    assert not result.success
    assert result.status is nestopt.Status.NOT_POSITIVE_DEFINITE
    assert result.failed_level == 2
    assert "follower" in result.message and "ridge" in result.message


def test_inputs_untouched():
    problem = quad(2, 3, seed=8, backend="numpy")
    x0 = [np.ones(3), np.ones(3)]
    copies = [x.copy() for x in x0]
    result = nestopt.solve(problem, x0)
    assert all(np.array_equal(a, b) for a, b in zip(x0, copies))
    assert not any(np.shares_memory(a, b) for a, b in zip(x0, result.xs))


def test_option_errors_list_the_known_names():
    problem = quad(2, 2, backend="numpy")
    with pytest.raises(ValueError, match="maxiter, gtol"):
        nestopt.solve(problem, problem.x0, options={"max_iter": 3})
    with pytest.raises(ValueError, match="lbfgs, gd, adam"):
        nestopt.solve(problem, problem.x0, optimizer="bfgs")
    with pytest.raises(ValueError, match="either bounds or project"):
        nestopt.solve(problem, problem.x0, bounds=(0, 1), project=lambda x: x)


def test_lbfgs_needs_a_value():
    problem = quad(2, 2, backend="numpy")
    top = dataclasses.replace(problem.levels[0], value=None)
    valueless = nestopt.Problem([top, problem.levels[1]])
    with pytest.raises(ValueError, match="value"):
        nestopt.solve(valueless, problem.x0, optimizer="lbfgs")
    result = nestopt.solve(
        valueless, problem.x0, options={"step": 0.5, "gtol": 1e-8, "maxiter": 3000}
    )
    assert result.optimizer == "gd" and result.success


def test_itd_method_reaches_the_optimum():
    problem = quad(2, 4, seed=9, backend="numpy")
    result = nestopt.solve(problem, problem.x0, method="itd", options={"steps": 200, "gtol": 1e-9})
    assert result.success and result.method == "itd"
    # ITD with 200 steps is within ~1e-12 of the exact hypergradient on this problem.
    assert relative_error(result.x, problem.solution[0]) <= 1e-7


def test_result_repr_and_plot():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import nestopt.plot

    problem = quad(2, 3, seed=10, backend="numpy")
    result = nestopt.solve(problem, problem.x0)
    text = repr(result)
    assert "success: True" in text and "message:" in text
    ax = nestopt.plot.convergence(result)
    assert len(ax.lines[0].get_xdata()) == result.nit + 1
    plt.close("all")


# -- the quartic of Giovannelli, Kent & Vicente: two branches, one maximum between ---------


@pytest.mark.parametrize("curvature", ["exact", "first_order"])
def test_quartic_both_curvature_modes_end_at_the_optimum(curvature):
    from nestopt.problems import gkv_quartic

    problem = gkv_quartic(backend="numpy")
    result = nestopt.solve(problem, problem.x0, curvature=curvature)
    assert result.success
    # On the branch z = x + y the lowest response is affine in (x, y), so the
    # response-curvature term vanishes and first_order ends where exact does.
    assert abs(float(result.x[0]) + 6 / 11) <= 1e-6
    z = float(result.xs[2][0])
    assert abs(z - float(result.xs[0][0] + result.xs[1][0])) <= 1e-9


def test_quartic_lower_start_on_the_maximum_is_reported_not_accepted():
    from nestopt.problems import gkv_quartic

    problem = gkv_quartic(backend="numpy")
    x, y = -0.4, -0.2
    # z = (x + y) / 2 is the maximum between the minimizers z = 0 and z = x + y:
    # the gradient vanishes there, and a plain warm start that lands on it must
    # not be taken for a solution.
    with pytest.raises(nestopt.NotPositiveDefiniteError, match="smallest eigenvalue") as info:
        nestopt.best_response(problem, [np.array([x]), np.array([y]), np.array([(x + y) / 2])])
    assert info.value.level == 3


def test_predicted_starts_save_newton_steps():
    problem = quad(3, 20, seed=12, backend="numpy")
    predicted = nestopt.solve(problem, problem.x0, options={"gtol": 1e-8})
    plain = nestopt.solve(problem, problem.x0, options={"gtol": 1e-8, "predict": False})
    assert predicted.success and plain.success
    # gtol 1e-8 over lambda_min(F_1'') ~ 0.1 bounds the distance between the two.
    assert relative_error(predicted.x, plain.x) <= 1e-6
    # Responses are affine: the prediction is exact, so after the first solve the
    # lower levels need no Newton step; plain warm starts need one per evaluation.
    assert predicted.level_nit[2] == 1
    assert plain.level_nit[2] > 5 * predicted.level_nit[2]


def test_a_users_own_optimizer_object_is_accepted():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class FixedStep:
        step: float = 0.5
        name: str = "fixed_step"

        def init(self, point):
            return 0

        def update(self, xp, state, point, evaluate, project, box=None):
            return evaluate(project(point.x - self.step * point.grad)), state + 1

    problem = quad(2, 3, seed=0)
    result = nestopt.solve(problem, problem.x0, optimizer=FixedStep(), options={"maxiter": 2000})
    assert result.success, result.message
    expected = closed_form(problem)["solution"][0]
    assert relative_error(result.x, expected) <= 1e-5
    with pytest.raises(ValueError, match="your own with name, init and update"):
        nestopt.solve(problem, problem.x0, optimizer=object())
