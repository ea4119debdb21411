"""Large levels (issue 14): matrix-free and sparse levels against the dense path, Krylov solves."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import assert_array_on, fd_gradient, relative_error, value_function

import nestopt
from nestopt._linalg.krylov import krylov_solve
from nestopt.problems import quad, quad_reference, softplus_levels


def matrix_free(problem, *, keep_dir=True, levels=None):
    """``problem`` with lower levels given only by ``hvp`` (and ``hvp_dir``), no ``hess``."""
    chosen = range(2, problem.n + 1) if levels is None else levels
    out = list(problem.levels)
    for k in chosen:
        level = out[k - 1]

        def hvp(*args, hess=level.hess):
            *xs, v = args
            return hess(*xs) @ v

        hvp_dir = None
        if keep_dir and level.hess_dir is not None:

            def hvp_dir(*args, hess_dir=level.hess_dir):
                *xs, v, u = args
                return hess_dir(*xs, u) @ v

        out[k - 1] = dataclasses.replace(
            level, hess=None, hess_dir=None, hess_rows=False, hvp=hvp, hvp_dir=hvp_dir
        )
    return nestopt.Problem(out)


@pytest.mark.parametrize("curvature", ["exact", "first_order"])
@pytest.mark.parametrize("n", [2, 3])
def test_matrix_free_quadratics_match_the_closed_form(xp, n, curvature):
    problem = quad(n, (3, 4, 2)[:n], seed=n)
    ref = quad_reference(problem.data["Q"], problem.data["c"], problem.sizes)
    x1 = np.array([0.4, -0.3, 0.8])
    start = [xp.asarray(x1)] + [xp.zeros(d, dtype=xp.float64) for d in problem.sizes[1:]]
    result = nestopt.best_response(matrix_free(problem), start, curvature=curvature)
    assert_array_on(result.hypergrad, xp, shape=(3,), dtype=xp.float64)
    assert relative_error(result.hypergrad, ref["hessian"] @ x1 + ref["grad_at_zero"]) <= 1e-8
    assert result.krylov["iterations"][1] > 0
    assert max(result.krylov["residual"][1:]) <= 1e-9


@pytest.mark.parametrize("keep_dir", [True, False], ids=["hvp_dir", "difference-of-hvp"])
@pytest.mark.parametrize("curvature", ["exact", "first_order"])
def test_matrix_free_softplus_matches_the_dense_path(keep_dir, curvature):
    problem = softplus_levels(3, (3, 4, 2), seed=1, beta=3.0)
    x = [np.array([0.8, -0.4, 1.1]), np.zeros(4), np.zeros(2)]
    dense = nestopt.best_response(problem, x, curvature=curvature)
    free = nestopt.best_response(matrix_free(problem, keep_dir=keep_dir), x, curvature=curvature)
    assert relative_error(free.hypergrad, dense.hypergrad) <= 1e-8
    for k in (2, 3):
        assert relative_error(free.xs[k - 1], dense.xs[k - 1]) <= 1e-8


def test_matrix_free_nonlinear_bilevel_against_the_value_function():
    problem = softplus_levels(2, (3, 5), seed=4, beta=2.0)
    free = matrix_free(problem)
    x1 = np.array([0.2, -0.5, 0.9])
    g = nestopt.hypergradient(free, [x1, np.zeros(5)])
    truth = fd_gradient(lambda x: value_function(free, x, tol=0.0), x1)
    assert relative_error(g, truth) <= 1e-8


def test_matrix_free_solve_reaches_the_optimum():
    problem = quad(2, 6, seed=3)
    result = nestopt.solve(matrix_free(problem), problem.x0, options={"gtol": 1e-10})
    assert result.success
    assert relative_error(result.x, problem.solution[0]) <= 1e-7
    assert result.krylov is not None


def test_minres_and_cg_agree():
    problem = quad(2, (3, 6), seed=5)
    x = [np.array([0.1, 0.2, 0.3]), np.zeros(6)]
    cg = nestopt.hypergradient(matrix_free(problem), x, linear_solver="cg")
    minres = nestopt.hypergradient(matrix_free(problem), x, linear_solver="minres")
    assert relative_error(minres, cg) <= 1e-8


def test_a_level_with_only_hvp_cannot_be_factored():
    problem = matrix_free(quad(2, 2, seed=0))
    with pytest.raises(ValueError, match="no hess.*'cg' or 'minres'"):
        nestopt.hypergradient(
            problem, problem.levels and [np.zeros(2), np.zeros(2)], linear_solver="cholesky"
        )


def test_a_concave_matrix_free_level_is_reported():
    problem = quad(2, 2, seed=1)
    lower = problem.levels[1]
    concave = dataclasses.replace(
        lower,
        value=lambda *xs: -lower.value(*xs),
        grad=lambda *xs: -lower.grad(*xs),
        hess=None,
        hvp=lambda *args: -(lower.hess(*args[:-1]) @ args[-1]),
    )
    bad = nestopt.Problem([problem.levels[0], concave])
    with pytest.raises(nestopt.NotPositiveDefiniteError, match="matrix-free") as info:
        nestopt.hypergradient(bad, problem.x0)
    assert info.value.level == 2


def saddle_problem(*, matrix_free_follower: bool):
    """A follower started on a saddle: ``y_0`` sits on the top of a double well.

    ``f_2 = -y_0^2 / 2 + y_0^4 / 4 + |y_12 - x|^2 / 2``: at ``y_0 = 0`` the
    gradient along ``y_0`` is zero and the curvature -1; moving to ``y_0 = +-1``
    lowers ``f_2`` by 0.25. Newton's steps never leave ``y_0 = 0`` (the
    gradient has no ``y_0`` part), so only a curvature test can tell.
    """

    def hess2(x, y):
        H = np.zeros((5, 5))
        H[:2, :2] = np.eye(2)
        H[:2, 3:] = H[3:, :2] = -np.eye(2)
        H[2, 2] = -1.0 + 3.0 * y[0] ** 2
        H[3:, 3:] = np.eye(2)
        return H

    given = {"hvp": lambda x, y, v: hess2(x, y) @ v} if matrix_free_follower else {"hess": hess2}
    follower = nestopt.Level(
        grad=lambda x, y: (x - y[1:], np.concatenate([[y[0] ** 3 - y[0]], y[1:] - x])),
        value=lambda x, y: -0.5 * y[0] ** 2 + 0.25 * y[0] ** 4 + 0.5 * np.sum((y[1:] - x) ** 2),
        size=3,
        name="follower",
        **given,
    )
    leader = nestopt.Level(
        grad=lambda x, y: (x - 1.0, np.concatenate([[0.0], y[1:]])),
        hess=lambda x, y: np.eye(5),
        value=lambda x, y: 0.5 * np.sum((x - 1.0) ** 2) + 0.5 * np.sum(y[1:] ** 2),
        size=2,
        name="leader",
    )
    start = [np.array([0.3, -0.2]), np.array([0.0, 0.1, 0.4])]
    return nestopt.Problem([leader, follower]), start


@pytest.mark.parametrize("matrix_free_follower", [False, True], ids=["hess", "hvp-only"])
@pytest.mark.parametrize("call", ["best_response", "hypergradient"])
def test_a_follower_on_a_saddle_is_not_accepted(matrix_free_follower, call):
    problem, start = saddle_problem(matrix_free_follower=matrix_free_follower)
    # The truth the error protects: the follower can lower its objective by 0.25.
    x, y = start[0], np.array([1.0, *start[0]])
    y0 = np.array([0.0, *start[0]])
    assert problem.levels[1].value(x, y0) - problem.levels[1].value(x, y) == pytest.approx(0.25)
    with pytest.raises(nestopt.NotPositiveDefiniteError, match=r"level 2 \('follower'\)") as info:
        getattr(nestopt, call)(problem, start)
    assert info.value.level == 2
    assert "Try" in str(info.value)


def test_a_follower_on_a_saddle_is_not_accepted_by_minres_either():
    problem, start = saddle_problem(matrix_free_follower=True)
    with pytest.raises(nestopt.NotPositiveDefiniteError, match=r"level 2 \('follower'\)"):
        nestopt.hypergradient(problem, start, linear_solver="minres")


@pytest.mark.parametrize("matrix_free_follower", [False, True], ids=["hess", "hvp-only"])
def test_solve_does_not_report_success_on_a_saddle_follower(matrix_free_follower):
    problem, start = saddle_problem(matrix_free_follower=matrix_free_follower)
    with pytest.warns(nestopt.ConvergenceWarning, match="not positive definite"):
        result = nestopt.solve(problem, start)
    assert not result.success
    assert result.status is nestopt.Status.NOT_POSITIVE_DEFINITE
    assert "level 2 ('follower')" in result.message


def test_an_asymmetric_hvp_is_reported_as_asymmetric():
    problem = quad(2, (2, 4), seed=3)
    lower = problem.levels[1]
    skew = np.zeros((6, 6))
    skew[2, 3], skew[3, 2] = 0.5, -0.5  # symmetric part unchanged: still positive definite

    def hvp(*args):
        return (lower.hess(*args[:-1]) + skew) @ args[-1]

    bad = nestopt.Problem([problem.levels[0], dataclasses.replace(lower, hess=None, hvp=hvp)])
    with pytest.raises(nestopt.SymmetryError, match=r"level 2.*hvp is not symmetric") as info:
        nestopt.hypergradient(bad, problem.x0)
    assert info.value.level == 2
    assert "not positive definite" not in str(info.value)


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
def test_a_strict_minimum_with_a_tiny_smallest_curvature_passes(scale):
    """Curvatures from 1e-7 to 1 (times ``scale``): positive definite, no false alarm."""
    rng = np.random.default_rng(7)
    d1, d2 = 2, 6
    Q, _ = np.linalg.qr(rng.standard_normal((d2, d2)))
    K = scale * (Q * np.logspace(-7, 0, d2)) @ Q.T
    K = 0.5 * (K + K.T)
    C = scale * rng.standard_normal((d2, d1))
    # f_2 = y^T K y / 2 - y^T C x: y* = K^{-1} C x; f_1 = |y - t|^2 / 2 + |x|^2 / 2.
    target = rng.standard_normal(d2)
    H2 = np.block([[np.zeros((d1, d1)), -C.T], [-C, K]])
    follower = nestopt.Level(
        grad=lambda x, y: (-C.T @ y, K @ y - C @ x),
        hvp=lambda x, y, v: H2 @ v,
        size=d2,
        quadratic=True,
    )
    leader = nestopt.Level(
        grad=lambda x, y: (x, y - target),
        hess=lambda x, y: np.eye(d1 + d2),
        size=d1,
    )
    problem = nestopt.Problem([leader, follower])
    x = np.array([0.3, -0.7])
    y = np.linalg.solve(K, C @ x)
    G = np.linalg.solve(K, C)
    truth = x + G.T @ (y - target)
    g = nestopt.hypergradient(problem, [x, y], level_options={"krylov_maxiter": 200})
    assert relative_error(g, truth) <= 1e-5


def test_krylov_not_converging_is_a_linear_solve_error():
    problem = quad(2, (2, 30), seed=2)
    free = matrix_free(problem)
    with pytest.raises(nestopt.LinearSolveError, match="krylov_maxiter"):
        nestopt.hypergradient(free, problem.x0, level_options={"krylov_maxiter": 2, "maxiter": 200})


# -- the Krylov kernels ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_krylov_kernels_solve_to_their_tolerance(xp, method):
    rng = np.random.default_rng(0)
    n = 40
    B = rng.standard_normal((n, n))
    A_np = B @ B.T / n + np.eye(n)
    if method == "minres":
        A_np = A_np - 1.5 * np.eye(n)  # indefinite: MINRES still solves it
    A = xp.asarray(A_np)
    b = xp.asarray(rng.standard_normal(n))
    result = krylov_solve(lambda v: A @ v, b, method=method, rtol=1e-11, maxiter=500, xp=xp)
    assert result.converged and result.residual <= 1e-10
    assert relative_error(result.x, np.linalg.solve(A_np, nestopt.to_numpy(b))) <= 1e-8
    expected_kind = {"numpy": f"scipy_{method}", "cupy": f"cupyx_{method}"}.get(
        nestopt.get_backend().name, f"portable_{method}"
    )
    assert result.kind == expected_kind


# -- sparse Hessians ----------------------------------------------------------------------


def grid_follower(m: int, *, sparse: bool, mu: float = 0.5):
    """A network follower: ``f_2 = y^T (L + mu I) y / 2 - y^T x`` on an ``m x m`` grid.

    ``L`` is the grid's graph Laplacian; the leader sets the injections ``x`` to
    bring the flows ``y`` near a target: ``f_1 = |y - t|^2 / 2 + 0.1 |x|^2 / 2``.
    """
    n = m * m
    line = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    laplacian = sp.kronsum(line, line).tocsr() + mu * sp.identity(n, format="csr")
    coupling = -sp.identity(n, format="csr")
    H2 = sp.bmat([[None, coupling], [coupling, laplacian]]).tocsr()
    target = np.sin(np.arange(n))
    H1 = sp.block_diag([0.1 * sp.identity(n), sp.identity(n)]).tocsr()

    def as_output(H):
        return H if sparse else H.toarray()

    lower = nestopt.Level(
        grad=lambda x, y: (-y, laplacian @ y - x),
        hess=lambda x, y: as_output(H2),
        value=lambda x, y: 0.5 * y @ (laplacian @ y) - y @ x,
        size=n,
        name="grid",
    )
    upper = nestopt.Level(
        grad=lambda x, y: (0.1 * x, y - target),
        hess=lambda x, y: as_output(H1),
        value=lambda x, y: 0.5 * (y - target) @ (y - target) + 0.05 * x @ x,
        size=n,
    )
    return nestopt.Problem([upper, lower]), laplacian, target


def test_sparse_follower_matches_the_dense_path_and_the_closed_form():
    sparse_problem, laplacian, target = grid_follower(6, sparse=True)
    dense_problem, _, _ = grid_follower(6, sparse=False)
    n = 36
    x = [np.linspace(-1, 1, n), np.zeros(n)]
    a = nestopt.best_response(sparse_problem, x)
    b = nestopt.best_response(dense_problem, x)
    assert relative_error(a.hypergrad, b.hypergrad) <= 1e-12
    # Closed form: y = K^{-1} x, dF/dx = K^{-1} (y - t) + 0.1 x with K = L + mu I.
    K = laplacian.toarray()
    y = np.linalg.solve(K, x[0])
    assert relative_error(a.hypergrad, np.linalg.solve(K, y - target) + 0.1 * x[0]) <= 1e-12
    assert relative_error(a.jacobians[2], np.linalg.inv(K)) <= 1e-12
    solved = nestopt.solve(sparse_problem, x, options={"gtol": 1e-10})
    assert solved.success


def test_sparse_follower_solved_matrix_free_too():
    problem, laplacian, target = grid_follower(5, sparse=True)
    x = [np.linspace(-1, 1, 25), np.zeros(25)]
    direct = nestopt.hypergradient(problem, x)
    krylov = nestopt.hypergradient(problem, x, linear_solver="cg")
    assert relative_error(krylov, direct) <= 1e-8


def test_sparse_concave_follower_is_caught_by_its_inertia():
    problem, laplacian, _ = grid_follower(4, sparse=True, mu=-10.0)
    x = [np.ones(16), np.zeros(16)]
    with pytest.raises(nestopt.NotPositiveDefiniteError):
        nestopt.hypergradient(problem, x)
    with pytest.raises(nestopt.NotPositiveDefiniteError, match="not a minimum"):
        nestopt.hypergradient(problem, x, linear_solver="lu")


# -- a matrix-free problem at (small) scale: group_ridge ---------------------------------


def test_group_ridge_hypergradient_against_the_value_function():
    from nestopt.problems import group_ridge

    problem = group_ridge(1_000, 200, 4, seed=1)
    lam = np.array([-3.0, -2.5, -2.0, -3.5])
    start = [lam, np.zeros(1_000)]
    g = nestopt.hypergradient(problem, start)
    truth = fd_gradient(lambda x: value_function(problem, x, tol=0.0), lam)
    assert relative_error(g, truth) <= 1e-6
    result = nestopt.best_response(problem, start)
    assert result.krylov["iterations"][1] > 0 and result.krylov["residual"][1] <= 1e-9


def test_group_ridge_is_solved_matrix_free():
    from nestopt.problems import group_ridge

    problem = group_ridge(1_000, 200, 3, seed=2)
    start = [np.full(3, -2.0), np.zeros(1_000)]
    result = nestopt.solve(problem, start, options={"gtol": 1e-4})
    assert result.success, result.message
    assert result.fun < result.history["fun"][0]
    # Stationary: the hypergradient at the answer, recomputed, is small against the start's.
    again = nestopt.hypergradient(problem, result.xs)
    assert np.max(np.abs(again)) <= 1e-3 * result.history["grad_norm"][0]


def test_warm_started_outer_iterations_give_the_cold_hypergradients():
    """Along a solve, the follower starts from its prediction (solved loosely) and the
    adjoint from the last one: each iterate's hypergradient must equal a cold one."""
    from nestopt.problems import group_ridge

    problem = group_ridge(2_000, 300, 4, seed=3)
    seen = []

    def record(intermediate):
        seen.append((intermediate.xs, intermediate.hypergrad))

    start = [np.full(4, -2.0), np.zeros(2_000)]
    with pytest.warns(nestopt.ConvergenceWarning, match="maxiter"):  # stopped on purpose
        nestopt.solve(problem, start, options={"maxiter": 4, "gtol": 1e-12}, callback=record)
    assert len(seen) >= 3
    for xs, hypergrad in seen:
        cold = nestopt.hypergradient(problem, [xs[0], np.zeros(2_000)])
        assert relative_error(hypergrad, cold) <= 1e-7


