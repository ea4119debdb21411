"""One follower given three ways: a sparse Hessian, and Hessian-vector products only.

The follower is a network on an m x m grid: f_2 = y^T K y / 2 - y^T x with K the
grid's Laplacian plus I / 2, so y*(x) = K^{-1} x. The leader sets the injections x:
f_1 = |y - t|^2 / 2 + |x|^2 / 20, and dF_1/dx = K^{-1} (y - t) + x / 10.
"""

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import nestopt

m = 100
n = m * m  # 10,000 variables per level
line = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
K = (sp.kronsum(line, line) + 0.5 * sp.identity(n)).tocsr()
t = np.sin(np.arange(n))


def follower(**second_order):
    return nestopt.Level(
        size=n,
        value=lambda x, y: 0.5 * y @ (K @ y) - y @ x,
        grad=lambda x, y: (-y, K @ y - x),
        **second_order,
    )


H2 = sp.bmat([[None, -sp.identity(n)], [-sp.identity(n), K]]).tocsr()  # (2n, 2n)
sparse = follower(hess=lambda x, y: H2)
matrix_free = follower(hvp=lambda x, y, v: np.concatenate([-v[n:], K @ v[n:] - v[:n]]))
leader = nestopt.Level(
    size=n,
    value=lambda x, y: 0.5 * (y - t) @ (y - t) + 0.05 * x @ x,
    grad=lambda x, y: (0.1 * x, y - t),
    hvp=lambda x, y, v: np.concatenate([0.1 * v[:n], v[n:]]),
)

x = [np.linspace(-1.0, 1.0, n), np.zeros(n)]
for label, lower in (("sparse hess", sparse), ("hvp only", matrix_free)):
    g = nestopt.hypergradient(nestopt.Problem([leader, lower]), x)
    print(f"{label:11s}: |dF/dx| = {np.linalg.norm(g):.12f}")
solve_K = spla.factorized(K.tocsc())
print(f"closed form: |dF/dx| = {np.linalg.norm(solve_K(solve_K(x[0]) - t) + 0.1 * x[0]):.12f}")

result = nestopt.solve(nestopt.Problem([leader, matrix_free]), x)
print(result.message, "in", result.nit, "iterations")
print("krylov:", result.krylov)
