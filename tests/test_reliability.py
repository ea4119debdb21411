"""Never a wrong answer marked as success (issue 13): each case that once returned one."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from helpers import relative_error

import nestopt
from nestopt import Status
from nestopt.problems import quad, quad_reference, softplus_levels


def readme_problem(scale: float = 1.0, hess_lower=None) -> nestopt.Problem:
    """README's bilevel problem with f_2 = s/2 (x_2 - x_1)^2: x_2* = x_1 for every s > 0."""
    lower = nestopt.Level(
        value=lambda x1, x2: 0.5 * scale * float((x2 - x1) @ (x2 - x1)),
        grad=lambda x1, x2: scale * np.concatenate([x1 - x2, x2 - x1]),
        hess=hess_lower or (lambda x1, x2: scale * np.array([[1.0, -1.0], [-1.0, 1.0]])),
        size=1,
    )
    upper = nestopt.Level(
        value=lambda x1, x2: 0.5 * float((x1 - 1) @ (x1 - 1) + x2 @ x2),
        grad=lambda x1, x2: np.concatenate([x1 - 1.0, x2]),
        hess=lambda x1, x2: np.eye(2),
        size=1,
    )
    return nestopt.Problem([upper, lower])


def scaled(problem, factors):
    """``problem`` with level k's objective multiplied by ``factors[k - 1]``."""
    levels = []
    for level, c in zip(problem.levels, factors):
        levels.append(
            dataclasses.replace(
                level,
                value=lambda *xs, f=level.value, c=c: c * f(*xs),
                grad=lambda *xs, f=level.grad, c=c: c * f(*xs),
                hess=lambda *xs, f=level.hess, c=c: c * f(*xs),
                hess_dir=None
                if level.hess_dir is None
                else (lambda *a, f=level.hess_dir, c=c: c * f(*a)),
            )
        )
    return nestopt.Problem(levels)


# -- 1. tolerances invariant to the objective's scale ---------------------------------


@pytest.mark.parametrize("s", [1.0, 1e-11, 1e-14, 1e-20, 1e12])
def test_lower_level_tolerance_does_not_depend_on_its_scale(s):
    problem = readme_problem(scale=s)
    x = [np.array([2.0]), np.array([0.0])]
    np.testing.assert_allclose(nestopt.hypergradient(problem, x), [3.0], rtol=1e-12)
    result = nestopt.solve(problem, x)
    assert result.success
    np.testing.assert_allclose(result.x, [0.5], rtol=1e-8)


def test_check_hypergradient_does_not_share_the_failure_it_checks():
    # Its reference re-solves the lower levels to rounding, whatever tol the run uses:
    # a loose tol in the run is caught (once, a tiny-scale level fooled both).
    problem = readme_problem(scale=1e-12)
    x = [np.array([2.0]), np.array([0.0])]
    good = nestopt.check_hypergradient(problem, x)
    assert good.ok and abs(float(good.finite_difference[0]) - 3.0) < 1e-8
    loose = nestopt.check_hypergradient(problem, x, level_options={"maxiter": 0, "tol": 10.0})
    assert not loose.ok and abs(float(loose.finite_difference[0]) - 3.0) < 1e-8


@pytest.mark.parametrize("exponent", [-12, -11, -10, 10, 12])
def test_random_quadratics_with_a_tiny_or_huge_lower_level(exponent):
    base = quad(3, (2, 3, 2), seed=abs(exponent))
    ref = quad_reference(base.data["Q"], base.data["c"], base.sizes)
    x1 = np.array([0.3, -0.4])
    truth = ref["hessian"] @ x1 + ref["grad_at_zero"]
    for k in (2, 3):
        factors = [1.0, 1.0, 1.0]
        factors[k - 1] = 10.0**exponent
        g = nestopt.hypergradient(scaled(base, factors), [x1, np.zeros(3), np.zeros(2)])
        assert relative_error(g, truth) <= 1e-9


def test_a_whole_problem_scaled_by_1e_minus_150():
    base = quad(3, 2, seed=5)
    tiny = scaled(base, [1e-150] * 3)
    result = nestopt.solve(tiny, base.x0)
    assert result.success
    assert relative_error(result.x, base.solution[0]) <= 1e-6


def test_top_level_gtol_is_relative_to_the_start():
    base = quad(2, 3, seed=7)
    for c in (1e-12, 1.0, 1e12):
        result = nestopt.solve(scaled(base, [c, 1.0]), base.x0)
        assert result.success
        assert relative_error(result.x, base.solution[0]) <= 1e-5
        history = result.history["grad_norm"]
        assert history[-1] <= 1e-6 * history[0]


