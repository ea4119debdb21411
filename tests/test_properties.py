"""Property tests: invariants that hold on every random problem (issue 7).

Problems are drawn with hypothesis (derandomized, so every run sees the same
examples): level counts 2..5, uneven sizes 1..5, and `nestopt.problems.quad`
seeds. Ground truth is `quad_reference`, an independent NumPy closed form.

Tolerances. Every reduced block of a `quad` problem has its smallest
eigenvalue >= 0.1 (``Q_k >= 0.1 I``), so the nested solves lose at most a
few digits: measured over 300 random draws the largest error against the
closed form was 8e-15 relative. 1e-9 (about 5e6 float64 eps) leaves room
for worse draws while still catching any wrong term, which shows up at
order 1e-2 or more. Computations that should differ only by rounding
(two backends, two orders of the same variables) use 1e-12 (about 5e3 eps).
"""

from __future__ import annotations

import dataclasses

import array_api_strict
import numpy as np
import pytest
from helpers import assert_array_on
from hypothesis import given, settings
from hypothesis import strategies as st

import nestopt
from nestopt.problems import quad, quad_reference, softplus_levels

# --- strategies -------------------------------------------------------------

CLOSED_FORM_RTOL = 1e-9
ROUNDING_RTOL = 1e-12


@st.composite
def quad_specs(draw, min_levels: int = 2, max_levels: int = 5):
    """``(n, sizes, seed)`` of a `quad` problem with uneven level sizes."""
    n = draw(st.integers(min_levels, max_levels))
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)))
    seed = draw(st.integers(0, 2**32 - 1))
    return n, sizes, seed


def vectors(size: int, bound: float = 10.0):
    """A float64 vector of length ``size`` with entries in ``[-bound, bound]``."""
    return st.lists(
        st.floats(-bound, bound, allow_nan=False, allow_infinity=False),
        min_size=size,
        max_size=size,
    ).map(lambda values: np.asarray(values, dtype=np.float64))


@st.composite
def quad_cases(draw, min_levels: int = 2, max_levels: int = 5):
    """A `quad` spec with a point ``x1`` and starting points for levels 2..n."""
    n, sizes, seed = draw(quad_specs(min_levels, max_levels))
    xs = [draw(vectors(size)) for size in sizes]
    return n, sizes, seed, xs


# --- helpers ----------------------------------------------------------------


def relative_error(actual, expected, scale=None) -> float:
    """``|actual - expected| / scale``, in NumPy float64 (Frobenius norms)."""
    a = np.asarray(nestopt.to_numpy(actual), dtype=np.float64)
    e = np.asarray(nestopt.to_numpy(expected), dtype=np.float64)
    assert a.shape == e.shape, f"shape {a.shape}, expected {e.shape}"
    if scale is None:
        scale = np.linalg.norm(e)
    return float(np.linalg.norm(a - e) / max(scale, 1e-300))


def reference_of(problem) -> dict:
    data = problem.data
    return quad_reference(data["Q"], data["c"], data["sizes"])


def closed_form_hypergradient(reference: dict, x1: np.ndarray) -> tuple[np.ndarray, float]:
    """``F_1'(x1)`` and the size of the terms it sums (its rounding scale).

    Near the optimum the hypergradient is a difference of large terms, so
    its own norm is the wrong yardstick for rounding; the terms' norms are.
    """
    hessian, g0 = reference["hessian"], reference["grad_at_zero"]
    scale = np.linalg.norm(hessian, 2) * np.linalg.norm(x1) + np.linalg.norm(g0)
    return hessian @ x1 + g0, float(scale)


def undeclared(problem, levels=(2, 3)):
    """The same problem with ``quadratic=False`` on the given levels.

    Then ``curvature='exact'`` really computes the third-order term of those
    levels (by central differences of their Hessians) instead of skipping it.
    Levels 4..n must stay declared: exact mode needs that for n >= 4.
    """
    out = [
        dataclasses.replace(level, quadratic=False) if k in levels else level
        for k, level in enumerate(problem.levels, start=1)
    ]
    return nestopt.Problem(out)


