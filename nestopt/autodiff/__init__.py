"""Levels and constraints from a scalar function written in JAX or PyTorch.

Write a level's objective ``f_k(x1, ..., xn)`` once, in ``jax.numpy`` or
torch, and let the library's automatic differentiation supply what
`nestopt.Level` needs: ``grad``, ``hess``, ``hess_dir``, ``hess_rows``,
``hvp``, ``hvp_dir`` and ``value``.

- `jax_level`, `jax_constraint`: JAX (``jax.grad``, ``jax.hessian``,
  ``jax.jvp``), compiled with ``jax.jit``.
- `torch_level`, `torch_constraint`: PyTorch (``torch.func``).

The callables take and return arrays of the backend nestopt solves on; each
adapter's Notes say where arrays are converted and what that costs.
Importing this module imports neither JAX nor PyTorch: an adapter imports its
library when it is called (``pip install "nestopt[jax]"`` or
``"nestopt[torch]"``).
"""

from ._jax import jax_constraint, jax_level
from ._torch import torch_constraint, torch_level

__all__ = ["jax_constraint", "jax_level", "torch_constraint", "torch_level"]