# -- 2. stalls at rounding ---------------------------------------------------------------


def test_variables_of_size_1e6_to_1e8_converge_without_burning_iterations():
    rng = np.random.default_rng(0)
    d = 4
    Q2 = np.diag(np.linspace(1.0, 10.0, 2 * d))  # condition 10
    center = 10.0 ** rng.uniform(6, 8, d)

    def grad2(x1, x2):
        g = Q2 @ np.concatenate([x1 - center, x2 - x1])
        return np.concatenate([np.zeros(d), g[d:]])

    def hess2(x1, x2):
        H = np.zeros((2 * d, 2 * d))
        H[d:, d:] = Q2[d:, d:]
        H[d:, :d] = H[:d, d:] = -Q2[d:, d:]
        return H

    lower = nestopt.Level(grad=grad2, hess=hess2, size=d)
    upper = nestopt.Level(
        grad=lambda x1, x2: np.concatenate([x1 - center, x2 - center]),
        hess=lambda x1, x2: np.eye(2 * d),
        value=lambda x1, x2: (
            0.5 * float((x1 - center) @ (x1 - center) + (x2 - center) @ (x2 - center))
        ),
        size=d,
    )
    problem = nestopt.Problem([upper, lower])
    start = [center * 0.9, center * 0.5]
    result = nestopt.best_response(problem, start, level_options={"maxiter": 1000})
    assert result.level_nit[1] <= 3
    np.testing.assert_allclose(result.xs[1], start[0], rtol=1e-14)


# -- 3. a hess that reuses its output buffer -----------------------------------------------


def test_reused_hessian_buffer_keeps_the_exact_curvature_exact():
    problem = softplus_levels(3, (2, 3, 2), seed=2, beta=3.0)
    levels = list(problem.levels)
    bottom = levels[2]
    buffer = np.empty((7, 7))

    def hess_into_buffer(*xs):
        buffer[...] = bottom.hess(*xs)
        return buffer

    levels[2] = dataclasses.replace(bottom, hess=hess_into_buffer, hess_dir=None, hess_rows=False)
    reused = nestopt.Problem(levels)
    x = [np.array([0.4, -0.7]), np.zeros(3), np.zeros(2)]
    fresh = dataclasses.replace(bottom, hess_dir=None, hess_rows=False)
    reference = nestopt.hypergradient(nestopt.Problem([*levels[:2], fresh]), x)
    g = nestopt.hypergradient(reused, x)
    assert relative_error(g, reference) <= 1e-12
    first = nestopt.hypergradient(reused, x, curvature="first_order")
    assert relative_error(first, reference) > 1e-4  # the term matters here


# -- 5. a small step is a stop, not a success -----------------------------------------------


@pytest.mark.parametrize(
    "optimizer, options",
    [("gd", {"step": 1e-13, "maxiter": 20}), ("adam", {"lr": 1e-9, "maxiter": 20})],
)
def test_small_steps_of_fixed_step_methods_are_not_success(optimizer, options):
    problem = quad(2, 3, seed=1)
    top = dataclasses.replace(problem.levels[0], value=None)  # gd: fixed step
    valueless = nestopt.Problem([top, problem.levels[1]])
    with pytest.warns(nestopt.ConvergenceWarning):
        result = nestopt.solve(valueless, problem.x0, optimizer=optimizer, options=options)
    assert not result.success
    assert result.status in (Status.SMALL_STEP, Status.MAX_ITER)
    assert result.grad_norm > 1e-3


# -- 6. LU and least squares no longer accept maxima ---------------------------------------------


@pytest.mark.parametrize("linear_solver", ["lu", "lstsq"])
def test_lu_and_lstsq_refuse_a_concave_lower_level(linear_solver):
    problem = quad(2, 2, seed=1)
    lower = problem.levels[1]
    concave = dataclasses.replace(
        lower,
        value=lambda *xs: -lower.value(*xs),
        grad=lambda *xs: -lower.grad(*xs),
        hess=lambda *xs: -lower.hess(*xs),
    )
    bad = nestopt.Problem([problem.levels[0], concave])
    with pytest.raises(nestopt.NotPositiveDefiniteError, match="not a minimum") as info:
        nestopt.hypergradient(bad, problem.x0, linear_solver=linear_solver)
    assert info.value.level == 2
    with pytest.warns(nestopt.ConvergenceWarning):
        result = nestopt.solve(bad, problem.x0, linear_solver=linear_solver)
    assert result.status is Status.NOT_POSITIVE_DEFINITE and not result.success


