"""``show_config``: versions, the backend in force, and every BLAS thread pool loaded."""

from __future__ import annotations

import platform
import sys
from typing import Any

from .._version import __version__
from .selection import get_backend

__all__ = ["show_config"]


def show_config(mode: str = "stdout") -> dict[str, Any] | None:
    """Print (or return) what nestopt runs on: versions, backend, and BLAS pools.

    NumPy and SciPy ship separate OpenBLAS libraries, each with its own
    thread pool, and a pool can only be seen (or limited, with
    ``threadpoolctl``) once its library is loaded. nestopt imports SciPy at
    its first factorization, so a ``threadpool_limits`` set before that
    leaves SciPy's LAPACK on all cores; this function imports
    ``scipy.linalg`` (when installed) before listing the pools, so both
    show. nestopt never changes thread settings itself.

    Parameters
    ----------
    mode : {'stdout', 'dicts'}
        Print a summary and return None, or return the information.

    Returns
    -------
    dict or None
        ``nestopt``, ``python``, ``platform``, ``packages`` (versions of
        numpy, array_api_compat, scipy and the optional backends found),
        ``backend`` (name, device, source) and ``blas`` (one dict per pool:
        library, version, threads, file; empty without ``threadpoolctl``).

    Examples
    --------
    >>> import nestopt
    >>> info = nestopt.show_config(mode="dicts")
    >>> sorted(info)
    ['backend', 'blas', 'nestopt', 'packages', 'platform', 'python']
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"unknown mode {mode!r}; choose 'stdout' or 'dicts'")

    chosen = get_backend()
    info: dict[str, Any] = {
        "nestopt": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _versions(),
        "backend": {"name": chosen.name, "device": chosen.device, "source": chosen.source},
        "blas": _pools(),
    }
    if mode == "dicts":
        return info
    print(f"nestopt {info['nestopt']} on Python {info['python']} ({info['platform']})")
    for name, version in info["packages"].items():
        print(f"  {name:18s} {version}")
    backend = info["backend"]
    print(f"backend: {backend['name']} (device {backend['device']}, from {backend['source']})")
    if not info["blas"]:
        print("BLAS pools: unknown (pip install threadpoolctl to list them)")
    for pool in info["blas"]:
        print(
            f"BLAS pool: {pool['library']} {pool['version']}, {pool['threads']} threads "
            f"({pool['file']})"
        )
    return None


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("numpy", "array-api-compat", "scipy", "cupy-cuda12x", "torch", "jax"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in ("numpy", "array-api-compat", "scipy"):
                out[name] = "not installed"
    return out


def _pools() -> list[dict[str, Any]]:
    try:
        import threadpoolctl
    except ImportError:
        return []
    import numpy  # noqa: F401  (load the pools before listing them)

    try:
        import scipy.linalg  # noqa: F401
    except ImportError:
        pass
    return [
        {
            "library": pool.get("internal_api", "?"),
            "version": pool.get("version", "?"),
            "threads": pool.get("num_threads", "?"),
            "file": pool.get("filepath", "?"),
        }
        for pool in threadpoolctl.threadpool_info()
        if pool.get("user_api") == "blas"
    ]
