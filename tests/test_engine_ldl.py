"""Inertia from Bunch-Kaufman pivots and IPOPT's inertia correction, against eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest

from nestopt._errors import FactorizationError
from nestopt._linalg.ldl import factor_positive, factor_symmetric
from nestopt._respond.constrained.newton_system import InertiaCorrection, factor_newton_system

pytest.importorskip("scipy")


@pytest.mark.parametrize("seed", range(12))
def test_inertia_read_from_pivots_matches_eigenvalues(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    signs = rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.4, 0.1, 0.5])
    magnitudes = 10.0 ** rng.uniform(-2, 2, size=n)  # zeros must stand out from rounding
    K = (Q * (signs * magnitudes)) @ Q.T
    K = 0.5 * (K + K.T)
    factor = factor_symmetric(K, np)
    truth = (int(np.sum(signs > 0)), int(np.sum(signs < 0)), int(np.sum(signs == 0)))
    assert factor.inertia == truth
    if truth[2] == 0:
        b = rng.standard_normal(n)
        x = factor.solve(b)
        assert np.linalg.norm(K @ x - b) <= 1e-8 * np.linalg.norm(K, 2) * np.linalg.norm(x)


def test_stiff_diagonal_entries_are_not_called_zero():
    # Barrier terms 1e20 next to entries of order one: equilibration keeps both.
    K = np.array([[1e20, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    assert factor_symmetric(K, np).inertia == (2, 1, 0)


def test_positive_factor_rejects_indefinite_and_singular_matrices():
    with pytest.raises(FactorizationError):
        factor_positive(np.array([[1.0, 2.0], [2.0, 1.0]]), np)
    with pytest.raises(FactorizationError):
        factor_positive(np.array([[1.0, 1.0], [1.0, 1.0]]), np)
    with pytest.raises(FactorizationError):
        factor_symmetric(np.array([[np.nan, 0.0], [0.0, 1.0]]), np)


def test_inertia_correction_shifts_an_indefinite_hessian(xp):
    # LDL^T on NumPy, condensed Cholesky on the strict namespace.
    # W has a negative eigenvalue on the null space of the row: a shift is needed.
    W = xp.asarray([[1.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 1.0]], dtype=xp.float64)
    JE = xp.asarray([[1.0, 0.0, 0.0]], dtype=xp.float64)
    JI = xp.zeros((0, 3), dtype=xp.float64)
    zero = xp.zeros((3,), dtype=xp.float64)
    correction = InertiaCorrection()
    system = factor_newton_system(
        W, zero, xp.zeros((0,), dtype=xp.float64), JE, JI, 0.1, correction
    )
    assert system.delta_w > 2.0 and correction.delta_w_last == system.delta_w
    # The shifted system is solved exactly.
    b = xp.asarray([1.0, 2.0, 3.0], dtype=xp.float64)
    dx, _, dyE, _ = system.solve(
        b,
        xp.zeros((0,), dtype=xp.float64),
        xp.asarray([0.5], dtype=xp.float64),
        xp.zeros((0,), dtype=xp.float64),
    )
    H = np.asarray(W) + system.delta_w * np.eye(3)
    K = np.block([[H, np.asarray(JE).T], [np.asarray(JE), -system.delta_c * np.eye(1)]])
    out = np.linalg.solve(K, np.array([1.0, 2.0, 3.0, 0.5]))
    assert np.allclose(np.asarray(dx), out[:3], rtol=1e-10) and np.allclose(
        np.asarray(dyE), out[3:]
    )
