"""Quick start: a bilevel problem whose answer is known.

The follower (level 2) picks x2 = argmin 1/2 |x2 - x1|^2 + 1/2 |x2|^2 = x1 / 2.
The leader (level 1) wants the follower at `target`, so its value function is
F_1(x1) = 1/2 |x1 / 2 - target|^2, with gradient (x1 / 2 - target) / 2 and
minimizer x1 = 2 * target.
"""

import numpy as np

import nestopt

target = np.array([1.0, -1.0])
eye = np.eye(2)

follower = nestopt.Level(
    size=2,
    value=lambda x1, x2: 0.5 * (x2 - x1) @ (x2 - x1) + 0.5 * x2 @ x2,
    grad=lambda x1, x2: (x1 - x2, 2.0 * x2 - x1),  # one block per level
    hess=lambda x1, x2: [[eye, -eye], [-eye, 2.0 * eye]],  # 2 x 2 blocks
    name="follower",
)
leader = nestopt.Level(
    size=2,
    value=lambda x1, x2: 0.5 * (x2 - target) @ (x2 - target),
    grad=lambda x1, x2: (np.zeros(2), x2 - target),
    hess=lambda x1, x2: [[None, None], [None, eye]],  # None: a zero block
    name="leader",
)
problem = nestopt.Problem([leader, follower])  # top level first

x1 = np.array([1.0, 2.0])
x2 = np.zeros(2)  # where the follower's Newton solve starts
print("hypergradient:", nestopt.hypergradient(problem, [x1, x2]))  # (x1/2 - target)/2

response = nestopt.best_response(problem, [x1, x2])
print("follower's response:", response.xs[1])  # x1 / 2
print("diagonal of dx2/dx1:", np.diag(response.jacobians[2]))  # I / 2

result = nestopt.solve(problem, [x1, x2])
print(result.message)
print("leader:", result.x, "follower:", result.xs[1])  # 2 * target and target
