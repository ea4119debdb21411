"""Autodiff oracles: a bilevel problem written as two scalar functions, in JAX or PyTorch.

Lower level: y*(x) = argmin_y sum(cosh(y) - (A x) * y), so sinh(y*) = A x and
y*(x) = asinh(A x): a nonlinear response.
Upper level: minimize F(x) = |y*(x) - t|^2 / 2, so the optimum is x* = A^{-1} sinh(t)
(where y* = t), and dF/dx = A^T [(asinh(A x) - t) / sqrt(1 + (A x)^2)].

nestopt.autodiff builds every derivative nestopt needs (gradients, Hessians, their
directional derivatives) from the two functions. Without JAX and PyTorch the script says
how to install one and exits.

    python examples/autodiff_bilevel.py [--library jax|torch]
"""

import argparse
import sys

import numpy as np

import nestopt

A = np.array([[2.0, 0.5, 0.0], [0.0, 1.0, -0.5], [0.3, 0.0, 1.5]])
T = np.array([0.5, -1.0, 1.5])


def jax_levels():
    import jax

    jax.config.update("jax_enable_x64", True)  # before any JAX array exists: float64 throughout
    import jax.numpy as jnp

    import nestopt.autodiff

    a, t = jnp.asarray(A), jnp.asarray(T)
    lower = nestopt.autodiff.jax_level(
        lambda x, y: jnp.sum(jnp.cosh(y) - (a @ x) * y), size=3, name="follower"
    )
    upper = nestopt.autodiff.jax_level(
        lambda x, y: 0.5 * jnp.sum((y - t) ** 2), size=3, name="leader", quadratic=True
    )
    return upper, lower


def torch_levels():
    import torch

    import nestopt.autodiff

    a, t = torch.as_tensor(A), torch.as_tensor(T)  # float64, as the NumPy data
    lower = nestopt.autodiff.torch_level(
        lambda x, y: torch.sum(torch.cosh(y) - (a @ x) * y), size=3, name="follower"
    )
    upper = nestopt.autodiff.torch_level(
        lambda x, y: 0.5 * torch.sum((y - t) ** 2), size=3, name="leader", quadratic=True
    )
    return upper, lower


BUILDERS = {"jax": jax_levels, "torch": torch_levels}


def available() -> list[str]:
    found = []
    for name in BUILDERS:
        try:
            __import__(name)
        except ImportError:
            continue
        found.append(name)
    return found


def closed_form_hypergradient(x: np.ndarray) -> np.ndarray:
    z = A @ x
    return A.T @ ((np.arcsinh(z) - T) / np.sqrt(1.0 + z**2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=sorted(BUILDERS), default=None)
    args = parser.parse_args()
    libraries = available()
    if not libraries:
        print(
            "this example needs JAX or PyTorch, and neither is installed: "
            'pip install "nestopt[jax]" or pip install "nestopt[torch]"; skipping'
        )
        sys.exit(0)
    library = args.library or libraries[0]
    if library not in libraries:
        sys.exit(f"--library {library} is not installed: pip install 'nestopt[{library}]'")

    problem = nestopt.Problem(list(BUILDERS[library]()))
    xp = nestopt.get_namespace()  # NumPy unless NESTOPT_BACKEND selects another library
    backend = nestopt.get_backend().name
    print(f"objectives written in {library}, derivatives by nestopt.autodiff, solved on {backend}")

    x = np.array([1.0, -0.5, 0.25])
    start = [xp.asarray(x), xp.zeros(3, dtype=xp.float64)]
    grad = nestopt.to_numpy(nestopt.hypergradient(problem, start))
    error = np.max(np.abs(grad - closed_form_hypergradient(x)))
    print(f"hypergradient at x = {x}: {grad}, error vs the closed form: {error:.1e}")

    zero = xp.zeros(3, dtype=xp.float64)
    result = nestopt.solve(problem, [zero, zero], options={"gtol": 1e-10})
    x_found, y_found = nestopt.to_numpy(result.xs)
    x_star = np.linalg.solve(A, np.sinh(T))
    print(f"solution x = {x_found} ({result.message}, {result.nit} iterations)")
    print(f"distance to the closed form x* = A^-1 sinh(t): {np.max(np.abs(x_found - x_star)):.1e}")
    print(f"follower y = {y_found}, distance to t: {np.max(np.abs(y_found - T)):.1e}")
