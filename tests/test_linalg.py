"""The kernel table: factor once, solve many, on every backend present."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_array_on, relative_error

from nestopt._errors import FactorizationError
from nestopt._linalg import factor as _linalg
from nestopt._linalg.factor import factorize
from nestopt._linalg.triangular import backward_substitution, forward_substitution


def spd(n: int, seed: int = 0) -> np.ndarray:
    b = np.random.default_rng(seed).standard_normal((n, n))
    return b.T @ b / n + 0.5 * np.eye(n)


@pytest.mark.parametrize("n", [1, 5, 64, 130])
@pytest.mark.parametrize("method", ["cholesky", "lu", "lstsq"])
def test_solve_matches_dense_solve(xp, n, method):
    a_np = spd(n, seed=n)
    rhs_np = np.random.default_rng(1).standard_normal((n, 3))
    a = xp.asarray(a_np)
    fact = factorize(a, method=method, xp=xp)
    x = fact.solve(xp.asarray(rhs_np))
    assert_array_on(x, xp, shape=(n, 3))
    expected = np.linalg.solve(a_np, rhs_np)
    # Backward-stable solves of a matrix with condition number below ~1e3:
    # forward error below cond * eps * small factor.
    assert relative_error(x, expected) < 1e-11
    v = fact.solve(xp.asarray(rhs_np[:, 0]))
    assert_array_on(v, xp, shape=(n,))
    assert relative_error(v, expected[:, 0]) < 1e-11


def test_kernel_choice_is_visible(xp, backend_name):
    fact = factorize(xp.asarray(spd(4)), method="cholesky", xp=xp)
    expected = {
        "numpy": "scipy_cholesky" if _linalg.scipy_linalg() is not None else "blocked_substitution",
        "array_api_strict": "blocked_substitution",
        "torch": "torch_cholesky",
        "cupy": "cupy_cholesky",
    }[backend_name]
    assert fact.kind == expected


def test_not_positive_definite_is_detected(xp):
    a = xp.asarray(np.diag([1.0, -2.0, 3.0]))
    with pytest.raises(FactorizationError):
        factorize(a, method="cholesky", xp=xp)


def test_numerically_singular_is_detected(xp):
    a = xp.asarray(np.diag([1.0, 1e-20]))
    with pytest.raises(FactorizationError, match="singular"):
        factorize(a, method="cholesky", xp=xp)


def test_portable_substitution_across_block_boundaries(xp):
    n = 150  # crosses the 64-wide blocks twice
    low_np = np.linalg.cholesky(spd(n, seed=3))
    rhs_np = np.random.default_rng(4).standard_normal((n, 2))
    low = xp.asarray(low_np)
    y = forward_substitution(low, xp.asarray(rhs_np), xp=xp)
    assert relative_error(y, np.linalg.solve(low_np, rhs_np)) < 1e-11
    z = backward_substitution(xp.asarray(low_np.T.copy()), xp.asarray(rhs_np), xp=xp)
    assert relative_error(z, np.linalg.solve(low_np.T, rhs_np)) < 1e-11


def test_unknown_solver_lists_the_known_ones(xp):
    with pytest.raises(ValueError, match="cholesky, lu, lstsq"):
        factorize(xp.asarray(spd(2)), method="qr", xp=xp)


@pytest.mark.parametrize("lead", [0, 3])
@pytest.mark.parametrize("warm", [False, True])
def test_cg_solves_and_leaves_its_inputs_alone(xp, lead, warm):
    """nestopt's CG (updates in place on NumPy, CuPy and torch, functional elsewhere)
    solves an SPD system to its tolerance, reports Ritz values inside A's spectrum, never
    writes to ``b`` or ``x0``, and with ``lead`` hands ``matvec`` vectors ``(0, v)`` whose
    leading zeros stay zeros."""
    from nestopt._linalg.cg import cg, smallest_ritz

    n = 40
    a_np = spd(n, seed=7)
    b_np = np.random.default_rng(8).standard_normal(n)
    a, b = xp.asarray(a_np), xp.asarray(b_np)
    x0 = xp.asarray(np.linalg.solve(a_np, b_np) + 0.1) if warm else None
    seen = []

    def matvec(w):
        w_np = np.asarray(w)
        assert w_np.shape == (lead + n,)
        seen.append(float(np.max(np.abs(w_np[:lead]), initial=0.0)))
        return a @ w[lead:]

    run = cg(matvec, b, rtol=1e-12, maxiter=200, xp=xp, x0=x0, lead=lead)
    assert_array_on(run.x, xp, shape=(n,))
    truth = np.linalg.solve(a_np, b_np)
    assert relative_error(run.x, truth) < 1e-9
    assert np.linalg.norm(a_np @ np.asarray(run.x) - b_np) <= 1.1e-12 * np.linalg.norm(b_np)
    assert seen and max(seen) == 0.0
    np.testing.assert_array_equal(np.asarray(b), b_np)
    if warm:
        np.testing.assert_array_equal(np.asarray(x0), np.linalg.solve(a_np, b_np) + 0.1)
    low, high = np.linalg.eigvalsh(a_np)[[0, -1]]
    ritz = smallest_ritz(run.diagonal, run.offdiagonal)
    assert low * (1 - 1e-9) <= ritz <= high * (1 + 1e-9)


def test_cg_in_single_precision():
    """float32 stays float32 through CG's updates and reaches a tolerance that single
    precision allows."""
    from nestopt._linalg.cg import cg

    a = spd(30, seed=9).astype(np.float32)
    b = np.random.default_rng(10).standard_normal(30).astype(np.float32)
    run = cg(lambda v: a @ v, b, rtol=1e-5, maxiter=100, xp=np)
    assert run.x.dtype == np.float32
    assert np.linalg.norm(a @ run.x - b) <= 2e-5 * np.linalg.norm(b)