def quadratic_problem(Qs, cs, sizes) -> nestopt.Problem:
    """Quadratic levels ``1/2 x^T Q_k x + c_k^T x`` on NumPy, written here.

    Independent of `nestopt.problems`, so permuted data can be fed in.
    """
    levels = []
    for Q, c, size in zip(Qs, cs, sizes, strict=True):
        Q, c = np.array(Q), np.array(c)

        def grad(*xs, Q=Q, c=c):
            return Q @ np.concatenate(xs) + c

        def hess(*xs, Q=Q):
            return Q

        def value(*xs, Q=Q, c=c):
            x = np.concatenate(xs)
            return 0.5 * (x @ (Q @ x)) + c @ x

        levels.append(nestopt.Level(grad=grad, hess=hess, value=value, size=size, quadratic=True))
    return nestopt.Problem(levels)


def affine_jacobian(fun, u: np.ndarray) -> np.ndarray:
    """Jacobian of an affine map by central differences with unit steps.

    For an affine map the central difference is exact whatever the step, so
    the step is 1 and only rounding (of order eps * |fun|) remains.
    """
    columns = []
    for i in range(u.shape[0]):
        e = np.zeros_like(u)
        e[i] = 1.0
        columns.append((fun(u + e) - fun(u - e)) / 2.0)
    return np.stack(columns, axis=1)


# --- the hypergradient against the closed form ------------------------------


@settings(derandomize=True, max_examples=80, deadline=None)
@given(case=quad_cases())
def test_hypergradient_matches_closed_form_in_both_modes(case):
    n, sizes, seed, xs = case
    problem = quad(n, sizes, seed, backend="numpy")
    expected, scale = closed_form_hypergradient(reference_of(problem), xs[0])
    exact = nestopt.hypergradient(problem, xs, curvature="exact")
    first = nestopt.hypergradient(problem, xs, curvature="first_order")
    assert isinstance(exact, np.ndarray) and exact.shape == (sizes[0],)
    assert exact.dtype == np.float64
    assert relative_error(exact, expected, scale) <= CLOSED_FORM_RTOL
    assert relative_error(first, expected, scale) <= CLOSED_FORM_RTOL


@settings(derandomize=True, max_examples=60, deadline=None)
@given(case=quad_cases(min_levels=3))
def test_modes_agree_on_quadratics_even_when_curvature_is_computed(case):
    # With levels 2 and 3 not declared quadratic, exact mode runs its
    # third-order term (a central difference of their constant Hessians),
    # which must vanish: on quadratics every response is affine.
    n, sizes, seed, xs = case
    problem = undeclared(quad(n, sizes, seed, backend="numpy"))
    exact = nestopt.best_response(problem, xs, curvature="exact")
    first = nestopt.best_response(problem, xs, curvature="first_order")
    assert "central difference" in exact.exactness
    assert relative_error(exact.hypergrad, first.hypergrad) <= ROUNDING_RTOL
    for k in range(2, n + 1):
        assert relative_error(exact.jacobians[k], first.jacobians[k]) <= ROUNDING_RTOL
        assert relative_error(exact.xs[k - 1], first.xs[k - 1]) <= ROUNDING_RTOL
    expected, scale = closed_form_hypergradient(reference_of(quad(n, sizes, seed)), xs[0])
    assert relative_error(exact.hypergrad, expected, scale) <= CLOSED_FORM_RTOL


@settings(derandomize=True, max_examples=40, deadline=None)
@given(case=quad_cases())
def test_numpy_and_array_api_strict_agree(case):
    n, sizes, seed, xs = case
    on_numpy = quad(n, sizes, seed, backend="numpy")
    on_strict = quad(n, sizes, seed, backend="array_api_strict")
    xs_strict = [array_api_strict.asarray(x) for x in xs]
    a = nestopt.best_response(on_numpy, xs, backend="numpy")
    b = nestopt.best_response(on_strict, xs_strict, backend="array_api_strict")
    assert_array_on(
        b.hypergrad, array_api_strict, shape=(sizes[0],), dtype=array_api_strict.float64
    )
    assert relative_error(b.hypergrad, a.hypergrad) <= ROUNDING_RTOL
    for k in range(2, n + 1):
        assert_array_on(b.xs[k - 1], array_api_strict, shape=(sizes[k - 1],))
        assert relative_error(b.xs[k - 1], a.xs[k - 1]) <= ROUNDING_RTOL
        assert relative_error(b.jacobians[k], a.jacobians[k]) <= ROUNDING_RTOL


# --- permutations -------------------------------------------------------------