# -- 7. followers on a local branch -----------------------------------------------------------


def mirrlees() -> nestopt.Problem:
    """BOLIB's Mirrlees (1999): min (x - 2)^2 + (y - 1)^2 over x, with y a minimizer of
    -x e^{-(y+1)^2} - e^{-(y-1)^2} (two minima near y = -1 and y = 1)."""

    def f2_parts(x, y):
        a, b = np.exp(-((y + 1) ** 2)), np.exp(-((y - 1) ** 2))
        return a, b

    def value2(x1, x2):
        a, b = f2_parts(x1[0], x2[0])
        return -x1[0] * a - b

    def grad2(x1, x2):
        x, y = x1[0], x2[0]
        a, b = f2_parts(x, y)
        return np.array([-a, 2 * x * (y + 1) * a + 2 * (y - 1) * b])

    def hess2(x1, x2):
        x, y = x1[0], x2[0]
        a, b = f2_parts(x, y)
        yy = 2 * x * a * (1 - 2 * (y + 1) ** 2) + 2 * b * (1 - 2 * (y - 1) ** 2)
        xy = 2 * (y + 1) * a
        return np.array([[0.0, xy], [xy, yy]])

    lower = nestopt.Level(value=value2, grad=grad2, hess=hess2, size=1, name="follower")
    upper = nestopt.Level(
        value=lambda x1, x2: float((x1[0] - 2) ** 2 + (x2[0] - 1) ** 2),
        grad=lambda x1, x2: np.array([2 * (x1[0] - 2), 2 * (x2[0] - 1)]),
        hess=lambda x1, x2: 2.0 * np.eye(2),
        size=1,
    )
    return nestopt.Problem([upper, lower])


def test_check_responses_finds_a_follower_on_a_local_branch():
    problem = mirrlees()
    result = nestopt.solve(problem, [np.array([2.0]), np.array([1.0])])
    assert result.success  # locally: a stationary leader on the follower's branch y ~ 1
    assert result.fun < 0.1  # far below the true optimum ~1.0: the follower would deviate
    report = nestopt.check_responses(problem, result, starts=12, spread=2.0)
    assert not report.ok
    worst = max(report.deviations, key=lambda d: d["gap"])
    assert worst["level"] == 2 and float(worst["x_found"][0]) < 0  # the other branch
    assert "level 2 ('follower')" in report.summary
    # At x = 0.5 the branch y ~ 1 is the follower's global minimum: no start does better.
    good = nestopt.check_responses(
        problem, [np.array([0.5]), np.array([1.0])], starts=12, spread=2.0
    )
    assert good.ok, good.summary


# -- 8. nothing private escapes -----------------------------------------------------------------


def test_a_block_no_shift_can_make_positive_definite_is_a_nestopt_error():
    huge = nestopt.Level(
        grad=lambda x1, x2: np.concatenate([np.zeros(1), 1e40 * x2[::-1]]),
        hess=lambda x1, x2: np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1e40], [0.0, 1e40, 0.0]]),
        size=2,
    )
    upper = nestopt.Level(
        grad=lambda x1, x2: np.concatenate([x1, x2]), hess=lambda *xs: np.eye(3), size=1
    )
    problem = nestopt.Problem([upper, huge])
    with pytest.raises(nestopt.NestoptError) as info:
        nestopt.hypergradient(problem, [np.ones(1), np.ones(2)])
    assert info.value.level == 2 and info.value.status is not None
    with pytest.warns(nestopt.ConvergenceWarning):
        result = nestopt.solve(problem, [np.ones(1), np.ones(2)])
    assert not result.success and result.failed_level == 2


def test_nan_hessian_with_check_finite_off_is_a_nestopt_error():
    problem = quad(2, 2, seed=0)
    lower = dataclasses.replace(
        problem.levels[1], hess=lambda *xs: np.full((4, 4), np.nan), quadratic=False
    )
    bad = nestopt.Problem([problem.levels[0], lower])
    with pytest.raises(nestopt.NestoptError):
        nestopt.hypergradient(bad, problem.x0, check_finite=False)
    with pytest.warns(nestopt.ConvergenceWarning):
        result = nestopt.solve(bad, problem.x0, check_finite=False)
    assert not result.success


