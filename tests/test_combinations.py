"""One trilevel problem through every combination of level kinds nestopt supports.

Level 2 is dense, sparse or matrix-free (``hvp`` only); level 3 is dense,
sparse, matrix-free, or dense with an active nonlinear constraint (a ball) or
an active bound and coupled linear row. The exact hypergradient must be the
same in every combination (the curvature terms of DESIGN 3 and 7 are written
once), and equal to finite differences of the value function.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import fd_gradient, relative_error, value_function
from test_constraints import constrained_softplus

import nestopt
from nestopt.problems import softplus_levels

X = [np.array([0.5, -0.4]), np.zeros(3), np.zeros(3)]
# Krylov solves stop at a relative residual of 1e-10 (krylov_rtol); the exact
# terms of a matrix-free level carry that error, times the block's conditioning.
TOL = {"dense": 1e-10, "sparse": 1e-10, "hvp": 1e-7}


def _as(kind, level):
    if kind == "dense":
        return level
    if kind == "sparse":
        dense = level.hess
        return dataclasses.replace(level, hess=lambda *xs, **kw: sp.csr_matrix(dense(*xs, **kw)))
    full = level.hess  # matrix-free: only products with the Hessian

    def hvp(*args):
        *xs, v = args
        return full(*xs) @ v

    return dataclasses.replace(level, hess=None, hvp=hvp)


def _problem(second, third):
    if third in ("ball", "bound_and_coupled"):
        levels = list(constrained_softplus(third).levels)
    else:
        levels = list(softplus_levels(3, (2, 3, 3), seed=3, beta=2.0).levels)
        levels[2] = _as(third, levels[2])
    levels[1] = _as(second, levels[1])
    return nestopt.Problem(levels)


@pytest.fixture(scope="module")
def truth():
    """Finite differences of the value function, one per kind of bottom level."""
    out = {}
    for third in ("dense", "ball", "bound_and_coupled"):
        problem = _problem("dense", third)
        out[third] = fd_gradient(lambda x1, p=problem: value_function(p, x1), X[0])
    return out


@pytest.mark.parametrize("third", ["dense", "sparse", "hvp", "ball", "bound_and_coupled"])
@pytest.mark.parametrize("second", ["dense", "sparse", "hvp"])
def test_exact_hypergradient_is_the_same_in_every_combination(second, third, truth):
    problem = _problem(second, third)
    got = nestopt.hypergradient(problem, X, curvature="exact")
    reference = nestopt.hypergradient(_problem("dense", third), X, curvature="exact")
    tol = max(TOL[second], TOL.get(third, 1e-10))
    assert relative_error(got, reference) <= tol
    key = third if third in truth else "dense"
    assert relative_error(got, truth[key]) <= 1e-7
    first = nestopt.hypergradient(problem, X, curvature="first_order")
    assert relative_error(first, truth[key]) >= 1e-4  # the terms matter on this problem


def test_every_jacobian_system_implements_the_protocol():
    from nestopt._linalg.dense_system import DenseSystem
    from nestopt._linalg.jacobian_system import JacobianSystem
    from nestopt._linalg.kkt_system import KKTSystem
    from nestopt._linalg.product_system import ProductSystem
    from nestopt._respond.matrix_free import OperatorSystem

    for cls in (DenseSystem, ProductSystem, KKTSystem, OperatorSystem):
        assert issubclass(cls, JacobianSystem), cls.__name__