@st.composite
def permuted_cases(draw):
    """A quad case, a level ``m`` and a permutation of that level's coordinates."""
    n, sizes, seed, xs = draw(quad_cases(max_levels=4))
    m = draw(st.integers(1, n))
    perm = np.asarray(draw(st.permutations(range(sizes[m - 1]))), dtype=np.intp)
    return n, sizes, seed, xs, m, perm


@settings(derandomize=True, max_examples=60, deadline=None)
@given(case=permuted_cases())
def test_permuting_one_levels_coordinates_permutes_the_answers(case):
    n, sizes, seed, xs, m, perm = case
    data = quad(n, sizes, seed).data
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    # pi reorders the flat vector: x' = x[pi] permutes level m's block only.
    pi = np.arange(offsets[-1])
    pi[offsets[m - 1] : offsets[m]] = offsets[m - 1] + perm
    original = quadratic_problem(data["Q"], data["c"], sizes)
    permuted = quadratic_problem(
        [Q[np.ix_(pi, pi)] for Q in data["Q"]], [c[pi] for c in data["c"]], sizes
    )
    xs_permuted = [x[perm] if k == m else x for k, x in enumerate(xs, start=1)]

    a = nestopt.best_response(original, xs)
    b = nestopt.best_response(permuted, xs_permuted)

    def rows(k, array):
        return array[perm] if k == m else array

    def columns(k, array):
        # Columns of G_k are x_<k, those of the sensitivity x_1.
        width = array.shape[1]
        return array[:, pi[:width]] if m < k else array

    assert relative_error(b.hypergrad, rows(1, a.hypergrad)) <= ROUNDING_RTOL
    for k in range(2, n + 1):
        assert relative_error(b.xs[k - 1], rows(k, a.xs[k - 1])) <= ROUNDING_RTOL
        assert relative_error(b.jacobians[k], columns(k, rows(k, a.jacobians[k]))) <= (
            ROUNDING_RTOL
        )
        sens = rows(k, a.sensitivity[k])
        sens = sens[:, perm] if m == 1 else sens
        assert relative_error(b.sensitivity[k], sens) <= ROUNDING_RTOL
    if np.array_equal(perm, np.arange(perm.shape[0])):
        # Permuting nothing changes nothing, not even the rounding.
        assert np.array_equal(b.hypergrad, a.hypergrad)
        for k in range(2, n + 1):
            assert np.array_equal(b.xs[k - 1], a.xs[k - 1])
            assert np.array_equal(b.jacobians[k], a.jacobians[k])


def test_permutation_test_sees_a_wrong_order():
    # Guard for the test above: a permutation applied to Q and c but not to
    # the answers must be noticed, so the check there is not vacuous.
    data = quad(2, (3, 2), seed=4).data
    pi = np.array([1, 2, 0, 3, 4])
    permuted = quadratic_problem(
        [Q[np.ix_(pi, pi)] for Q in data["Q"]], [c[pi] for c in data["c"]], (3, 2)
    )
    x1 = np.array([0.5, -1.0, 2.0])
    a = nestopt.hypergradient(quadratic_problem(data["Q"], data["c"], (3, 2)), [x1, np.zeros(2)])
    b = nestopt.hypergradient(permuted, [x1[pi[:3]], np.zeros(2)])
    assert relative_error(b, a[pi[:3]]) <= ROUNDING_RTOL
    assert relative_error(b, a) > 1e-3


# --- best-response Jacobians against finite differences ---------------------


@settings(derandomize=True, max_examples=60, deadline=None)
@given(case=quad_cases())
def test_jacobians_match_differences_of_the_closed_form_responses(case):
    n, sizes, seed, xs = case
    problem = quad(n, sizes, seed, backend="numpy")
    data = problem.data
    result = nestopt.best_response(problem, xs)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    responses = reference_of(problem)["responses"]
    for k in range(2, n + 1):
        s = offsets[k - 1]
        # dx_k*/dx_1: the total response, levels 2..n re-solved.
        total = affine_jacobian(lambda x1, k=k: responses(x1)[k - 1], xs[0])
        assert result.sensitivity[k].shape == (sizes[k - 1], sizes[0])
        assert relative_error(result.sensitivity[k], total) <= CLOSED_FORM_RTOL
        # G_k = dx_k*/dx_<k: levels 1..k-1 merged into one fixed leader, so
        # quad_reference gives the response of levels k..n to x_<k.
        merged = quad_reference(
            [data["Q"][0], *data["Q"][k - 1 :]],
            [data["c"][0], *data["c"][k - 1 :]],
            (int(s), *sizes[k - 1 :]),
        )["responses"]
        upper = np.concatenate([np.asarray(x) for x in result.xs[: k - 1]])
        G = affine_jacobian(lambda u, merged=merged: merged(u)[1], upper)
        assert result.jacobians[k].shape == (sizes[k - 1], s)
        assert relative_error(result.jacobians[k], G) <= CLOSED_FORM_RTOL


