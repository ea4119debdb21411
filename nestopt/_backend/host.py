"""Host copies at the edges (results, plots, logging): `to_numpy` and `host_floats`."""

from __future__ import annotations

from typing import Any

import array_api_compat as compat

__all__ = ["to_numpy", "host_floats"]


def to_numpy(x: Any) -> Any:
    """A NumPy copy of an array of any backend (results, plots, logging).

    Tuples and lists are converted element by element; Python scalars pass
    through.
    """
    import numpy as np
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