# -- 9. dtypes: supported end to end, or refused up front ----------------------------------------


@pytest.mark.parametrize(
    "start, says",
    [
        (np.zeros(2, dtype=np.float16), "float16"),
        (np.zeros(2, dtype=np.complex128), "complex128"),
        (np.zeros(2, dtype=np.longdouble), "float128"),
        (["2.0", "1.0"], "str"),
        (np.array(["a", "b"]), "<U1"),
    ],
    ids=["float16", "complex", "longdouble", "strings", "string-array"],
)
def test_unsupported_dtypes_are_refused_up_front(start, says):
    problem = quad(2, 2, seed=0)
    if says == "float128" and np.dtype(np.longdouble).itemsize == 8:
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(TypeError, match="float32 or float64") as info:
        nestopt.hypergradient(problem, [start, np.zeros(2)])
    assert "level 1" in str(info.value)


def test_integer_starts_run_in_float64():
    problem = quad(2, 2, seed=0)
    g = nestopt.hypergradient(problem, [np.array([1, 2]), np.array([0, 0])])
    assert g.dtype == np.float64


# -- 10. precise messages --------------------------------------------------------------------------


def test_ill_conditioned_float32_block_is_called_numerically_singular():
    H = np.diag([1.0, 1e-7]).astype(np.float32)
    lower = nestopt.Level(
        grad=lambda x1, x2: np.concatenate([np.zeros(1, np.float32), H @ x2 - x1[0]]),
        hess=lambda x1, x2: np.block(
            [[np.zeros((1, 1)), -np.ones((1, 2))], [-np.ones((2, 1)), H]]
        ).astype(np.float32),
        size=2,
    )
    upper = nestopt.Level(
        grad=lambda x1, x2: np.concatenate([x1, x2]),
        hess=lambda *xs: np.eye(3, dtype=np.float32),
        size=1,
    )
    problem = nestopt.Problem([upper, lower])
    with pytest.raises(nestopt.LinearSolveError, match="numerically singular in float32"):
        nestopt.hypergradient(problem, [np.ones(1, np.float32), np.zeros(2, np.float32)])


def test_zero_curvature_at_the_start_is_named():
    # f_2 = x_2^4 / 4 - x_1 x_2 started at x_2 = 0, where f_2'' = 0.
    lower = nestopt.Level(
        grad=lambda x1, x2: np.concatenate([-x2, x2**3 - x1]),
        hess=lambda x1, x2: np.array([[0.0, -1.0], [-1.0, 3 * x2[0] ** 2]]),
        size=1,
    )
    upper = nestopt.Level(
        grad=lambda x1, x2: np.concatenate([x1, x2]), hess=lambda *xs: np.eye(2), size=1
    )
    with pytest.raises(nestopt.NotPositiveDefiniteError, match="zero curvature") as info:
        nestopt.hypergradient(nestopt.Problem([upper, lower]), [np.ones(1), np.zeros(1)])
    assert "x1=[1]" in str(info.value)


# -- 11. options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, error, says",
    [
        ({"gtol": float("nan")}, ValueError, "gtol must be finite"),
        ({"gtol": -1.0}, ValueError, "gtol must be non-negative"),
        ({"gtol": "1e-6"}, TypeError, "gtol must be a real number"),
        ({"maxiter": 2.5}, ValueError, "maxiter"),
        ({"max_time": 0.0}, ValueError, "max_time must be positive"),
    ],
)
def test_bad_solve_options_are_refused(options, error, says):
    problem = quad(2, 2, seed=0)
    with pytest.raises(error, match=says):
        nestopt.solve(problem, problem.x0, options=options)


def test_level_sizes_of_numpy_integers_are_accepted():
    level = quad(2, 3, seed=0).levels[1]
    assert nestopt.Level(grad=level.grad, hess=level.hess, size=np.int64(3)).size == 3


def test_masked_hessian_is_refused_with_a_message():
    problem = quad(2, 2, seed=0)
    lower = dataclasses.replace(problem.levels[1], hess=lambda *xs: np.ma.masked_array(np.eye(4)))
    with pytest.raises(nestopt.OracleTypeError, match="masked array"):
        nestopt.hypergradient(nestopt.Problem([problem.levels[0], lower]), problem.x0)


