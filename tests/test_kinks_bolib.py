"""Certified kinks on published BOLIB problems beyond ``nestopt.problems.bolib``.

BOLIB (S. Zhou, A. B. Zemkoho and A. Tin, "BOLIB: Bilevel Optimization LIBrary of
test problems", 2020; MATLAB sources in github.com/ShenglongZhou/BOLIB, ``xy_init``
and the best known ``Ff_optimal`` from its version 2) has, besides the three problems
in ``nestopt.problems.bolib`` (DeSilva1978, Outrata1993Ex31, Outrata1994Ex31), small
smooth problems with a follower strongly convex in ``y`` whose optimum has a follower
constraint WEAKLY active: at its bound with a zero multiplier, a kink of the leader's
value function ``F(x) = F(x, y(x))``. Each is written out below from BOLIB's source
(BOLIB writes ``g(x, y) <= 0`` and ``G(x, y) <= 0``), with the optimum derived
independently of nestopt (closed form over the pieces of the response ``y(x)``, checked
with NumPy/SciPy below), and solved by nestopt from BOLIB's start: each must end
SUCCESS with "kink certified" at that optimum (xs within 1e-6, F* within 1e-6 relative).

Certified from BOLIB's start: AllendeStill2013 (with and without its redundant leader rows
-y <= 0; with them level 1 runs its interior point, and its kink is certified by the second-
order test because none of those rows is at its bound), HatzEtal2013, Outrata1990Ex1b,
Outrata1990Ex1d (its kink is the line x1 = 2: the run steps along it from kink to kink, by
the secant on the slope along the line, to the minimum), Outrata1990Ex2c,
ShimizuAiyoshi1981Ex1 (its level 1 has rows: certified to first order; its certificate was
computed and then hidden behind the interior point's own success message until this test
found it). Marked xfail (strict) with what nestopt returns: Outrata1990Ex1e, which from
BOLIB's start ends SUCCESS at another, smooth local minimum (a correct answer for a local
method; from (0, 1) its kink optimum is certified, tested below). Outrata1990Ex1b and
Ex1e improve on the published F*.

Screened and left out (no strict weakly active optimum, or not strongly convex):
Outrata1990Ex2a (both follower rows active at a corner; F constant for every large x:
no strict minimum), Outrata1990Ex1c (F does not depend on x: a set of optima),
Outrata1990Ex2b (follower linear in y2), SinhaMaloDeb2014TP6 (three follower rows active
in R^2: LICQ fails), Bard1988Ex2 (a set of optima, three active rows in a 2-block),
CalamaiVicente1994b/c (the best known F = 0.3125 is where the follower's feasible set
shrinks to a point, two rows active for one y: LICQ fails; the other coordinate's row is
weakly active there), FalkLiu1995 (interior optimum x = y = 0.75, F = -2.25, better than
the published -2.1962), Bard1988Ex1 / Colson2002BIPA2 (the follower's feasible set is a
point at the optimum), Outrata1993Ex32 (Outrata1994Ex31 without its inactive bound
x <= 10: the same kink, tested in tests/test_kinks.py); the problems whose follower is
linear or nonconvex in y (most of the rest).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import nestopt

pytest.importorskip("scipy")

INF = math.inf
C = 0.333  # Outrata's rounded coefficients, as in BOLIB
K = 1.333


@dataclass
class Case:
    name: str
    problem: nestopt.Problem
    x0: list[np.ndarray]  # BOLIB's xy_init, split into (x, y)
    solution: list[np.ndarray]  # the independent (x*, y*)
    F: float  # F* at the independent optimum
    F_published: float
    response: Any  # x -> (y, multipliers of the follower's rows, their values g - ub)
    weak: tuple[int, ...]  # the weakly active rows, indices into response's rows
    leader_feasible: Any = None  # (x, y) -> bool, for the leader's own rows


def _qp_response(Q, q, A, b):
    """min y'Qy/2 + q'y s.t. A y <= b, by enumerating active sets (KKT, multipliers >= 0)."""
    m, n = A.shape
    for k in range(n + 1):
        for S in itertools.combinations(range(m), k):
            S = list(S)
            kkt = np.zeros((n + k, n + k))
            kkt[:n, :n] = Q
            kkt[:n, n:] = A[S].T
            kkt[n:, :n] = A[S]
            try:
                sol = np.linalg.solve(kkt, np.concatenate([-q, b[S]]))
            except np.linalg.LinAlgError:
                continue
            y, lam = sol[:n], sol[n:]
            if np.all(A @ y - b <= 1e-10) and np.all(lam >= -1e-10):
                mult = np.zeros(m)
                mult[S] = lam
                return y, mult, A @ y - b
    raise AssertionError("no KKT point")


# -- AllendeStill2013 ---------------------------------------------------------------


def allende_still_2013(full_upper: bool) -> Case:
    """AllendeStill2013 (G. B. Allende and G. Still, Math. Program. 138, 2013).

    min (x1 - 1)^2 + (x2 - 1)^2 + |y|^2 s.t. G: -x <= 0, x1 - 2 <= 0, -y <= 0;
    y solves min |y|^2 - 2 x'y s.t. g: (y_i - 1)^2 - 1/4 <= 0 (i.e. 0.5 <= y_i <= 1.5,
    two nonlinear rows). The response is y_i = clip(x_i, 0.5, 1.5); per coordinate
    F_i = (x_i - 1)^2 + 1/4 left of 0.5 (slope -1 at 0.5) and (x_i - 1)^2 + x_i^2 on
    [0.5, 1.5] (slope 0 and curvature 4 at 0.5): x* = y* = (0.5, 0.5), F* = 1, f* = -0.5,
    both rows at their bound with multiplier 2 (y - x) / (2 (1 - y)) = 0: weakly active,
    4 pieces. Published F* = 1, f* = -0.5: agrees. Start (0, 0, 0, 0).

    The leader's rows -y <= 0 are implied by the follower's (y >= 0.5) and inactive; with
    ``full_upper`` they are kept as a level-1 LinearConstraint (level 1 then runs its
    interior point, whose kink examination is first order only), else dropped.
    """
    eye = np.eye(2)
    z = np.zeros((2, 2))
    g = nestopt.NonlinearConstraint(
        lambda x, y: (y - 1.0) ** 2,
        np.full(2, -INF),
        np.full(2, 0.25),
        jac=lambda x, y: np.hstack([z, np.diag(2.0 * (y - 1.0))]),
        hess=lambda x, y, v: np.block([[z, z], [z, np.diag(2.0 * v)]]),
        name="(y - 1)^2 <= 1/4",
    )
    follower = nestopt.Level(
        value=lambda x, y: float(y @ y - 2.0 * x @ y),
        grad=lambda x, y: np.concatenate([-2.0 * y, 2.0 * y - 2.0 * x]),
        hess=lambda x, y: np.block([[z, -2 * eye], [-2 * eye, 2 * eye]]),
        size=2,
        constraints=[g],
        name="follower",
    )
    upper_rows = []
    if full_upper:
        upper_rows = [nestopt.LinearConstraint(np.hstack([z, eye]), np.zeros(2), np.full(2, INF))]
    leader = nestopt.Level(
        value=lambda x, y: float((x - 1) @ (x - 1) + y @ y),
        grad=lambda x, y: np.concatenate([2.0 * (x - 1.0), 2.0 * y]),
        hess=lambda x, y: 2.0 * np.eye(4),
        size=2,
        bounds=nestopt.Bounds(np.zeros(2), np.array([2.0, INF])),
        constraints=upper_rows,
    )

    def response(x):
        y = np.clip(x, 0.5, 1.5)
        # stationarity 2 (y - x) + 2 mu (y - 1) = 0 on an active row
        active = np.abs((y - 1) ** 2 - 0.25) < 1e-12
        mu = np.where(active, -(y - x) / np.where(active, y - 1, 1.0), 0.0)
        return y, mu, (y - 1) ** 2 - 0.25

    return Case(
        name="AllendeStill2013" + ("" if full_upper else " (G: y >= 0 dropped)"),
        problem=nestopt.Problem([leader, follower]),
        x0=[np.zeros(2), np.zeros(2)],
        solution=[np.full(2, 0.5), np.full(2, 0.5)],
        F=1.0,
        F_published=1.0,
        response=response,
        weak=(0, 1),
        leader_feasible=lambda x, y: bool(np.all(x >= 0) and x[0] <= 2 and np.all(y >= 0)),
    )


# -- HatzEtal2013 -------------------------------------------------------------------


def hatz_etal_2013() -> Case:
    """HatzEtal2013 (K. Hatz, S. Leyffer, J. P. Schloeder and H. G. Bock, preprint, 2013).

    min -x + 2 y1 + y2 over x in R; y solves min (x - y1)^2 + y2^2 s.t. -y <= 0.
    Response y = (max(x, 0), 0): F = -x for x <= 0 and x for x >= 0, a V with slopes -1
    and +1: x* = 0, y* = (0, 0), F* = f* = 0. There both bounds are weakly active (the
    multipliers are 2 (x - y1) = 0 and 2 y2 = 0); y2 >= 0 is weakly active at EVERY x
    (the unconstrained y2 = 0 sits on its bound): 2 rows, 4 pieces at x*. Published
    F* = 0, f* = 0: agrees. Start (1, 1, 1).
    """
    follower = nestopt.Level(
        value=lambda x, y: float((x[0] - y[0]) ** 2 + y[1] ** 2),
        grad=lambda x, y: np.array([2 * (x[0] - y[0]), -2 * (x[0] - y[0]), 2 * y[1]]),
        hess=lambda x, y: np.array([[2.0, -2.0, 0.0], [-2.0, 2.0, 0.0], [0.0, 0.0, 2.0]]),
        size=2,
        bounds=nestopt.Bounds(np.zeros(2), np.full(2, INF)),
        name="follower",
    )
    leader = nestopt.Level(
        value=lambda x, y: float(-x[0] + 2 * y[0] + y[1]),
        grad=lambda x, y: np.array([-1.0, 2.0, 1.0]),
        hess=lambda x, y: np.zeros((3, 3)),
        size=1,
    )

    def response(x):
        y = np.array([max(x[0], 0.0), 0.0])
        # stationarity: 2 (y1 - x) - mu1 = 0, 2 y2 - mu2 = 0 (mu >= 0 on y >= 0)
        mu = np.array([2 * (y[0] - x[0]), 2 * y[1]])
        return y, mu, -y

    return Case(
        name="HatzEtal2013",
        problem=nestopt.Problem([leader, follower]),
        x0=[np.array([1.0]), np.array([1.0, 1.0])],
        solution=[np.zeros(1), np.zeros(2)],
        F=0.0,
        F_published=0.0,
        response=response,
        weak=(0, 1),
    )


# -- ShimizuAiyoshi1981Ex1 ----------------------------------------------------------


def shimizu_aiyoshi_1981_ex1() -> Case:
    """ShimizuAiyoshi1981Ex1 (Shimizu & Aiyoshi, IEEE Trans. Autom. Control 26, 1981).

    min x^2 + (y - 10)^2 s.t. G: x - 15 <= 0, y - x <= 0, -x <= 0; y solves
    min (x + 2y - 30)^2 s.t. g: x + y - 20 <= 0, y - 20 <= 0, -y <= 0 (f_yy = 8).
    Response for 0 <= x <= 15: y = (30 - x)/2 for x <= 10 (the unconstrained one), and
    y = 20 - x (row x + y <= 20 active) for x >= 10. The leader's row y <= x holds iff
    x >= 10 on either piece, and F = x^2 + (10 - x)^2 rises from x = 10 (slope 20):
    x* = 10, y* = 10, F* = 100, f* = 0. At x* the row x + y <= 20 is at its bound with
    multiplier -4 (x + 2y - 30) = 0: weakly active; the leader's row y - x <= 0 is
    active too (level 1 runs its interior point). Published F* = 100, f* = 0: agrees.
    Start (1, 1) (infeasible for the leader: y(1) = 14.5 > 1).
    """
    follower = nestopt.Level(
        value=lambda x, y: float((x[0] + 2 * y[0] - 30) ** 2),
        grad=lambda x, y: np.array([2.0, 4.0]) * (x[0] + 2 * y[0] - 30),
        hess=lambda x, y: np.array([[2.0, 4.0], [4.0, 8.0]]),
        size=1,
        bounds=nestopt.Bounds(np.zeros(1), np.full(1, 20.0)),
        constraints=[nestopt.LinearConstraint(np.array([[1.0, 1.0]]), -INF, 20.0)],
        name="follower",
    )
    leader = nestopt.Level(
        value=lambda x, y: float(x[0] ** 2 + (y[0] - 10) ** 2),
        grad=lambda x, y: np.array([2 * x[0], 2 * (y[0] - 10)]),
        hess=lambda x, y: 2.0 * np.eye(2),
        size=1,
        bounds=nestopt.Bounds(np.zeros(1), np.full(1, 15.0)),
        constraints=[nestopt.LinearConstraint(np.array([[-1.0, 1.0]]), -INF, 0.0)],
    )

    def response(x):
        A = np.array([[1.0], [1.0], [-1.0]])  # x + y <= 20, y <= 20, -y <= 0
        b = np.array([20.0 - x[0], 20.0, 0.0])
        return _qp_response(np.array([[8.0]]), np.array([4.0 * (x[0] - 30)]), A, b)

    return Case(
        name="ShimizuAiyoshi1981Ex1",
        problem=nestopt.Problem([leader, follower]),
        x0=[np.array([1.0]), np.array([1.0])],
        solution=[np.array([10.0]), np.array([10.0])],
        F=100.0,
        F_published=100.0,
        response=response,
        weak=(0,),
        leader_feasible=lambda x, y: bool(0 <= x[0] <= 15 and y[0] <= x[0]),
    )


# -- Outrata1990Ex1b, Ex1d, Ex1e: one family ---------------------------------------

_POLY = np.array([[-C, 1.0], [1.0, -C], [-1.0, 0.0], [0.0, -1.0]])  # A y <= b, BOLIB's g
_POLY_B = np.array([2.0, 2.0, 0.0, 0.0])
_T = np.array([3.0, 4.0])


def _outrata_ex1(H, P, r):
    """min r |x|^2 + |y - (3, 4)|^2/2 - 12.5 over x in R^2; y solves
    min y'Hy/2 + (P x)'y s.t. -0.333 y1 + y2 <= 2, y1 - 0.333 y2 <= 2, y >= 0."""
    z = np.zeros((2, 2))
    follower = nestopt.Level(
        value=lambda x, y: float(0.5 * y @ H @ y + (P @ x) @ y),
        grad=lambda x, y: np.concatenate([P.T @ y, H @ y + P @ x]),
        hess=lambda x, y: np.block([[z, P.T], [P, H]]),
        size=2,
        bounds=nestopt.Bounds(np.zeros(2), np.full(2, INF)),
        constraints=[
            nestopt.LinearConstraint(np.hstack([z, _POLY[:2]]), np.full(2, -INF), _POLY_B[:2])
        ],
        name="follower",
    )
    leader = nestopt.Level(
        value=lambda x, y: float(r * x @ x + 0.5 * (y - _T) @ (y - _T) - 12.5),
        grad=lambda x, y: np.concatenate([2 * r * x, y - _T]),
        hess=lambda x, y: np.diag([2 * r, 2 * r, 1.0, 1.0]),
        size=2,
    )

    def response(x):
        return _qp_response(H, P @ x, _POLY, _POLY_B)

    return nestopt.Problem([leader, follower]), response


_H_B = np.array([[1.0, -2.0], [-2.0, 5.0]])
_H_D = np.array([[1.0, 3.0], [3.0, 10.0]])
_P_E = np.array([[1.0, -2.0], [-3.0, 3.0]])


def _outrata_ex1b_optimum():
    """x* of Outrata1990Ex1b: the minimizer of the unconstrained piece's F on the kink line.

    On that piece y = H^{-1} x = M x (M = [[5, 2], [2, 1]]); the row y1 - 0.333 y2 <= 2
    reaches its bound on the line b'x = 2, b = M (1, -0.333) = (4.334, 1.667). Minimize
    F_U(x) = |M x - t|^2/2 + |x|^2 - 12.5 on it: one linear KKT solve.
    """
    M = np.linalg.inv(_H_B)
    bvec = M @ np.array([1.0, -C])
    kkt = np.zeros((3, 3))
    kkt[:2, :2] = M.T @ M + 2.0 * np.eye(2)
    kkt[:2, 2] = bvec
    kkt[2, :2] = bvec
    sol = np.linalg.solve(kkt, np.concatenate([M.T @ _T, [2.0]]))
    x = sol[:2]
    y = M @ x
    return x, y, float(x @ x + 0.5 * (y - _T) @ (y - _T) - 12.5)


def outrata_1990_ex1b() -> Case:
    """Outrata1990Ex1b (J. V. Outrata, ZOR 34(4):255-277, 1990; Ex1a with |x|^2 for |x|^2/10).

    H = [[1, -2], [-2, 5]], P = -I, r = 1. Over the pieces of the response (enumerated
    below with SciPy) the minimum sits where the unconstrained response y = H^{-1} x
    meets the row y1 - 0.333 y2 <= 2: x* = (0.2788391, 0.4748117) (`_outrata_ex1b_optimum`),
    y* = (2.3438192, 1.0324900), F* = -7.5784582, f* = -0.5718934, the row at its bound
    with a zero multiplier (the unconstrained piece's minimum lies past the line, the
    active piece's before it). Published F* = -7.56, f* = -0.58: the refined F* is lower
    by 0.018 (the published one is not the minimum). Start (0, 0, 3, 3).
    """
    problem, response = _outrata_ex1(_H_B, -np.eye(2), 1.0)
    x, y, F = _outrata_ex1b_optimum()
    return Case(
        name="Outrata1990Ex1b",
        problem=problem,
        x0=[np.zeros(2), np.array([3.0, 3.0])],
        solution=[x, y],
        F=F,
        F_published=-7.56,
        response=response,
        weak=(1,),
    )


def outrata_1990_ex1d() -> Case:
    """Outrata1990Ex1d (J. V. Outrata, ZOR 34(4):255-277, 1990).

    H = [[1, 3], [3, 10]], P = -I, r = 0.1. Near the optimum y2 = 0 (bound active,
    multiplier 3 y1 - x2 = 6 > 0) and y1 = min(x1, 2) (the row y1 - 0.333 y2 <= 2).
    F = (y1 - 3)^2/2 + 8 + |x|^2/10 - 12.5: in x1 slope -0.6 left of 2 (y1 = x1) and
    +0.4 right of it (y1 = 2), in x2 a parabola at 0: x* = (2, 0), y* = (2, 0),
    F* = -3.6, f* = -2, the row y1 - 0.333 y2 <= 2 weakly active (its multiplier is
    x1 - y1 = 0). Published F* = -3.6, f* = -2: agrees. Start (6, -3, 3, 3).
    """
    problem, response = _outrata_ex1(_H_D, -np.eye(2), 0.1)
    return Case(
        name="Outrata1990Ex1d",
        problem=problem,
        x0=[np.array([6.0, -3.0]), np.array([3.0, 3.0])],
        solution=[np.array([2.0, 0.0]), np.array([2.0, 0.0])],
        F=-3.6,
        F_published=-3.6,
        response=response,
        weak=(1,),
    )


def outrata_1990_ex1e() -> Case:
    """Outrata1990Ex1e (J. V. Outrata, ZOR 34(4):255-277, 1990).

    H = [[1, 3], [3, 10]], f's linear term (P x)'y with P = [[1, -2], [-3, 3]]
    (BOLIB: -y'[[-1, 2], [3, -3]] x), r = 0.1. Near the optimum y2 = 0 (multiplier
    3 y1 - 3 x1 + 3 x2 = 9.6 > 0) and y1 = min(2 x2 - x1, 2). On the piece y1 = 2,
    F = |x|^2/10 - 4, least on the half-plane 2 x2 - x1 >= 2 at its point nearest 0:
    x* = (-0.4, 0.8), y* = (2, 0), F* = -3.92, f* = -2; across the line the other piece
    rises (slope 0.92 |(-1, 2)| into it). The row y1 - 0.333 y2 <= 2 is weakly active.
    Published F* = -3.15, f* = -16.29: the refined F* is lower by 0.77 (the enumeration
    of the pieces below finds no lower point; the next best piece gives -3.7895).
    Start (6, -3, 3, 3).
    """
    problem, response = _outrata_ex1(_H_D, _P_E, 0.1)
    return Case(
        name="Outrata1990Ex1e",
        problem=problem,
        x0=[np.array([6.0, -3.0]), np.array([3.0, 3.0])],
        solution=[np.array([-0.4, 0.8]), np.array([2.0, 0.0])],
        F=-3.92,
        F_published=-3.15,
        response=response,
        weak=(1,),
    )


# -- Outrata1990Ex2c ----------------------------------------------------------------


def _outrata_ex2c_optimum():
    """x* of Outrata1990Ex2c: where the unconstrained response meets -0.333 y1 + y2 <= 2.

    Unconstrained y = ((3 + 1.333x)/(1 + x), x/(1 + 0.1x)); on the row
    10x/(x + 10) = 0.333 (1.333x + 3)/(x + 1) + 2, times (x + 10)(x + 1):
    (10 - 2 - 0.333*1.333) x^2 + (10 - 22 - 0.333*16.33) x - (20 + 9.99) = 0.
    """
    a = 10.0 - 2.0 - C * K
    b = 10.0 - 22.0 - C * (10 * K + 3.0)
    c = -(20.0 + 30.0 * C)
    x = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    y = np.array([(3 + K * x) / (1 + x), x / (1 + 0.1 * x)])
    return np.array([x]), y, float(0.5 * (y - _T) @ (y - _T))


def outrata_1990_ex2c() -> Case:
    """Outrata1990Ex2c (J. V. Outrata, ZOR 34(4):255-277, 1990).

    min |y - (3, 4)|^2/2 s.t. -x <= 0; y solves min (1 + x) y1^2/2 + (1 + 0.1x) y2^2/2
    - (3 + 1.333x) y1 - x y2 s.t. -0.333 y1 + y2 <= 2, y1 - 0.333 y2 <= 2, y >= 0.
    On the unconstrained piece F falls as x grows (y2 = x/(1 + 0.1x) rises towards 4) until
    the first row stops y2 at x* = 3.4561622 (root of a quadratic, `_outrata_ex2c_optimum`);
    past it, on the row, F rises: y* = (1.7070887, 2.5684605), F* = 1.8604624,
    f* = -10.9314748, the row at its bound with a zero multiplier.
    Published F* = 1.86, f* = -10.931: agrees. Start (0, 0, 0).
    """

    def f_value(x, y):
        s = x[0]
        return float(
            (1 + s) * y[0] ** 2 / 2 + (1 + 0.1 * s) * y[1] ** 2 / 2 - (3 + K * s) * y[0] - s * y[1]
        )

    def f_grad(x, y):
        s = x[0]
        return np.array(
            [
                y[0] ** 2 / 2 + 0.05 * y[1] ** 2 - K * y[0] - y[1],
                (1 + s) * y[0] - (3 + K * s),
                (1 + 0.1 * s) * y[1] - s,
            ]
        )

    def f_hess(x, y):
        s = x[0]
        a, b = y[0] - K, 0.1 * y[1] - 1.0
        return np.array([[0.0, a, b], [a, 1 + s, 0.0], [b, 0.0, 1 + 0.1 * s]])

    follower = nestopt.Level(
        value=f_value,
        grad=f_grad,
        hess=f_hess,
        size=2,
        bounds=nestopt.Bounds(np.zeros(2), np.full(2, INF)),
        constraints=[
            nestopt.LinearConstraint(
                np.hstack([np.zeros((2, 1)), _POLY[:2]]), np.full(2, -INF), _POLY_B[:2]
            )
        ],
        name="follower",
    )
    leader = nestopt.Level(
        value=lambda x, y: float(0.5 * (y - _T) @ (y - _T)),
        grad=lambda x, y: np.concatenate([[0.0], y - _T]),
        hess=lambda x, y: np.diag([0.0, 1.0, 1.0]),
        size=1,
        bounds=nestopt.Bounds(np.zeros(1), np.full(1, INF)),
    )

    def response(x):
        s = x[0]
        Q = np.diag([1 + s, 1 + 0.1 * s])
        return _qp_response(Q, np.array([-(3 + K * s), -s]), _POLY, _POLY_B)

    x, y, F = _outrata_ex2c_optimum()
    return Case(
        name="Outrata1990Ex2c",
        problem=nestopt.Problem([leader, follower]),
        x0=[np.zeros(1), np.zeros(2)],
        solution=[x, y],
        F=F,
        F_published=1.86,
        response=response,
        weak=(0,),
        leader_feasible=lambda x, y: bool(x[0] >= 0),
    )


CASES = {
    "AllendeStill2013": lambda: allende_still_2013(full_upper=False),
    "AllendeStill2013-full": lambda: allende_still_2013(full_upper=True),
    "HatzEtal2013": hatz_etal_2013,
    "ShimizuAiyoshi1981Ex1": shimizu_aiyoshi_1981_ex1,
    "Outrata1990Ex1b": outrata_1990_ex1b,
    "Outrata1990Ex1d": outrata_1990_ex1d,
    "Outrata1990Ex1e": outrata_1990_ex1e,
    "Outrata1990Ex2c": outrata_1990_ex2c,
}


# What nestopt returned (status and message) where it does not certify the kink from BOLIB's
# start; the assertions stay as strict as for the others.
_XFAIL = {
    "Outrata1990Ex1e": (
        "nestopt ends SUCCESS ('converged: the projected hypergradient met gtol') at another, "
        "smooth local minimum: x = (60/19, -60/19), y = (0, 36/19) (y1 >= 0 active with "
        "multiplier 15.16, no weakly active row), F = -72/19 = -3.7894737 > F* = -3.92. "
        "A local method's answer, not an error; from (0, 1) nestopt certifies the kink at "
        "x*, from (0, 0) or (-1, 1) it ends DEGENERATE next to it ('kink: descent along one "
        "piece', as in Outrata1990Ex1d)"
    ),
}


def _params():
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=_XFAIL[name]))
        if name in _XFAIL
        else name
        for name in CASES
    ]


def _solve(case: Case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        warnings.simplefilter("ignore", nestopt.ConvergenceWarning)
        return nestopt.solve(case.problem, case.x0, options={"gtol": 1e-10})


@pytest.mark.parametrize("name", _params())
def test_published_kink_optima_are_certified_from_bolibs_start(name):
    case = CASES[name]()
    result = _solve(case)
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert "kink certified" in result.message, result.message
    for got, expected in zip(result.xs, case.solution):
        assert np.max(np.abs(got - expected)) <= 1e-6
    assert abs(result.fun - case.F) <= 1e-6 * max(1.0, abs(case.F))


# -- the derivation, independent of nestopt's solver ---------------------------------


def _split(w, sizes):
    return np.split(w, np.cumsum(sizes)[:-1])


def _central(fun, w, h=1e-6):
    """Central differences of fun (scalar or vector valued) at w, one column per entry."""
    cols = []
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = h
        cols.append((np.asarray(fun(w + e), float) - np.asarray(fun(w - e), float)) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("name", list(CASES))
def test_derivatives_match_central_differences(name):
    case = CASES[name]()
    sizes = case.problem.sizes
    rng = np.random.default_rng(0)
    points = [np.concatenate(case.solution)] + [rng.uniform(0.2, 3.0, sum(sizes)) for _ in range(3)]
    for level in case.problem.levels:
        for w in points:
            grad = np.asarray(level.grad(*_split(w, sizes)), float)
            hess = np.asarray(level.hess(*_split(w, sizes)), float)
            fd_grad = _central(lambda v, lv=level: lv.value(*_split(v, sizes)), w)
            fd_hess = _central(lambda v, lv=level: lv.grad(*_split(v, sizes)), w)
            np.testing.assert_allclose(grad, fd_grad, rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(hess, fd_hess, rtol=1e-7, atol=1e-7)
            np.testing.assert_array_equal(hess, hess.T)
            for con in level.constraints:
                if isinstance(con, nestopt.LinearConstraint):
                    continue
                v = rng.normal(size=np.asarray(con.fun(*_split(w, sizes))).size)
                jac = np.asarray(con.jac(*_split(w, sizes)), float)
                np.testing.assert_allclose(
                    jac, _central(lambda u, c=con: c.fun(*_split(u, sizes)), w), atol=1e-7
                )
                np.testing.assert_allclose(
                    np.asarray(con.hess(*_split(w, sizes), v), float),
                    _central(lambda u, c=con, v=v: v @ np.asarray(c.jac(*_split(u, sizes))), w),
                    atol=1e-7,
                )


def _follower_by_slsqp(case: Case, x):
    """The follower's problem as encoded in case.problem, solved by SciPy's SLSQP."""
    from scipy.optimize import minimize

    level = case.problem.levels[1]
    nx = case.problem.sizes[0]
    cons = []
    if level.bounds is not None:
        lb = np.broadcast_to(np.asarray(level.bounds.lb, float), (level.size,))
        ub = np.broadcast_to(np.asarray(level.bounds.ub, float), (level.size,))
        for i in range(level.size):
            if np.isfinite(lb[i]):
                cons.append({"type": "ineq", "fun": lambda y, i=i: y[i] - lb[i]})
            if np.isfinite(ub[i]):
                cons.append({"type": "ineq", "fun": lambda y, i=i: ub[i] - y[i]})
    for con in level.constraints:
        if isinstance(con, nestopt.LinearConstraint):
            A = np.asarray(con.A, float)
            fun = lambda y, A=A: A @ np.concatenate([x, y])  # noqa: E731
        else:
            fun = lambda y, c=con: np.asarray(c.fun(x, y), float)  # noqa: E731
        m = np.asarray(fun(np.zeros(level.size))).size
        lo = np.broadcast_to(np.asarray(con.lb, float), (m,))
        hi = np.broadcast_to(np.asarray(con.ub, float), (m,))
        for r in range(m):
            if np.isfinite(hi[r]):
                cons.append({"type": "ineq", "fun": lambda y, f=fun, r=r, b=hi[r]: b - f(y)[r]})
            if np.isfinite(lo[r]):
                cons.append({"type": "ineq", "fun": lambda y, f=fun, r=r, b=lo[r]: f(y)[r] - b})
    res = minimize(
        lambda y: level.value(x, y),
        np.full(level.size, 1.0),
        jac=lambda y: np.asarray(level.grad(x, y), float)[nx:],
        method="SLSQP",
        constraints=cons,
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


@pytest.mark.parametrize("name", list(CASES))
def test_the_optimum_is_a_strict_kink_minimum(name):
    """At (x*, y*): y* is the follower's response (closed form or active-set enumeration,
    and SciPy's SLSQP on the problem as encoded); the weak rows are at their bound with a
    zero multiplier; F* is F there; and F(x) = F(x, y(x)) is above F* on small circles
    around x* (the leader's feasible points), so x* is a strict local minimum."""
    case = CASES[name]()
    x, y = case.solution
    got, mult, rows = case.response(x)
    np.testing.assert_allclose(got, y, atol=1e-12)
    np.testing.assert_allclose(_follower_by_slsqp(case, x), y, atol=1e-6)
    for i in case.weak:
        assert abs(rows[i]) <= 1e-12 and abs(mult[i]) <= 1e-12, (i, rows[i], mult[i])
    leader = case.problem.levels[0]
    assert abs(leader.value(x, y) - case.F) <= 1e-12 * max(1.0, abs(case.F))
    rng = np.random.default_rng(1)
    directions = rng.normal(size=(64, x.size))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    checked = 0
    for radius in (1e-4, 1e-2):
        for d in directions:
            xx = x + radius * d
            yy = case.response(xx)[0]
            if case.leader_feasible is not None and not case.leader_feasible(xx, yy):
                continue
            checked += 1
            assert leader.value(xx, yy) > case.F, (xx, leader.value(xx, yy))
    assert checked >= 32


@pytest.mark.parametrize("name", ["Outrata1990Ex1b", "Outrata1990Ex1d", "Outrata1990Ex1e"])
def test_outrata_ex1_optimum_is_the_least_over_the_pieces(name):
    """Global: on each piece of the response (an active set S of the follower's four rows)
    y is affine in x and F a convex quadratic on a polyhedron, minimized here by SLSQP; the
    least over the pieces is F* at x*. (It also shows the published F* is not the minimum
    for Ex1b and Ex1e.)"""
    from scipy.optimize import minimize

    case = CASES[name]()
    level = case.problem.levels[1]
    H = np.asarray(level.hess(np.zeros(2), np.zeros(2)))
    P, H = H[2:, :2], H[2:, 2:]
    r = float(case.problem.levels[0].hess(np.zeros(2), np.zeros(2))[0, 0]) / 2
    best = (np.inf, None)
    for k in range(3):
        for S in map(list, itertools.combinations(range(4), k)):
            kkt = np.block([[H, _POLY[S].T], [_POLY[S], np.zeros((k, k))]])
            if abs(np.linalg.det(kkt)) < 1e-12:
                continue
            inv = np.linalg.inv(kkt)  # (y, lambda) = inv @ (-P x, b_S)
            lin, const = inv[:, :2] @ -P, inv[:, 2:] @ _POLY_B[S]
            Y, y0, L, l0 = lin[:2], const[:2], lin[2:], const[2:]
            free = [i for i in range(4) if i not in S]

            def F(x, Y=Y, y0=y0):
                y = Y @ x + y0
                return r * x @ x + 0.5 * (y - _T) @ (y - _T) - 12.5

            cons = [
                {"type": "ineq", "fun": lambda x, L=L, l0=l0: L @ x + l0},
                {
                    "type": "ineq",
                    "fun": lambda x, Y=Y, y0=y0, f=free: _POLY_B[f] - _POLY[f] @ (Y @ x + y0),
                },
            ][0 if k else 1 :]
            for start in ([0.0, 0.0], [5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]):
                res = minimize(
                    F,
                    np.array(start),
                    method="SLSQP",
                    constraints=cons,
                    options={"ftol": 1e-15, "maxiter": 500},
                )
                feasible = all(np.all(c["fun"](res.x) >= -1e-8) for c in cons)
                if feasible and res.fun < best[0]:
                    best = (res.fun, res.x)
    assert abs(best[0] - case.F) <= 1e-8
    np.testing.assert_allclose(best[1], case.solution[0], atol=1e-4)
    assert case.F <= case.F_published + 0.005  # never worse than the published value


def test_outrata_ex2c_optimum_is_the_least_on_a_grid():
    """Global in x >= 0: F on a grid of step 0.01 up to 40, and far out (F rises towards
    2.09 as x grows: y tends to (1.582, 2.527) on the first row)."""
    case = CASES["Outrata1990Ex2c"]()
    leader = case.problem.levels[0]
    grid = np.concatenate([np.linspace(0.0, 40.0, 4001), [1e2, 1e3, 1e5]])
    values = np.array([leader.value(np.array([s]), case.response(np.array([s]))[0]) for s in grid])
    assert values.min() >= case.F - 1e-12
    assert abs(grid[values.argmin()] - case.solution[0][0]) <= 0.01
    assert round(case.F, 2) == case.F_published


def test_outrata_ex1e_kink_optimum_is_certified_from_a_start_near_it():
    # From BOLIB's start the run ends at a smooth local minimum (xfail above); from (0, 1)
    # it reaches the published problem's kink optimum and certifies it.
    case = CASES["Outrata1990Ex1e"]()
    start = [np.array([0.0, 1.0]), case.x0[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        result = nestopt.solve(case.problem, start, options={"gtol": 1e-10})
    assert result.status is nestopt.Status.SUCCESS, result.message
    assert "kink certified" in result.message
    for got, expected in zip(result.xs, case.solution):
        assert np.max(np.abs(got - expected)) <= 1e-6