@pytest.mark.parametrize(
    "where",
    ["own block, every call", "own block, from the 4th call", "one Inf in the own block",
     "upper rows only"],
)  # fmt: skip
def test_nan_or_inf_from_an_hvp_is_reported_by_name(where):
    """CG tests its products through ``p^T A p`` rather than a sum of its own: whatever entry
    of a product is NaN or Inf, the run ends with NonFiniteError naming level 2's hvp (the
    upper rows, which CG does not use, through the checked product of the cross rows)."""
    problem = quad(2, (3, 6), seed=2)
    lower = problem.levels[1]
    calls = [0]

    def hvp(*args):
        out = lower.hess(*args[:-1]) @ args[-1]
        calls[0] += 1
        if where == "own block, every call" or (where.endswith("4th call") and calls[0] >= 4):
            out[5] = np.nan
        elif where == "one Inf in the own block" and calls[0] >= 3:
            out[7] = np.inf
        elif where == "upper rows only":
            out[1] = np.nan
        return out

    bad = nestopt.Problem([problem.levels[0], dataclasses.replace(lower, hess=None, hvp=hvp)])
    start = [np.array([0.3, -0.2, 0.5]), np.zeros(6)]
    with pytest.raises(nestopt.NonFiniteError, match=r"level 2.*'hvp'.*NaN or Inf") as info:
        nestopt.hypergradient(bad, start)
    assert info.value.level == 2


