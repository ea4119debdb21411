"""solve_many and multistart: order, equality with serial solves, failures, Dask, multi-start.

The truth for every parallel result is `nestopt.solve` run here, serially, on the same
scenario. The solves are deterministic (the same operations on the same float64 inputs;
the matrices are at most 6 x 6, below any threaded BLAS kernel), so the results must be
equal bit for bit, not merely close.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import nestopt
from nestopt.problems import quad, softplus_levels, stackelberg_market

joblib = pytest.importorskip("joblib")


def assert_identical(result, expected, path="result"):
    """Every field equal, exactly; the ``time`` entries (which differ run to run) excepted."""
    if isinstance(expected, dict):
        keys = set(expected) - {"time"}
        assert keys <= set(result), f"{path}: missing {sorted(keys - set(result))}"
        for key in keys:
            assert_identical(result[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(result) == len(expected), path
        for i, (got, want) in enumerate(zip(result, expected)):
            assert_identical(got, want, f"{path}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert isinstance(result, np.ndarray), f"{path}: {type(result).__name__}"
        assert result.dtype == expected.dtype and result.shape == expected.shape, path
        assert np.array_equal(result, expected), f"{path}: {result} != {expected}"
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(result), path
    else:
        assert result == expected, f"{path}: {result!r} != {expected!r}"


def serial(problem, x0, **options):
    return nestopt.solve(problem, x0, **options)


def closure_problem(shift):
    """A bilevel problem made of lambdas over local variables (pickled by value)."""
    target = np.array([shift, -shift])
    weight = 1.0 + shift**2

    lower = nestopt.Level(
        grad=lambda x, y: (x - y, y - x + weight * (y - target)),
        hess=lambda x, y: [[np.eye(2), -np.eye(2)], [-np.eye(2), (1.0 + weight) * np.eye(2)]],
        size=2,
        quadratic=True,
    )
    upper = nestopt.Level(
        grad=lambda x, y: (x - 1.0, y),
        hess=lambda x, y: [[np.eye(2), None], [None, np.eye(2)]],
        value=lambda x, y: 0.5 * (x - 1.0) @ (x - 1.0) + 0.5 * y @ y,
        size=2,
        quadratic=True,
    )
    return nestopt.problems.KnownProblem([upper, lower], x0=(np.zeros(2), np.zeros(2)))


def test_import_nestopt_imports_no_parallel_library():
    code = (
        "import sys, nestopt\n"
        "heavy = ['joblib', 'loky', 'dask', 'distributed', 'threadpoolctl', 'tqdm']\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NESTOPT_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "\n"


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_starts_come_back_in_order_equal_to_serial_solves(n_jobs):
    problem = softplus_levels(3, 2, seed=1)
    starts = [tuple(x + scale for x in problem.x0) for scale in (0.0, 0.5, -0.5, 1.0, -1.0, 2.0)]
    results = nestopt.solve_many(problem, starts, n_jobs=n_jobs)
    assert len(results) == len(starts)
    assert len({r.nit for r in results}) > 1, "the starts should differ in their paths"
    for result, start in zip(results, starts):
        assert result.success
        assert_identical(result, serial(problem, start))
        assert result.warnings == [] and result.traceback is None


def test_problem_list_uses_each_problems_own_start():
    problems = [stackelberg_market(3, seed) for seed in range(4)]
    tight = {"gtol": 1e-10}
    results = nestopt.solve_many(problems, n_jobs=2, options=tight)
    for result, problem in zip(results, problems):
        assert_identical(result, serial(problem, problem.x0, options=tight))
        np.testing.assert_allclose(result.x, problem.solution[0], rtol=1e-8)
    # Plain Problems (no x0 of their own) with the starts given: the same results.
    plain = [nestopt.Problem(problem.levels) for problem in problems]
    again = nestopt.solve_many(plain, [p.x0 for p in problems], n_jobs=1, options=tight)
    for result, expected in zip(again, results):
        assert_identical(result, expected)


def test_closure_factory_pickles_and_solves_in_workers():
    shifts = [0.0, 0.5, 1.0, 2.0]
    results = nestopt.solve_many(closure_problem, params=shifts, n_jobs=2)
    for result, shift in zip(results, shifts):
        assert_identical(result, serial(closure_problem(shift), closure_problem(shift).x0))
        # y*(x) = (x + w t) / (1 + w); F = |x - 1|^2/2 + |y*|^2/2 is minimal where
        # (x - 1) + (x + w t) / (1 + w)^2 = 0.
        w, t = 1.0 + shift**2, np.array([shift, -shift])
        x_star = (1.0 - w * t / (1.0 + w) ** 2) / (1.0 + 1.0 / (1.0 + w) ** 2)
        np.testing.assert_allclose(result.x, x_star, rtol=1e-7, atol=1e-9)


def test_one_closure_problem_many_starts_with_explicit_starts():
    problem = closure_problem(1.0)
    starts = [(np.full(2, s), np.zeros(2)) for s in (-3.0, 0.0, 3.0)]
    results = nestopt.solve_many(problem, starts, n_jobs=2, options={"gtol": 1e-10})
    for result, start in zip(results, starts):
        assert_identical(result, serial(problem, start, options={"gtol": 1e-10}))


def flaky(kind):
    """A scenario that works, returns NaN, or raises, by its parameter."""
    problem = closure_problem(0.5)
    if kind == "ok":
        return problem
    if kind == "factory raises":
        raise KeyError("no such scenario")
    upper, lower = problem.levels
    if kind == "nan":
        bad = nestopt.Level(grad=lambda x, y: (x * np.nan, y), hess=upper.hess, size=2)
    else:

        def bad_grad(x, y):
            raise RuntimeError("boom in the leader's gradient")

        bad = nestopt.Level(grad=bad_grad, hess=upper.hess, size=2)
    return nestopt.problems.KnownProblem([bad, lower], x0=problem.x0)


def test_failing_scenarios_become_failed_results_and_the_others_succeed():
    kinds = ["ok", "nan", "ok", "raises", "factory raises"]
    with pytest.warns(nestopt.ConvergenceWarning, match="3 of 5 scenarios did not succeed"):
        results = nestopt.solve_many(flaky, params=kinds, n_jobs=2)
    ok, nan, ok2, raises, factory = results
    expected = serial(flaky("ok"), flaky("ok").x0)
    assert_identical(ok, expected)
    assert_identical(ok2, expected)

    assert not nan.success and nan.status is nestopt.Status.NON_FINITE
    assert nan.traceback is None  # solve reported it as a status, nothing was raised
    assert any(w.startswith("ConvergenceWarning: ") for w in nan.warnings), nan.warnings

    assert not raises.success and raises.status is nestopt.Status.RAISED
    assert raises.message == (
        "failed: the scenario raised RuntimeError: boom in the leader's gradient"
    )
    assert "bad_grad" in raises.traceback and raises.traceback.rstrip().endswith(
        "RuntimeError: boom in the leader's gradient"
    )
    np.testing.assert_array_equal(raises.x, flaky("ok").x0[0])

    assert not factory.success and factory.status is nestopt.Status.RAISED
    assert "KeyError: 'no such scenario'" in factory.message
    assert factory.x is None and "in flaky" in factory.traceback


def test_nestopt_error_with_a_status_keeps_it():
    indefinite = nestopt.Level(
        grad=lambda x, y: (np.zeros(1), -y), hess=lambda x, y: -np.eye(2), size=1
    )
    upper = nestopt.Level(grad=lambda x, y: (x, y), hess=lambda x, y: np.eye(2), size=1)
    problem = nestopt.Problem([upper, indefinite])
    start = (np.ones(1), np.ones(1))
    with pytest.warns(nestopt.ConvergenceWarning):
        (result,) = nestopt.solve_many(problem, [start], n_jobs=1)
    assert result.status is nestopt.Status.NOT_POSITIVE_DEFINITE
    assert result.failed_level == 2 and not result.success


def blas_threads_seen(_):
    """Raise with the largest BLAS pool size seen inside the worker, as the message."""
    import threadpoolctl

    sizes = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()]
    blas = os.environ.get("OPENBLAS_NUM_THREADS")
    raise RuntimeError(f"pools={max(sizes)} env={blas}")


def test_blas_threads_are_limited_in_process_and_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = threadpoolctl.threadpool_info()
    with pytest.warns(nestopt.ConvergenceWarning):
        (result,) = nestopt.solve_many(blas_threads_seen, params=[0], n_jobs=1, blas_threads=1)
    assert "pools=1 " in result.message
    assert threadpoolctl.threadpool_info() == before


def test_without_threadpoolctl_loky_workers_get_the_thread_variables(monkeypatch):
    pytest.importorskip("threadpoolctl")  # the probe itself needs it in the worker
    # Hidden in this process only: the parent then asks joblib to set the variables.
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    with pytest.warns(nestopt.ConvergenceWarning):
        results = nestopt.solve_many(blas_threads_seen, params=[0, 1], n_jobs=2, blas_threads=3)
    # loky's own default would be cpu_count // 2 or the parent's value, never 3 here.
    assert all(r.message.endswith("env=3") for r in results), [r.message for r in results]


def test_a_thread_limit_set_in_parallel_config_stands():
    pytest.importorskip("threadpoolctl")
    with (
        joblib.parallel_config(backend="loky", inner_max_num_threads=2),
        pytest.warns(nestopt.ConvergenceWarning),
    ):
        results = nestopt.solve_many(blas_threads_seen, params=[0, 1], n_jobs=2)
    messages = [r.message for r in results]
    assert all(m.endswith("env=2") for m in messages), messages
    if (os.cpu_count() or 1) >= 2:  # OpenBLAS uses no more threads than cores
        # The default blas_threads would have limited the pools to 1.
        assert all(m.endswith("pools=2 env=2") for m in messages), messages


def test_progress_bar_counts_scenarios(capsys):
    pytest.importorskip("tqdm")
    problem = quad(2, 2, seed=0)
    starts = [problem.x0] * 3
    nestopt.solve_many(problem, starts, n_jobs=1, progress=True)
    assert "3/3" in capsys.readouterr().err


def locked_problem():
    """A problem whose callables close over a lock: it runs here but cannot be pickled."""
    lock = threading.Lock()
    base = closure_problem(0.5)
    upper, lower = base.levels

    def grad(x, y):
        with lock:
            return lower.grad(x, y)

    guarded = nestopt.Level(grad=grad, hess=lower.hess, size=2, quadratic=True)
    return nestopt.problems.KnownProblem([upper, guarded], x0=base.x0)


@contextlib.contextmanager
def joblib_backend(name):
    """joblib configured for ``name`` with 2 workers; the cluster (if any) closed after."""
    if name == "dask":
        distributed = pytest.importorskip("distributed")
        with (
            distributed.LocalCluster(
                n_workers=2,
                processes=True,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster),
            joblib.parallel_config(backend="dask"),
        ):
            yield
    elif name == "ray":
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError as exc:
            pytest.skip(f"Ray is not importable here ({exc}); pip install ray to test it")
        register_ray()
        # Ray's workers do not get pytest's sys.path: they import this module (whose
        # functions cloudpickle sends by reference) from PYTHONPATH.
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
        try:
            with joblib.parallel_config(backend="ray", n_jobs=2):
                yield
        finally:
            ray.shutdown()
    else:
        with joblib.parallel_config(backend=name, n_jobs=2):
            yield


@pytest.mark.parametrize("backend", ["loky", "threading", "multiprocessing", "dask", "ray"])
def test_every_joblib_backend_gives_the_serial_results(backend):
    # Lambdas and closures (which joblib's "multiprocessing" backend alone could not pickle),
    # and one scenario (index 1) that no pickler can send: it alone fails, where it must.
    problems = [closure_problem(0.0), locked_problem(), closure_problem(1.0)]
    shifts = [0.0, 1.0]
    with joblib_backend(backend):
        if backend == "threading":
            listed = nestopt.solve_many(problems)
        else:
            with pytest.warns(nestopt.ConvergenceWarning, match="1 of 3 scenarios"):
                listed = nestopt.solve_many(problems)
        built = nestopt.solve_many(lambda shift: closure_problem(shift), params=shifts)
    for result, shift in zip(built, shifts):
        assert_identical(result, serial(closure_problem(shift), closure_problem(shift).x0))
    for i in (0, 2):
        assert_identical(listed[i], serial(problems[i], problems[i].x0))
    if backend == "threading":  # the scenarios stay in this process: nothing is pickled
        assert_identical(listed[1], serial(problems[1], problems[1].x0))
    else:
        failed = listed[1]
        assert not failed.success and failed.status is nestopt.Status.RAISED
        assert "scenario 1 could not be sent" in failed.message
        assert "lock" in failed.message and "n_jobs=1" in failed.message


# -- multistart ---------------------------------------------------------------

TILT = 0.3


def double_well():
    """y*(x) = x and F(x) = (x^2 - 1)^2 + TILT x: two local minima, the left one lower."""
    lower = nestopt.Level(
        grad=lambda x, y: (x - y, y - x),
        hess=lambda x, y: np.array([[1.0, -1.0], [-1.0, 1.0]]),
        size=1,
        quadratic=True,
    )
    upper = nestopt.Level(
        grad=lambda x, y: (np.zeros(1), 4.0 * y * (y**2 - 1.0) + TILT),
        hess=lambda x, y: np.array([[0.0, 0.0], [0.0, 12.0 * y[0] ** 2 - 4.0]]),
        hess_dir=lambda x, y, v: np.array([[0.0, 0.0], [0.0, 24.0 * y[0] * v[1]]]),
        value=lambda x, y: float((y[0] ** 2 - 1.0) ** 2 + TILT * y[0]),
        size=1,
    )
    return nestopt.Problem([upper, lower])


def test_multistart_finds_the_lower_well_and_counts_the_agreeing_starts():
    # F'(x) = 4x^3 - 4x + TILT: the outer roots are the two minima.
    roots = np.sort(np.roots([4.0, 0.0, -4.0, TILT]).real)
    left, right = roots[0], roots[2]
    starts = [(np.array([x]), np.array([x])) for x in (left, right, -2.0, -0.5, 0.6, 1.5)]
    found = nestopt.multistart(double_well(), starts, n_jobs=2, options={"gtol": 1e-10})

    assert found.n_starts == 6 and found.n_success == 6
    np.testing.assert_allclose(found.x, [left], atol=1e-9)
    assert found.fun == pytest.approx((left**2 - 1.0) ** 2 + TILT * left, abs=1e-14)
    assert found.best is found.results[found.best_index]
    in_left_well = [i for i, r in enumerate(found.results) if abs(r.x[0] - left) < 1e-6]
    assert found.agree == in_left_well and found.n_agree == len(in_left_well)
    assert 0 in found.agree and 1 not in found.agree  # the starts at the two minima
    np.testing.assert_allclose(found.results[1].x, [right], atol=1e-9)


def test_multistart_draws_reproducible_starts_in_the_box():
    problem = quad(2, 3, seed=0)
    first = nestopt.multistart(
        problem, n_starts=3, bounds=(-2.0, [0.0, 1.0, 2.0]), seed=7, n_jobs=1
    )
    again = nestopt.multistart(
        problem, n_starts=3, bounds=(-2.0, [0.0, 1.0, 2.0]), seed=7, n_jobs=1
    )
    for start, repeat in zip(first.x0s, again.x0s):
        np.testing.assert_array_equal(start[0], repeat[0])
        assert np.all(start[0] >= -2.0) and np.all(start[0] <= [0.0, 1.0, 2.0])
        assert start[1] is problem.x0[1]
    # A quadratic problem has one solution: every start agrees.
    assert first.n_success == first.n_agree == 3


def test_multistart_draws_its_starts_from_scipys_quasi_random_designs():
    qmc = pytest.importorskip("scipy.stats.qmc")
    problem = quad(2, 3, seed=0)
    lower, upper = np.array([-2.0, 0.0, 1.0]), np.array([0.0, 1.0, 5.0])
    found = {
        sampling: nestopt.multistart(
            problem, n_starts=8, bounds=(lower, upper), seed=3, sampling=sampling, n_jobs=1
        )
        for sampling in ("auto", "sobol", "lhs")
    }
    assert found["auto"].sampling == "sobol"  # SciPy is installed
    # The same design, seed and generator in SciPy directly.
    key = "rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed"
    expected = {
        "sobol": qmc.Sobol(3, scramble=True, **{key: np.random.default_rng(3)}).random(8),
        "lhs": qmc.LatinHypercube(3, **{key: np.random.default_rng(3)}).random(8),
    }
    for sampling in ("sobol", "lhs"):
        units = np.array([(start[0] - lower) / (upper - lower) for start in found[sampling].x0s])
        np.testing.assert_allclose(units, expected[sampling], rtol=0, atol=1e-15)
        # What makes them designs: 8 points put exactly one in each eighth of every coordinate.
        for column in units.T:
            assert sorted(np.floor(column * 8).astype(int).tolist()) == list(range(8)), sampling
        assert found[sampling].n_success == found[sampling].n_agree == 8
    for start, auto in zip(found["sobol"].x0s, found["auto"].x0s):
        np.testing.assert_array_equal(start[0], auto[0])
    # A count that is not a power of 2: the first points of the same sequence, no warning.
    five = nestopt.multistart(problem, n_starts=5, bounds=(lower, upper), seed=3, n_jobs=1)
    for start, first in zip(five.x0s, found["sobol"].x0s):
        np.testing.assert_array_equal(start[0], first[0])


def test_multistart_draws_uniformly_without_scipy(monkeypatch):
    problem = quad(2, 3, seed=0)
    for key in [k for k in sys.modules if k == "scipy" or k.startswith("scipy.")]:
        monkeypatch.setitem(sys.modules, key, None)
    monkeypatch.setitem(sys.modules, "scipy", None)
    found = nestopt.multistart(problem, n_starts=4, bounds=(-1.0, 2.0), seed=5, n_jobs=1)
    assert found.sampling == "uniform" and found.n_success == 4
    expected = -1.0 + 3.0 * np.random.default_rng(5).random((4, 3))
    np.testing.assert_allclose(np.array([start[0] for start in found.x0s]), expected, rtol=1e-15)
    with pytest.raises(ImportError, match=re.escape('pip install "nestopt[scipy]"')):
        nestopt.multistart(problem, n_starts=4, bounds=(-1.0, 2.0), sampling="lhs")


def test_multistart_with_no_success_warns_and_has_no_best():
    problem = double_well()
    start = (np.array([-2.0]), np.array([-2.0]))
    with pytest.warns(nestopt.ConvergenceWarning, match="none of the 1 starts succeeded"):
        found = nestopt.multistart(problem, [start], n_jobs=1, options={"maxiter": 1})
    assert found.best is None and found.n_success == 0 and found.agree == []


# -- input checks (all before any worker starts) -------------------------------


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda p: nestopt.solve_many(p, [p.x0], maxiter=3), TypeError, "known: method"),
        (lambda p: nestopt.solve_many(p, p.x0), TypeError, r"one start is passed as \[x0\]"),
        (lambda p: nestopt.solve_many(p), TypeError, "needs the starts x0s"),
        (
            lambda p: nestopt.solve_many(p, [p.x0[:1]]),
            TypeError,
            "2 per-level arrays; got tuple of 1",
        ),
        (lambda p: nestopt.solve_many(p, [p.x0], params=[1]), TypeError, "factory"),
        (lambda p: nestopt.solve_many([p, p], [p.x0]), ValueError, "1 starts for 2"),
        (lambda p: nestopt.solve_many(lambda s: p), TypeError, r"params=\[p1"),
        (lambda p: nestopt.solve_many([nestopt.Problem(p.levels)]), TypeError, "pass the starts"),
        (lambda p: nestopt.solve_many(p, [p.x0], blas_threads=0), ValueError, "blas_threads"),
        (lambda p: nestopt.multistart(p, n_starts=2), ValueError, "n_starts and bounds"),
        (lambda p: nestopt.multistart(p, n_starts=2, bounds=(1, 0)), ValueError, "lower <= upper"),
        (
            lambda p: nestopt.multistart(p, n_starts=2, bounds=(0, 1), sampling="halton"),
            ValueError,
            "sampling must be one of",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(call, error, match):
    with pytest.raises(error, match=match):
        call(quad(2, 2, seed=0))


def test_without_joblib_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "joblib", None)
    problem = quad(2, 2, seed=0)
    with pytest.raises(ImportError, match=r"nestopt\[parallel\]"):
        nestopt.solve_many(problem, [problem.x0])


def test_multistart_needs_a_top_level_value():
    problem = quad(2, 2, seed=0)
    upper = problem.levels[0]
    no_value = nestopt.Level(grad=upper.grad, hess=upper.hess, size=upper.size)
    with pytest.raises(ValueError, match="level 1 has no value"):
        nestopt.multistart(nestopt.Problem([no_value, problem.levels[1]]), [problem.x0])
