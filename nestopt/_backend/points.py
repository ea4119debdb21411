"""Starting points onto the backend, and the dtype policy.

Supported working dtypes are real float32 and float64 (a NumPy float32 start
runs in float32 on any backend). Integer and boolean starts run in float64.
Everything else (float16, bfloat16, complex, long double, strings, objects)
is refused up front, saying what is supported, rather than failing later
inside a factorization or a user callable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import array_api_compat as compat
import numpy as np

from .names import namespace_name
from .selection import get_backend

__all__ = ["prepare_points", "SUPPORTED_DTYPES"]

SUPPORTED_DTYPES = "float32 or float64 (integer and boolean starts run in float64)"


def prepare_points(
    problem: Any, xs: Sequence[Any], backend: Any = None, device: Any = None
) -> tuple[Any, Any, tuple[Any, ...]]:
    """Copy the starting points onto the backend: ``(xp, device, xs)``.

    The points are always copied, so nothing the user passed is ever
    modified or aliased by a result. Arrays of a non-NumPy library passed
    while no backend was chosen anywhere select that library (nothing to
    copy across devices then); otherwise the backend in force applies.
    ``problem`` needs ``n``, ``sizes`` and ``describe(k)``.
    """
    if type(xs) not in (list, tuple) and (
        isinstance(xs, (str, bytes)) or not isinstance(xs, Sequence)
    ):
        raise TypeError(
            f"xs must be a sequence of {problem.n} per-level arrays, got {type(xs).__name__}"
        )
    if len(xs) != problem.n:
        raise ValueError(
            f"xs has {len(xs)} entries but the problem has {problem.n} levels; pass one "
            f"starting array per level, of sizes {problem.sizes}"
        )
    chosen = get_backend(backend, device)
    if chosen.name == "numpy" and chosen.device is None:
        # The common case, checked without the general machinery: float64 NumPy vectors
        # of the right sizes, on NumPy (copied, as always).
        fast = [
            x
            for x, size in zip(xs, problem.sizes)
            if type(x) is np.ndarray and x.dtype == np.float64 and x.shape == (size,)
        ]
        if len(fast) == len(xs):
            xp = chosen.xp
            return xp, "cpu", tuple(np.array(x, copy=True) for x in fast)
    arrays = [x for x in xs if compat.is_array_api_obj(x) and not isinstance(x, (int, float))]
    bits = [_width(problem, k, x) for k, x in enumerate(xs, start=1)]
    inferred = None
    if chosen.source == "default" and arrays and len(arrays) == len(xs):
        try:
            inferred = compat.array_namespace(*arrays)
        except TypeError:
            inferred = None
        if inferred is not None and compat.is_numpy_namespace(inferred):
            inferred = None
    if inferred is not None:
        xp = inferred
        target = compat.device(arrays[0])
    else:
        xp = chosen.xp
        target = chosen.native_device
    width = next((b for b in bits if b is not None), 64)
    dtype = xp.float32 if width == 32 else xp.float64
    out = []
    for k, (x, size) in enumerate(zip(xs, problem.sizes), start=1):
        kwargs = {"dtype": dtype, "copy": True}
        if target is not None:
            kwargs["device"] = target
        try:
            arr = xp.asarray(x, **kwargs)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"the starting point of {problem.describe(k)} could not be made an array "
                f"of {namespace_name(xp)}: {exc}"
            ) from exc
        if arr.ndim == 0 and size == 1:
            arr = xp.reshape(arr, (1,))
        if tuple(arr.shape) != (size,):
            raise ValueError(
                f"the starting point of {problem.describe(k)} has shape {tuple(arr.shape)}; "
                f"expected ({size},)"
            )
        out.append(arr)
    return xp, compat.device(out[0]), tuple(out)


def _width(problem: Any, k: int, x: Any) -> int | None:
    """32 or 64 for a real floating start, None for integers and booleans; refuse the rest."""
    if type(x).__module__ == "numpy" and hasattr(x, "dtype"):  # the common case, fast
        kind, size = str(x.dtype.kind), int(x.dtype.itemsize)
        if kind in "biu":
            return None
        if kind == "f" and size in (4, 8):
            return size * 8
    where = f"the starting point of {problem.describe(k)}"
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{where} is a string ({x!r}); pass numbers. Supported: {SUPPORTED_DTYPES}")
    if getattr(x, "requires_grad", False):
        raise TypeError(
            f"{where} has requires_grad=True; nestopt computes derivatives itself and would "
            "otherwise record an autograd graph through the whole solve. Pass x.detach()"
        )
    if type(x).__name__ == "MaskedArray":
        raise TypeError(f"{where} is a masked array; pass a plain array ({SUPPORTED_DTYPES})")
    if compat.is_array_api_obj(x) and not isinstance(x, (int, float, bool)):
        own = compat.array_namespace(x)
        dtype = x.dtype
        if own.isdtype(dtype, ("signed integer", "unsigned integer", "bool")):
            return None
        if own.isdtype(dtype, "real floating"):
            bits = own.finfo(dtype).bits
            if bits in (32, 64) and "bfloat" not in str(dtype):
                return int(bits)
        raise TypeError(
            f"{where} has dtype {dtype}, which nestopt does not support; "
            f"supported: {SUPPORTED_DTYPES}"
        )
    import numpy as np

    try:
        probe = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{where} could not be read as numbers: {exc}") from exc
    if probe.dtype.kind in "biu":
        return None
    if probe.dtype.kind == "f" and probe.dtype.itemsize in (4, 8):
        return None if isinstance(x, (int, float, list, tuple)) else probe.dtype.itemsize * 8
    raise TypeError(
        f"{where} has dtype {probe.dtype} ({type(x).__name__}), which nestopt does not "
        f"support; supported: {SUPPORTED_DTYPES}"
    )
