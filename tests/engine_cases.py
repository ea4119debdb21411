"""Problems for the constrained engine's tests, written against the array API (any ``xp``)."""

from __future__ import annotations

import numpy as np

from nestopt._respond.constrained.nlp import Evaluation


def _arr(xp, a, dtype=None):
    dtype = xp.float64 if dtype is None else dtype
    return xp.asarray(np.asarray(a, dtype=float), dtype=dtype)


class QuadraticProgram:
    """``min 1/2 x'Qx + q'x`` s.t. ``cl <= A x <= cu``, ``xl <= x <= xu``."""

    linear_rows = True

    def __init__(self, xp, Q, q, A, cl, cu, xl, xu, convex=True, dtype=None):
        self.xp = xp
        self.Q, self.q, self.A = _arr(xp, Q, dtype), _arr(xp, q, dtype), _arr(xp, A, dtype)
        self.c_lower, self.c_upper = _arr(xp, cl, dtype), _arr(xp, cu, dtype)
        self.x_lower, self.x_upper = _arr(xp, xl, dtype), _arr(xp, xu, dtype)
        self.convex = convex

    def evaluate(self, x):
        g = self.Q @ x + self.q
        return Evaluation(float(0.5 * (x @ (self.Q @ x)) + self.q @ x), g, self.A @ x, self.A)

    def lagrangian_hessian(self, at, y):
        return self.Q


class LinearOverQuadric:
    """``min c'x`` s.t. ``x'Mx <= r^2`` (``surface=False``) or ``= r^2``, within bounds."""

    linear_rows = False
    convex = False

    def __init__(self, xp, c, M, r, surface=False, xl=None, xu=None, dtype=None):
        n = len(c)
        self.xp = xp
        self.c, self.M = _arr(xp, c, dtype), _arr(xp, M, dtype)
        self.c_lower = _arr(xp, [r * r if surface else -np.inf], dtype)
        self.c_upper = _arr(xp, [r * r], dtype)
        xl = np.full(n, -np.inf) if xl is None else xl
        xu = np.full(n, np.inf) if xu is None else xu
        self.x_lower, self.x_upper = _arr(xp, xl, dtype), _arr(xp, xu, dtype)
        self.convex_rows = not surface

    def evaluate(self, x):
        xp = self.xp
        Mx = self.M @ x
        c = xp.reshape(x @ Mx, (1,))
        return Evaluation(float(self.c @ x), self.c, c, xp.reshape(2.0 * Mx, (1, x.shape[0])))

    def lagrangian_hessian(self, at, y):
        return 2.0 * y[0] * self.M


class DistanceOverBall:
    """``min |x - t|^2`` s.t. ``|x|^2 <= 1`` (an active nonlinear row when ``|t| > 1``)."""

    linear_rows = False
    convex = False
    convex_rows = True

    def __init__(self, xp, t, dtype):
        n = len(t)
        self.xp, self.t = xp, _arr(xp, t, dtype)
        self.c_lower, self.c_upper = _arr(xp, [-np.inf], dtype), _arr(xp, [1.0], dtype)
        self.x_lower = _arr(xp, np.full(n, -np.inf), dtype)
        self.x_upper = _arr(xp, np.full(n, np.inf), dtype)
        self.eye = xp.eye(n, dtype=dtype)

    def evaluate(self, x):
        xp = self.xp
        d = x - self.t
        return Evaluation(
            float(d @ d), 2.0 * d, xp.reshape(x @ x, (1,)), xp.reshape(2.0 * x, (1, x.shape[0]))
        )

    def lagrangian_hessian(self, at, y):
        return 2.0 * (1.0 + y[0]) * self.eye