def _solve_bottom_level(problem, upper, start, level_options):
    """Level n's solution for fixed ``x_<n = upper``, by nestopt on a 2-level wrapper."""
    n, sizes = problem.n, problem.sizes
    bottom = problem.levels[-1]
    cuts = np.cumsum(sizes[:-1])[:-1]

    def split(u):
        return np.split(u, cuts)

    wrapper = nestopt.Problem(
        [
            nestopt.Level(
                grad=lambda u, z: np.zeros(problem.dim),
                hess=lambda u, z: np.zeros((problem.dim, problem.dim)),
                size=upper.shape[0],
            ),
            nestopt.Level(
                grad=lambda u, z: bottom.grad(*split(u), z),
                hess=lambda u, z: bottom.hess(*split(u), z),
                value=lambda u, z: bottom.value(*split(u), z),
                size=sizes[n - 1],
            ),
        ]
    )
    return nestopt.best_response(wrapper, [upper, start], level_options=level_options).xs[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jacobians_match_finite_differences_of_nonlinear_responses(seed):
    # Softplus levels have nonlinear responses, so this checks the
    # curvature term too: G_2 includes S_2 in exact mode.
    # Inner tol 1e-12 and step h = 1e-4: the central difference errs by
    # O(h^2) ~ 1e-8 (truncation) plus tol / h ~ 1e-8 (solve), so 1e-6.
    problem = softplus_levels(3, (2, 3, 2), seed=seed, beta=2.0, backend="numpy")
    options = {"tol": 1e-12}
    x1 = np.random.default_rng(seed).standard_normal(2)
    result = nestopt.best_response(problem, [x1, np.zeros(3), np.zeros(2)], level_options=options)
    h = 1e-4

    def central(fun, u):
        columns = []
        for i in range(u.shape[0]):
            e = np.zeros_like(u)
            e[i] = h
            columns.append((fun(u + e) - fun(u - e)) / (2 * h))
        return np.stack(columns, axis=1)

    def x2(x1):
        return nestopt.best_response(problem, [x1, *result.xs[1:]], level_options=options).xs[1]

    fd2 = central(x2, x1)
    assert relative_error(result.jacobians[2], fd2) <= 1e-6
    first = nestopt.best_response(
        problem, [x1, np.zeros(3), np.zeros(2)], level_options=options, curvature="first_order"
    )
    # The first-order Jacobian is biased here by percents: the check above
    # would notice a missing curvature term.
    assert relative_error(first.jacobians[2], fd2) > 1e-3

    upper = np.concatenate(result.xs[:2])
    fd3 = central(lambda u: _solve_bottom_level(problem, u, result.xs[2], options), upper)
    assert result.jacobians[3].shape == (2, 5)
    assert relative_error(result.jacobians[3], fd3) <= 1e-6


# --- inputs are never modified or aliased ------------------------------------


def _snapshot(arrays):
    return [np.asarray(nestopt.to_numpy(x)).tobytes() for x in arrays]


@settings(derandomize=True, max_examples=30, deadline=None)
@given(case=quad_cases(max_levels=4))
def test_inputs_are_never_modified_or_aliased_on_numpy(case):
    n, sizes, seed, xs = case
    problem = quad(n, sizes, seed, backend="numpy")
    hessians = [np.array(level.hess(*xs)) for level in problem.levels]
    before = _snapshot(xs)

    gradient = nestopt.hypergradient(problem, xs)
    response = nestopt.best_response(problem, xs)
    solved = nestopt.solve(problem, xs)
    assert solved.success, solved.message
    assert _snapshot(xs) == before, "an input point was modified"
    # What the callables returned (quad's hess returns its stored Q) is
    # read, never written.
    for level, H in zip(problem.levels, hessians, strict=True):
        assert np.array_equal(level.hess(*xs), H)

    outputs = [gradient, *response.xs, response.hypergrad, *solved.xs, solved.x]
    for out in outputs:
        for x in xs:
            assert not np.shares_memory(out, x)
    # Writing into the results leaves the inputs alone.
    for out in outputs:
        out[...] = 12345.0
    assert _snapshot(xs) == before


@settings(derandomize=True, max_examples=15, deadline=None)
@given(case=quad_cases(max_levels=4))
def test_inputs_are_never_modified_on_array_api_strict(case):
    n, sizes, seed, xs = case
    problem = quad(n, sizes, seed, backend="array_api_strict")
    xs_strict = [array_api_strict.asarray(x) for x in xs]
    before = _snapshot(xs_strict)
    nestopt.hypergradient(problem, xs_strict)
    response = nestopt.best_response(problem, xs_strict)
    solved = nestopt.solve(problem, xs_strict)
    assert solved.success, solved.message
    assert _snapshot(xs_strict) == before
    for k in range(n):
        assert response.xs[k] is not xs_strict[k]
        assert solved.xs[k] is not xs_strict[k]


# --- invariance to the scale of objectives and variables (issue 13) -----------


def transformed(problem, objective_scales, variable_scales, shifts):
    """``g_k(y) = c_k f_k(a * y + b)``: every objective scaled, every variable scaled and shifted.

    ``a`` and ``b`` are per level (one scalar each), so ``y_k* = (x_k* - b_k) / a_k``
    and ``dG_1/dy_1 = a_1 dF_1/dx_1`` at corresponding points.
    """
    a = np.concatenate([np.full(d, s) for d, s in zip(problem.sizes, variable_scales)])
    b = np.concatenate([np.full(d, s) for d, s in zip(problem.sizes, shifts)])
    cuts = np.cumsum(problem.sizes)[:-1]

    def to_x(ys):
        return np.split(a * np.concatenate(ys) + b, cuts)

    levels = []
    for level, c in zip(problem.levels, objective_scales):
        levels.append(
            nestopt.Level(
                value=lambda *ys, f=level.value, c=c: c * f(*to_x(ys)),
                grad=lambda *ys, f=level.grad, c=c: c * a * f(*to_x(ys)),
                hess=lambda *ys, f=level.hess, c=c: c * (a[:, None] * f(*to_x(ys)) * a[None, :]),
                size=level.size,
            )
        )
    return nestopt.Problem(levels), a, b


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    spec=quad_specs(2, 3),
    objective_exponents=st.lists(st.floats(-12, 12), min_size=3, max_size=3),
    variable_exponents=st.lists(st.floats(-4, 4), min_size=3, max_size=3),
    shifts=st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
)
def test_scaling_objectives_and_variables_never_gives_a_wrong_success(
    spec, objective_exponents, variable_exponents, shifts
):
    n, sizes, seed = spec
    base = quad(n, sizes, seed, backend="numpy")
    ref = quad_reference(base.data["Q"], base.data["c"], sizes)
    scales = [10.0**e for e in objective_exponents[:n]]
    stretch = [10.0**e for e in variable_exponents[:n]]
    shift = [s * v for s, v in zip(shifts[:n], stretch)]  # shifts of the variables' own size
    problem, a, b = transformed(base, scales, stretch, shift)
    d1 = sizes[0]
    # The hypergradient at the image of x1 = 0.3, starts at the image of 0.
    y1 = (0.3 - b[:d1]) / a[:d1]
    ys = [y1] + [(0.0 - shift[k]) / stretch[k] * np.ones(sizes[k]) for k in range(1, n)]
    g = nestopt.hypergradient(problem, ys)
    truth = ref["hessian"] @ np.full(d1, 0.3) + ref["grad_at_zero"]
    # Accuracy the dtype allows: the shifts cost up to |b| / |x| ~ 1e3 in relative terms.
    assert np.linalg.norm(g / a[:d1] / scales[0] - truth) <= 1e-6 * max(np.linalg.norm(truth), 1)
    with warnings_ignored():
        result = nestopt.solve(problem, ys, options={"gtol": 1e-10})
    if result.success:
        x1 = a[:d1] * result.x + b[:d1]
        error = np.linalg.norm(x1 - ref["solution"][0])
        assert error <= 1e-5 * max(np.linalg.norm(ref["solution"][0]), 1.0), result.message


def warnings_ignored():
    import warnings

    manager = warnings.catch_warnings()
    manager.__enter__()
    warnings.simplefilter("ignore", nestopt.ConvergenceWarning)

    class _Exit:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return manager.__exit__(*exc)

    return _Exit()
