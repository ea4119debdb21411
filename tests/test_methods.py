"""Method and optimizer objects, one vocabulary across entry points, and the bugs they fixed."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from helpers import relative_error

import nestopt
from nestopt.problems import quad, quad_reference, softplus_levels


def closed_form_gradient(problem, x1):
    ref = quad_reference(problem.data["Q"], problem.data["c"], problem.sizes)
    return ref["hessian"] @ x1 + ref["grad_at_zero"]


# -- the string forms are shorthands for the objects ------------------------------------


def test_strings_and_objects_give_identical_results():
    problem = softplus_levels(3, (2, 3, 2), seed=3, beta=2.0)
    xs = [np.array([0.4, -0.3]), np.zeros(3), np.zeros(2)]
    by_string = nestopt.best_response(problem, xs, curvature="first_order", linear_solver="lu")
    by_object = nestopt.best_response(
        problem, xs, nestopt.Implicit(curvature="first_order", linear_solver="lu")
    )
    np.testing.assert_array_equal(by_string.hypergrad, by_object.hypergrad)
    itd_string = nestopt.hypergradient(problem, xs, method="itd", steps=7, step_size=0.2)
    itd_object = nestopt.hypergradient(problem, xs, nestopt.Unrolled(steps=7, step_size=0.2))
    np.testing.assert_array_equal(itd_string, itd_object)


def test_method_objects_are_frozen_values():
    method = nestopt.Implicit(curvature="first_order")
    assert method == nestopt.Implicit(curvature="first_order")
    with pytest.raises(AttributeError):
        method.curvature = "exact"
    assert nestopt.Unrolled(steps=3) == nestopt.Unrolled(steps=3)


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"curvature": "first_order"}, "curvature"),
        ({"linear_solver": "lu"}, "linear_solver"),
        ({"level_options": {"tol": 1e-9}}, "level_options"),
        ({"level_options": {"nonsense": 1}}, "level_options"),
        ({"fd_step": 1e-4}, "fd_step"),
        ({"predict": False}, "predict"),
    ],
)
def test_itd_refuses_options_of_the_implicit_method(kwargs, says):
    # Issue 11: these were silently ignored with method='itd'.
    problem = quad(2, 2, seed=0)
    for call in (nestopt.best_response, nestopt.hypergradient):
        with pytest.raises(ValueError, match=f"{says}.*implicit method only"):
            call(problem, problem.x0, method="itd", steps=5, **kwargs)
    with pytest.raises(ValueError, match="implicit method only"):
        nestopt.solve(problem, problem.x0, method="itd", steps=5, **kwargs)


def test_keywords_beside_a_method_object_are_refused():
    problem = quad(2, 2, seed=0)
    with pytest.raises(ValueError, match="put them in the object"):
        nestopt.hypergradient(problem, problem.x0, nestopt.Implicit(), curvature="exact")
    with pytest.raises(ValueError, match="put them in the object"):
        nestopt.solve(problem, problem.x0, nestopt.Unrolled(steps=3), steps=4)


def test_bad_settings_fail_when_the_object_is_made():
    with pytest.raises(ValueError, match="exact, first_order"):
        nestopt.Implicit(curvature="second")
    with pytest.raises(ValueError, match="best, same"):
        nestopt.Implicit(newton_curvature="worst")
    with pytest.raises(ValueError, match="steps"):
        nestopt.Unrolled()
    with pytest.raises(ValueError, match="positive"):
        nestopt.Unrolled(steps=0)
    with pytest.raises(ValueError, match="positive"):
        nestopt.Unrolled(steps=3, step_size=-0.1)


def test_check_hypergradient_takes_the_same_method_forms():
    problem = softplus_levels(3, 2, seed=1, beta=2.0)
    by_object = nestopt.check_hypergradient(problem, problem.x0, nestopt.Implicit())
    by_string = nestopt.check_hypergradient(problem, problem.x0, curvature="exact")
    assert by_object.ok and by_string.ok
    assert by_object.rel_error == by_string.rel_error
    first = nestopt.check_hypergradient(problem, problem.x0, curvature="first_order")
    assert not first.ok


# -- issue 11 regressions -------------------------------------------------------------


def test_itd_on_four_levels_does_not_ask_for_exact_curvature():
    # Issue 11: solve(softplus_levels(4, 2), method="itd") raised the exact-curvature
    # NotImplementedError, although ITD never uses curvature.
    problem = softplus_levels(4, 2, seed=0)
    g = nestopt.hypergradient(problem, problem.x0, method="itd", steps=3)
    assert g.shape == (2,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.ConvergenceWarning)
        result = nestopt.solve(
            problem, problem.x0, method="itd", options={"steps": 3, "maxiter": 2}
        )
    assert result.method == "itd" and result.level_nit[1] > 0


@pytest.mark.parametrize("steps", [3, 5, 10, 40])
def test_itd_objective_does_not_depend_on_the_evaluation_history(steps):
    # Issue 11: ITD warm-started its unrolling from the last *trial* point, so the
    # objective changed between evaluations and L-BFGS stopped with
    # LINE_SEARCH_FAILED with warm_start=True only. The unrolled objective is now a
    # fixed function of x_1: both settings give the same run.
    problem = quad(3, 2, seed=0)
    runs = [
        nestopt.solve(problem, problem.x0, method="itd", steps=steps, options={"warm_start": w})
        for w in (True, False)
    ]
    assert runs[0].status == runs[1].status == nestopt.Status.SUCCESS
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    assert runs[0].level_solves[1] > 0 and runs[0].level_nit[2] > 0


def test_itd_solve_is_safe_while_another_thread_changes_the_global_backend():
    # Issue 11: ITD re-read the global backend at every evaluation, and crashed
    # with raw TypeErrors while another thread called set_backend.
    problem = quad(2, 3, seed=4, backend="numpy")
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            nestopt.set_backend("array_api_strict")
            nestopt.set_backend("numpy")

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        results = [
            nestopt.solve(problem, problem.x0, method="itd", steps=30, backend="numpy")
            for _ in range(5)
        ]
    finally:
        stop.set()
        flipper.join()
        nestopt.set_backend(None)
    assert all(r.success for r in results)
    assert all(np.array_equal(r.x, results[0].x) for r in results)


# -- optimizer objects --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, obj, options",
    [
        ("gd", nestopt.GradientDescent(step=0.5), {"step": 0.5}),
        ("adam", nestopt.Adam(lr=0.05), {"lr": 0.05}),
        ("lbfgs", nestopt.LBFGS(memory=3), {"memory": 3}),
    ],
)
def test_optimizer_objects_and_their_shorthands_agree(name, obj, options):
    problem = quad(2, 3, seed=1, backend="numpy")
    settings = {"gtol": 1e-6, "maxiter": 3000}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.ConvergenceWarning)
        a = nestopt.solve(problem, problem.x0, optimizer=obj, options=settings)
        b = nestopt.solve(problem, problem.x0, optimizer=name, options={**settings, **options})
    assert a.optimizer == b.optimizer == name
    np.testing.assert_array_equal(a.x, b.x)
    assert a.nit == b.nit


def test_optimizer_options_of_another_optimizer_are_refused():
    problem = quad(2, 2, seed=0, backend="numpy")
    with pytest.raises(ValueError, match="'lr' applies to optimizer='adam'"):
        nestopt.solve(problem, problem.x0, optimizer="lbfgs", options={"lr": 0.1})
    with pytest.raises(ValueError, match="memory"):
        nestopt.LBFGS(memory=0)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\)"):
        nestopt.Adam(beta1=1.0)


def test_an_optimizer_object_is_not_changed_by_a_run():
    problem = quad(2, 3, seed=2, backend="numpy")
    lbfgs = nestopt.LBFGS(memory=4)
    first = nestopt.solve(problem, problem.x0, optimizer=lbfgs)
    second = nestopt.solve(problem, problem.x0, optimizer=lbfgs)
    np.testing.assert_array_equal(first.x, second.x)
    assert first.nit == second.nit
    assert relative_error(first.x, problem.solution[0]) < 1e-6


def test_result_backend_is_spelled_as_get_backend_spells_it():
    problem = quad(2, 2, seed=0)
    assert nestopt.best_response(problem, problem.x0).backend == "numpy"
    with nestopt.backend("array_api_strict") as chosen:
        strict = quad(2, 2, seed=0)
        result = nestopt.solve(strict, strict.x0)
    assert result.backend == chosen.name == "array_api_strict"


def test_nit_is_an_int_everywhere():
    problem = quad(3, 2, seed=0)
    br = nestopt.best_response(problem, problem.x0)
    result = nestopt.solve(problem, problem.x0)
    assert isinstance(br.nit, int) and br.nit == sum(br.level_nit)
    assert isinstance(result.nit, int) and isinstance(result.level_nit, tuple)
