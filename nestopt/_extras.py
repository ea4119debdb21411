"""Optional dependencies: the extra that installs each, and the error that names it.

``import nestopt`` imports none of these; the features that need one import it when
called, through `require`, so that a missing one says which extra to install. The
tables are also what the test suite checks pyproject.toml, the docs and the example
scripts against (tests/test_extras.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["FEATURES", "OPTIONAL", "install_hint", "require"]

# Top-level module -> (the distribution that provides it, the nestopt extra that installs it).
OPTIONAL: dict[str, tuple[str, str]] = {
    "scipy": ("scipy", "scipy"),
    "sklearn": ("scikit-learn", "sklearn"),
    "matplotlib": ("matplotlib", "plot"),
    "tqdm": ("tqdm", "progress"),
    "joblib": ("joblib", "parallel"),
    "threadpoolctl": ("threadpoolctl", "parallel"),
    "dask": ("dask", "dask"),
    "distributed": ("dask", "dask"),
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
    "cupy": ("cupy-cuda12x", "cuda12"),
    "cupyx": ("cupy-cuda12x", "cuda12"),
}

# A public nestopt name -> the optional modules it imports when used (beyond NumPy and
# array-api-compat). A script that uses the name needs them installed.
FEATURES: dict[str, tuple[str, ...]] = {
    "solve_many": ("joblib",),
    "multistart": ("joblib",),
    "group_ridge": ("scipy",),
    "data_poisoning": ("sklearn",),
    "plot": ("matplotlib",),
    "jax_level": ("jax",),
    "jax_constraint": ("jax",),
    "torch_level": ("torch",),
    "torch_constraint": ("torch",),
}


def install_hint(module: str) -> str:
    """The pip command that installs the extra providing ``module``."""
    _, extra = OPTIONAL[module.split(".")[0]]
    return f'pip install "nestopt[{extra}]"'


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise an ImportError that names the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        distribution, extra = OPTIONAL[module.split(".")[0]]
        raise ImportError(
            f"{feature} needs {distribution}, which could not be imported ({exc}); "
            f'install it with: pip install "nestopt[{extra}]" (in a nestopt checkout: '
            f'pip install ".[{extra}]")'
        ) from exc
