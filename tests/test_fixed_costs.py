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
from nestopt._methods import options
from nestopt.problems import quad


def _solved(problem):
    start = [np.asarray(a) for a in problem.x0]
    return [np.asarray(a) for a in nestopt.best_response(problem, start).xs]


def test_default_settings_are_computed_once_and_options_still_apply():
    problem = quad(2, 5)
    xs = _solved(problem)
    nestopt.hypergradient(problem, xs)
    nestopt.hypergradient(problem, xs)
    assert len(options._DEFAULTS[problem]) == 1
    # Given options are not cached and are not hidden by the cached defaults.
    start = [np.asarray(problem.x0[0]), np.full(5, 10.0)]
    with pytest.raises(nestopt.ConvergenceError):
        nestopt.hypergradient(problem, start, level_options={"maxiter": 0})
    assert len(options._DEFAULTS[problem]) == 1


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