@pytest.mark.parametrize("n_features, n_groups", [(1_000, 4), (1_003, 7)])
def test_group_ridge_callables_match_their_formulas(n_features, n_groups):
    """The callables work on the used columns only and sum per group without bincount: they
    must equal the problem's formulas written out with the whole data matrix, for ``p`` that
    the groups divide and for ``p`` that they do not, and for products that move ``lam``."""
    from nestopt.problems import group_ridge

    problem = group_ridge(n_features, 50, n_groups, per_row=3, seed=4)
    data = problem.data
    X, y, X_val, y_val = (data[k] for k in ("X_train", "y_train", "X_val", "y_val"))
    X, X_val = X.toarray(), X_val.toarray()
    assert np.sum(~X.any(axis=0)) > n_features // 2  # many unused columns: the case at stake
    n, groups = X.shape[0], np.arange(n_features) % n_groups
    rng = np.random.default_rng(5)
    lam, theta = rng.standard_normal(n_groups), rng.standard_normal(n_features)
    e = np.exp(lam)[groups]
    # f_2 and its derivatives written out; H is the full Hessian in (lam, theta).
    value = np.sum((X @ theta - y) ** 2) / (2 * n) + 0.5 * e @ theta**2
    grad = (
        np.bincount(groups, 0.5 * e * theta**2, n_groups),
        X.T @ (X @ theta - y) / n + e * theta,
    )
    H = np.zeros((n_groups + n_features,) * 2)
    H[:n_groups, :n_groups] = np.diag(np.bincount(groups, 0.5 * e * theta**2, n_groups))
    cross = np.zeros((n_groups, n_features))
    cross[groups, np.arange(n_features)] = e * theta
    H[:n_groups, n_groups:], H[n_groups:, :n_groups] = cross, cross.T
    H[n_groups:, n_groups:] = X.T @ X / n + np.diag(e)
    leader, learner = problem.levels
    assert learner.value(lam, theta) == pytest.approx(value, rel=1e-13)
    for ours, truth in zip(learner.grad(lam, theta), grad, strict=True):
        np.testing.assert_allclose(ours, truth, rtol=1e-12, atol=1e-14)
    for v in (np.concatenate([np.zeros(n_groups), rng.standard_normal(n_features)]),
              rng.standard_normal(n_groups + n_features)):  # fmt: skip
        np.testing.assert_allclose(learner.hvp(lam, theta, v), H @ v, rtol=1e-12, atol=1e-13)
    r_val = X_val @ theta - y_val
    assert leader.value(lam, theta) == pytest.approx(r_val @ r_val / (2 * n), rel=1e-13)
    np.testing.assert_allclose(leader.grad(lam, theta)[1], X_val.T @ r_val / n, atol=1e-14)
    v = rng.standard_normal(n_groups + n_features)
    np.testing.assert_allclose(
        leader.hvp(lam, theta, v)[n_groups:], X_val.T @ (X_val @ v[n_groups:]) / n, atol=1e-13
    )


def test_an_hvp_that_returns_its_input_is_safe():
    """CG hands ``hvp`` the vector that holds its direction; an ``hvp`` that returns that very
    vector (an identity Hessian) must still give the right solution and hypergradient."""
    c, a = np.array([1.0, -2.0, 0.5, 3.0]), np.array([0.3, 0.1, -0.7, 2.0])
    follower = nestopt.Level(
        value=lambda x, y: 0.5 * x @ x + 0.5 * (y - c) @ (y - c),
        grad=lambda x, y: np.concatenate([x, y - c]),
        hvp=lambda x, y, v: v,  # the Hessian is the identity: dy*/dx = 0
        size=4,
    )
    leader = nestopt.Level(
        value=lambda x, y: 0.5 * (y - a) @ (y - a) + 0.5 * x @ x,
        grad=lambda x, y: np.concatenate([x, y - a]),
        hvp=lambda x, y, v: v,
        size=2,
    )
    problem = nestopt.Problem([leader, follower])
    x = np.array([0.4, -1.5])
    result = nestopt.best_response(problem, [x, np.zeros(4)])
    np.testing.assert_allclose(result.xs[1], c, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nestopt.hypergradient(problem, [x, np.zeros(4)]), x, atol=1e-12)
