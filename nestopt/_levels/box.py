"""A box on one level's variable, from `Bounds` or the plain forms that cannot be mistaken."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import device

from .._backend.host import to_numpy
from .constraints import Bounds, open_side_text

__all__ = ["box_arrays", "as_bounds"]

_INF = float("inf")


def as_bounds(bounds: Any, size: int, where: str) -> Bounds | None:
    """``bounds`` as a `Bounds`, or ``None``; refuses forms that read two ways.

    Accepted: `nestopt.Bounds`, ``scipy.optimize.Bounds`` (anything with
    ``lb`` and ``ub``), a ``(lower, upper)`` pair of scalars or arrays
    (``None`` for an open side), and a sequence of ``size`` per-coordinate
    ``(lo, hi)`` pairs. With ``size == 2`` a pair of pairs is ambiguous (two
    coordinates' pairs, or lower and upper arrays?) and is refused.
    """
    if bounds is None:
        return None
    if isinstance(bounds, Bounds):
        return bounds
    try:
        return _as_bounds(bounds, size, where)
    except ValueError as exc:
        if str(exc).startswith("Bounds:"):  # Bounds' own check of its sides: name the level
            raise ValueError(f"bounds of {where}: {str(exc).removeprefix('Bounds: ')}") from None
        raise


def _as_bounds(bounds: Any, size: int, where: str) -> Bounds:
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        return Bounds(bounds.lb, bounds.ub)
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Sequence):
        raise TypeError(
            f"bounds of {where} must be nestopt.Bounds(lb, ub), a (lower, upper) pair or "
            f"{size} (lo, hi) pairs; got {type(bounds).__name__}"
        )
    pairs = [item for item in bounds if _is_pair(item)]
    if len(bounds) == 2 and size == 2 and len(pairs) == 2:
        raise ValueError(
            f"bounds={bounds!r} for {where} (2 variables) reads two ways: as (lower, upper) "
            "arrays or as one (lo, hi) pair per coordinate. Say which with "
            "nestopt.Bounds(lb, ub)"
        )
    if len(bounds) == size and len(pairs) == size and size != 2:
        lows = [-_INF if lo is None else lo for lo, _ in bounds]
        highs = [_INF if hi is None else hi for _, hi in bounds]
        return Bounds(lows, highs)
    if len(bounds) == 2:
        lower, upper = bounds
        return Bounds(-_INF if lower is None else lower, _INF if upper is None else upper)
    raise ValueError(
        f"bounds of {where} must be nestopt.Bounds(lb, ub), a (lower, upper) pair or {size} "
        f"(lo, hi) pairs; got {len(bounds)} entries"
    )


def box_arrays(xp: Any, like: Any, bounds: Bounds, where: str) -> tuple[Any, Any]:
    """``(lower, upper)`` arrays of ``like``'s namespace, dtype and device, checked."""
    size = like.shape[0]
    out = []
    for name, side, fill in (("lb", bounds.lb, -_INF), ("ub", bounds.ub, _INF)):
        side = _host(side, fill)
        arr = xp.asarray(side, dtype=like.dtype, device=device(like))
        if arr.ndim == 0 or tuple(arr.shape) == (1,):
            arr = xp.broadcast_to(xp.reshape(arr, (1,)), (size,))
        if tuple(arr.shape) != (size,):
            raise ValueError(
                f"bounds {name} of {where} must be a scalar or have shape ({size},), got "
                f"shape {tuple(arr.shape)}"
            )
        if bool(xp.any(xp.isnan(arr))):
            raise ValueError(f"bounds {name} of {where} contain NaN; use -inf/inf for no bound")
        out.append(arr)
    lower, upper = out
    if bool(xp.any(lower > upper)):
        raise ValueError(f"bounds of {where}: some lower bound exceeds its upper bound")
    if bool(xp.any((lower == _INF) | (upper == -_INF))):
        low, high = np.asarray(to_numpy(lower)), np.asarray(to_numpy(upper))
        i = int(np.argmax((low == _INF) | (high == -_INF)))
        raise ValueError(f"bounds of {where}: bounds[{i}] has {open_side_text(low[i], high[i])}")
    return lower, upper


def _is_pair(item: Any) -> bool:
    shape = getattr(item, "shape", None)
    if shape is not None:
        return tuple(shape) == (2,)
    return isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) == 2


def _host(side: Any, fill: float) -> Any:
    """Python numbers or NumPy data; ``None`` entries become the open side."""
    if side is None:
        return fill
    if isinstance(side, (list, tuple)):
        return [fill if v is None else float(v) for v in side]
    try:
        return to_numpy(side)
    except Exception:  # scalars and other array-likes go through asarray as given
        return side
