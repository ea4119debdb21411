"""Accuracy of each curvature mode on a trilevel problem with nonlinear responses.

Ground truth: fourth-order central differences (h = 1e-3) of the value function
F_1(x1) = f_1(x1, x2*(x1), x3*(x1)), each evaluation a nested Newton solve to
tol = 1e-13. Errors are relative, in the 2-norm.
"""

import dataclasses

import numpy as np

import nestopt
from nestopt.problems import softplus_levels

problem = softplus_levels(3, (3, 4, 2), seed=1, beta=3.0)
# The same problem without hess_dir: the exact mode falls back to central differences.
no_hess_dir = nestopt.Problem([dataclasses.replace(lv, hess_dir=None) for lv in problem.levels])
starts = list(problem.x0[1:])
options = {"level_options": {"tol": 1e-13}}
x1 = np.random.default_rng(0).standard_normal(3)


def value(x1):
    return nestopt.best_response(problem, [x1, *starts], **options).fun


def finite_difference(x1, h=1e-3):
    out = np.zeros_like(x1)
    for i in range(x1.size):
        e = np.zeros_like(x1)
        e[i] = h
        out[i] = -value(x1 + 2 * e) + 8 * value(x1 + e) - 8 * value(x1 - e) + value(x1 - 2 * e)
        out[i] /= 12 * h
    return out


truth = finite_difference(x1)
modes = {
    "exact, hess_dir": (problem, "exact"),
    "exact, central difference": (no_hess_dir, "exact"),
    "first_order": (problem, "first_order"),
}
for label, (prob, curvature) in modes.items():
    g = nestopt.hypergradient(prob, [x1, *starts], curvature=curvature, **options)
    error = np.linalg.norm(g - truth) / np.linalg.norm(truth)
    print(f"{label:27s} relative error {error:.1e}")
