"""Quick start: a bilevel problem written from scratch, its hypergradient and its solution.

Lower level: y*(x) = argmin_y |y - x|^2 / 2 + |y|^2 / 2 = x / 2.
Upper level: minimize F(x) = f_1(x, y*(x)) with f_1 = |y - t|^2 / 2 + |x|^2 / 8,
so dF/dx = (x - t) / 2 and the optimum is x* = t, y* = t / 2.
"""

import nestopt

if __name__ == "__main__":
    xp = nestopt.get_namespace()  # NumPy unless NESTOPT_BACKEND selects another library
    t = xp.asarray([1.0, -2.0, 0.5], dtype=xp.float64)
    I = xp.eye(3, dtype=xp.float64)
    lower = nestopt.Level(
        grad=lambda x, y: (x - y, 2 * y - x),  # gradient w.r.t. (x, y)
        hess=lambda x, y: [[I, -I], [-I, 2 * I]],  # Hessian as 2 x 2 blocks
        size=3,
        name="lower",
    )
    upper = nestopt.Level(
        value=lambda x, y: xp.sum((y - t) ** 2) / 2 + xp.sum(x**2) / 8,
        grad=lambda x, y: (x / 4, y - t),
        hess=lambda x, y: [[I / 4, None], [None, I]],  # None: a zero block
        size=3,
        name="upper",
    )
    problem = nestopt.Problem([upper, lower])
    zero = xp.zeros(3, dtype=xp.float64)

    grad = nestopt.hypergradient(problem, [zero, zero])
    error = float(xp.max(xp.abs(grad - (zero - t) / 2)))
    print(f"hypergradient at x = 0: {nestopt.to_numpy(grad)}, error vs (x - t)/2: {error:.1e}")

    result = nestopt.solve(problem, [zero, zero])
    distance = float(xp.max(xp.abs(result.x - t)))
    print(f"solution x = {nestopt.to_numpy(result.x)} in {result.nit} iterations")
    print(f"distance to the closed form x* = t: {distance:.1e}")
