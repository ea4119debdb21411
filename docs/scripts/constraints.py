"""Constraints at both levels, with a closed-form answer.

The follower answers y*(x) = argmin 1/2 (y - x)^2 over y >= 0 with y - x/2 <= 1/2:
y* = x for 0 <= x <= 1, and y* = x/2 + 1/2 (the row active) for x >= 1. The leader
minimizes 1/2 (x - 3)^2 + 1/2 (y - 2)^2 subject to x + y <= 4, where y is the
follower's response; its constraint binds at x = 7/3, y = 5/3, with multipliers
5/9 (leader) and x - y = 2/3 (follower).
"""

import numpy as np

import nestopt

follower = nestopt.Level(
    size=1,
    value=lambda x, y: 0.5 * float((y - x) @ (y - x)),
    grad=lambda x, y: np.concatenate([x - y, y - x]),
    hess=lambda x, y: np.array([[1.0, -1.0], [-1.0, 1.0]]),
    constraints=[nestopt.LinearConstraint([[-0.5, 1.0]], -np.inf, 0.5)],  # columns: x, y
    bounds=nestopt.Bounds(0.0, np.inf),
    name="follower",
)
leader = nestopt.Level(
    size=1,
    value=lambda x, y: 0.5 * float((x - 3) @ (x - 3) + (y - 2) @ (y - 2)),
    grad=lambda x, y: np.concatenate([x - 3.0, y - 2.0]),
    hess=lambda x, y: np.eye(2),
    constraints=[nestopt.LinearConstraint([[1.0, 1.0]], -np.inf, 4.0)],  # x + y*(x) <= 4
    name="leader",
)
problem = nestopt.Problem([leader, follower])

response = nestopt.best_response(problem, [np.array([2.0]), np.array([0.0])])
print("y*(2) =", response.xs[1], " dy*/dx =", response.jacobians[2])
print("follower multipliers:", response.multipliers[2], " active:", response.active[2])

result = nestopt.solve(problem, [np.array([2.0]), np.array([0.0])])
print(result.message, "| optimizer:", result.optimizer)
print("x =", result.x, " y =", result.xs[1])  # 7/3 and 5/3
print("multipliers:", result.multipliers)  # leader 5/9, follower 2/3
print("active:", result.active)
