"""Adjoint mode forms only the Jacobian columns the reduced Hessians need (DESIGN 8, issue 22).

A dense level ``j`` above other levels needs ``R_j[:, j]`` (``d_j`` columns) for its own
block; the columns of the upper variables are applied to vectors. The counts below are
the right-hand sides each level's factor solves; the values are checked against the
closed form of ``quad`` and against the forward composition (every ``G_k`` formed).
"""

from __future__ import annotations

import numpy as np
import pytest

import nestopt
from nestopt._linalg.dense_system import DenseSystem
from nestopt._methods.run import start_run
from nestopt.problems import quad, quad_reference, softplus_levels


def relative_error(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def solved_point(problem, seed=0):
    """A random ``x_1`` with every lower level at its exact response, and the truth there."""
    data = problem.data
    ref = quad_reference(data["Q"], data["c"], data["sizes"])
    x1 = np.random.default_rng(seed).standard_normal(data["sizes"][0])
    return tuple(ref["responses"](x1)), ref["hessian"] @ x1 + ref["grad_at_zero"]


@pytest.fixture
def solves(monkeypatch):
    """``{level: columns}`` of the matrix right-hand sides every Jacobian system solves."""
    columns: dict[int, int] = {}
    original = DenseSystem.solve

    def counted(self, rhs):
        if rhs.ndim == 2:
            columns[self.j] = columns.get(self.j, 0) + rhs.shape[1]
        return original(self, rhs)

    monkeypatch.setattr(DenseSystem, "solve", counted)
    return columns


def _forward(problem, xs, curvature):
    """The hypergradient through the stacked ``R_1`` (every ``G_k`` with dense cross rows)."""
    run = start_run(problem, xs, "implicit", {"curvature": curvature})
    state = run.engine.respond(run.xs)
    g = np.asarray(run.engine.oracles.grad(1, state.xs))
    d1 = problem.sizes[0]
    return g[:d1] + np.asarray(state.R()).T @ g[d1:]


@pytest.mark.parametrize(
    "sizes", [(4, 5), (5, 5, 5), (2, 6, 3), (3, 1, 4), (3, 2, 4, 5), (4, 4, 4, 4), (2, 5, 1, 3)]
)
def test_hypergradient_equals_the_closed_form_and_the_forward_composition(sizes):
    problem = quad(len(sizes), sizes, seed=7)
    xs, truth = solved_point(problem, seed=len(sizes))
    got = nestopt.hypergradient(problem, xs, curvature="first_order")
    assert relative_error(got, truth) <= 1e-12
    assert relative_error(_forward(problem, xs, "first_order"), truth) <= 1e-12
    exact = nestopt.hypergradient(problem, xs, curvature="exact")  # quadratic: no term
    assert relative_error(exact, truth) <= 1e-12


def test_three_levels_form_only_level_twos_columns(solves):
    sizes = (4, 5, 6)
    problem = quad(3, sizes, seed=3)
    xs, truth = solved_point(problem)
    run = start_run(problem, xs, "implicit", {"curvature": "first_order"})
    state = run.engine.respond(run.xs)
    got = run.engine.hypergradient(state)
    assert relative_error(got, truth) <= 1e-12
    # Level 3's factor solves d_2 = 5 columns (dx_3*/dx_2), not s_2 = 9; level 2's only
    # vectors; and no R_k is stacked.
    assert solves == {3: sizes[1]}, solves
    assert not run.engine.nest._stacks
    system = state.top.system  # level 2's: its cross rows B never formed so far
    assert type(system).__name__ == "ProductSystem" and system._B is None
    # Asking for the Jacobians forms them (then s_2 columns at level 3, s_1 at level 2).
    jacobians = run.engine.jacobians(state)
    assert system._B is not None
    assert jacobians[3].shape == (6, 9) and jacobians[2].shape == (5, 4)
    assert relative_error(run.engine.hypergradient(state), truth) <= 1e-12  # through them


def test_four_levels_form_d_k_columns_per_level(solves):
    sizes = (3, 2, 4, 5)
    problem = quad(4, sizes, seed=2)
    xs, truth = solved_point(problem)
    run = start_run(problem, xs, "implicit", {"curvature": "first_order"})
    state = run.engine.respond(run.xs)
    assert relative_error(run.engine.hypergradient(state), truth) <= 1e-12
    # Level 3 needs dx_4*/dx_3 (4 columns), level 2 dr_>2/dx_2 through levels 3 and 4
    # (2 columns each); x_1's columns are never formed.
    assert solves == {4: sizes[2] + sizes[1], 3: sizes[1]}, solves
    assert not run.engine.nest._stacks


def test_exact_mode_equals_the_forward_composition():
    # softplus levels are not quadratic: level 2 gets the exact curvature term of level 3,
    # whose own rows go into A and whose products into the cross rows.
    problem = softplus_levels(3, (3, 4, 2), seed=1, beta=3.0)
    solved = nestopt.best_response(problem, problem.x0, level_options={"tol": 0.0}).xs
    for curvature in ("exact", "first_order"):
        got = nestopt.hypergradient(problem, solved, curvature=curvature)
        assert relative_error(got, _forward(problem, solved, curvature)) <= 1e-12


@pytest.mark.parametrize("linear_solver", ["lu", "lstsq"])
def test_lu_and_least_squares_levels_probe_their_formed_cross_rows(linear_solver):
    # An LU or least-squares factor is checked by a residual probe on the formed B.
    problem = quad(4, (3, 2, 4, 5), seed=5)
    xs, truth = solved_point(problem, seed=1)
    options = {"linear_solver": linear_solver}
    got = nestopt.hypergradient(problem, xs, curvature="first_order", level_options=options)
    assert relative_error(got, truth) <= 1e-11
