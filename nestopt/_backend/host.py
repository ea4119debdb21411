"""Host copies at the edges (results, plots, logging): `to_numpy` and `host_floats`;
`max_abs` and `all_finite`, the two host reductions every iteration makes."""

from __future__ import annotations

from typing import Any

import array_api_compat as compat
import numpy as np

__all__ = ["to_numpy", "host_floats", "max_abs", "all_finite", "all_equal"]

# NumPy's ufunc reductions called directly: ``xp.max(xp.abs(x))`` through the
# compatibility namespace and NumPy's Python-level wrappers costs about twice as
# much on the small vectors that every Newton and outer iteration reduces.
_MAXIMUM = np.maximum.reduce
_ABS = np.abs
_ISFINITE = np.isfinite
_ALL = np.logical_and.reduce


def max_abs(xp: Any, x: Any) -> float:
    """``max |x_i|`` as a Python float (0.0 for an empty array; NaN if any entry is NaN)."""
    if type(x) is np.ndarray:
        return float(_MAXIMUM(_ABS(x), axis=None)) if x.size else 0.0
    if x.shape[0] == 0:
        return 0.0
    return float(xp.max(xp.abs(x)))


def all_equal(xp: Any, a: Any, b: Any) -> bool:
    """Whether two arrays of one shape are equal entry by entry (bit for bit but for
    signed zeros; NaN is never equal)."""
    if type(a) is np.ndarray and type(b) is np.ndarray:
        return bool(_ALL(a == b, axis=None))
    return bool(xp.all(a == b))


def all_finite(xp: Any, x: Any) -> bool:
    """Whether every entry of ``x`` is finite (neither NaN nor +-Inf)."""
    if type(x) is np.ndarray:
        return bool(_ALL(_ISFINITE(x), axis=None))
    return bool(xp.all(xp.isfinite(x)))


def to_numpy(x: Any) -> Any:
    """A NumPy copy of an array of any backend (results, plots, logging).

    Tuples and lists are converted element by element; Python scalars pass
    through.
    """
    if type(x) is np.ndarray:  # the common case, first
        return x.copy()
    from array_api_compat import is_cupy_array, is_torch_array

    if isinstance(x, (tuple, list)):
        return type(x)(to_numpy(item) for item in x)
    if isinstance(x, (int, float, bool, complex)) or x is None:
        return x
    if is_cupy_array(x):
        return x.get()
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return np.array(x, copy=True)
    try:
        return np.from_dlpack(x).copy()
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return np.asarray(x).copy()


def host_floats(xp: Any, *scalars: Any) -> list[float]:
    """Several 0-d device arrays as Python floats, in one device-to-host copy."""
    if all(type(s).__module__ == "numpy" for s in scalars):  # host already: no copy to batch
        return [float(s) for s in scalars]
    stacked = xp.stack([xp.reshape(s, ()) for s in scalars])
    if compat.is_cupy_array(stacked):
        return [float(v) for v in stacked.get()]
    if compat.is_torch_array(stacked):
        return [float(v) for v in stacked.cpu().tolist()]
    return [float(stacked[i]) for i in range(len(scalars))]
