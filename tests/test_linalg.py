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
