"""Which array library a namespace belongs to: the one place nestopt tells them apart."""

from __future__ import annotations

from typing import Any

import array_api_compat as compat

from .selection import _loaded_name

__all__ = ["namespace_name", "kernel_family", "dtype_name"]

_DTYPE_NAMES: dict[tuple[type, Any], str] = {}


def namespace_name(xp: Any) -> str:
    """The backend name of a namespace, as `nestopt.get_backend` spells it."""
    if xp is None:
        return "an unknown library"
    if compat.is_numpy_namespace(xp):
        return "numpy"
    if compat.is_cupy_namespace(xp):
        return "cupy"
    if compat.is_torch_namespace(xp):
        return "torch"
    if compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return _loaded_name(xp) or getattr(xp, "__name__", repr(xp)).replace("array_api_compat.", "")


def kernel_family(xp: Any) -> str:
    """The library whose native kernels serve ``xp``: numpy, cupy, torch, or portable."""
    name = namespace_name(xp)
    return name if name in ("numpy", "cupy", "torch") else "portable"


def dtype_name(dtype: Any) -> str:
    """``str(dtype)``, computed once per dtype (NumPy's takes about 10 us, and the per-call
    caches of options and checks key on it)."""
    # keyed with its type: dtypes of two libraries may hash alike and refuse to be compared
    key = (type(dtype), dtype)
    try:
        return _DTYPE_NAMES[key]
    except KeyError:
        name = _DTYPE_NAMES[key] = str(dtype)
        return name
    except TypeError:  # an unhashable dtype: no cache
        return str(dtype)


_EPS: dict[tuple[Any, Any], float] = {}


def machine_eps(xp: Any, dtype: Any) -> float:
    """``xp.finfo(dtype).eps`` as a float, looked up once per dtype (every outer
    iteration and line search asks)."""
    key = (type(dtype), dtype)
    try:
        return _EPS[key]
    except KeyError:
        eps = _EPS[key] = float(xp.finfo(dtype).eps)
        return eps
    except TypeError:  # an unhashable dtype: no cache
        return float(xp.finfo(dtype).eps)