def test_torch_start_that_requires_grad_is_refused():
    torch = pytest.importorskip("torch")
    with nestopt.backend("torch"):
        problem = quad(2, 2, seed=0)
        start = [
            torch.zeros(2, dtype=torch.float64, requires_grad=True),
            torch.zeros(2, dtype=torch.float64),
        ]
        with pytest.raises(TypeError, match="detach"):
            nestopt.hypergradient(problem, start)


# -- 12. the environment ---------------------------------------------------------------------------


def test_bad_device_in_the_environment_names_nestopt_device():
    code = "import nestopt; nestopt.get_backend()"
    env = {"NESTOPT_BACKEND": "numpy", "NESTOPT_DEVICE": "tpu:0", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "NESTOPT_DEVICE" in out.stderr and "not understood by backend 'numpy'" in out.stderr


def test_each_backend_parses_its_own_devices():
    with pytest.raises(ValueError, match="not understood by backend 'torch'"):
        nestopt.get_backend("torch", device="device1")
    assert nestopt.get_backend("array_api_strict", device="device1").device == "device1"


# -- 13. messages ---------------------------------------------------------------------------


def test_nan_message_gives_the_point():
    problem = quad(2, 2, seed=0)
    lower = dataclasses.replace(problem.levels[1], grad=lambda *xs: np.full(4, np.nan))
    with pytest.raises(nestopt.NonFiniteError, match=r"at \(x1=\[0\.25, -1\], x2=\[0, 0\]\)"):
        nestopt.hypergradient(
            nestopt.Problem([problem.levels[0], lower]), [np.array([0.25, -1.0]), np.zeros(2)]
        )


def test_check_derivatives_names_levels_and_takes_float32():
    problem = quad(2, 2, seed=0, dtype=np.float32)
    report = nestopt.check_derivatives(problem, [np.ones(2, np.float32), np.ones(2, np.float32)])
    assert report.ok, report.summary
    bad = dataclasses.replace(problem.levels[1], grad=lambda *xs: 2 * problem.levels[1].grad(*xs))
    broken = nestopt.check_derivatives(
        nestopt.Problem([problem.levels[0], bad]), [np.ones(2, np.float32)] * 2
    )
    assert not broken.ok and broken.summary.splitlines()[1].startswith("level 2: MISMATCH")


def test_check_derivatives_with_too_few_arrays_says_what_xs_must_hold():
    level = quad(2, 2, seed=0).levels[1]
    with pytest.raises(nestopt.OracleError, match="one array per level"):
        nestopt.check_derivatives(level, [np.zeros(2)])


def test_check_hypergradient_in_float32_does_not_warn_about_itself():
    problem = quad(2, 2, seed=0, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = nestopt.check_hypergradient(
            problem, [np.ones(2, np.float32), np.zeros(2, np.float32)]
        )
    assert report.ok


def test_problem_of_one_level_object_says_to_pass_a_list():
    level = quad(2, 2, seed=0).levels[0]
    with pytest.raises(TypeError, match=r"list of Level objects"):
        nestopt.Problem(level)


# -- 14. long runs --------------------------------------------------------------------------


def test_max_time_stops_with_its_own_status():
    problem = softplus_levels(3, 3, seed=0)
    levels = list(problem.levels)
    slow = levels[2]

    def grad(*xs):
        time.sleep(0.01)
        return slow.grad(*xs)

    levels[2] = dataclasses.replace(slow, grad=grad)
    started = time.perf_counter()
    with pytest.warns(nestopt.ConvergenceWarning, match="max_time"):
        result = nestopt.solve(nestopt.Problem(levels), problem.x0, options={"max_time": 0.05})
    assert result.status is Status.MAX_TIME and not result.success
    assert time.perf_counter() - started < 2.0


def test_exploding_inner_work_warns_once():
    # The rule of solve's watcher, on scripted inner-iteration counts: one outer
    # iteration costing more than 20 times the median before (and over 100) warns.
    from nestopt._methods.run import start_run
    from nestopt._solve.loop import Loop as _Loop

    problem = quad(2, 2, seed=0)
    loop = _Loop(start_run(problem, problem.x0, "implicit", {}), None, None, None,
                 {"maxiter": 10}, 0.0, None)  # fmt: skip
    counts = [0, 3, 6, 9, 12, 500, 1000]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for total in counts:
            loop.history["inner_nit"].append((0, total))
            if len(loop.history["inner_nit"]) > 1:
                loop._watch_work()
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and "488 lower-level iterations against a median of 3" in messages[0]
