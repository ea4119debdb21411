"""Draw docs/img/convergence.png: L-BFGS and gradient descent on a trilevel problem."""

import matplotlib

matplotlib.use("Agg")

import nestopt  # noqa: E402
import nestopt.plot  # noqa: E402
from nestopt.problems import softplus_levels  # noqa: E402

problem = softplus_levels(3, (3, 4, 2), seed=1, beta=3.0)
ax = nestopt.plot.convergence(nestopt.solve(problem, problem.x0), label="lbfgs")
nestopt.plot.convergence(nestopt.solve(problem, problem.x0, optimizer="gd"), ax=ax, label="gd")
ax.figure.set_size_inches(6, 4)
ax.figure.tight_layout()
ax.figure.savefig("docs/img/convergence.png", dpi=100)
