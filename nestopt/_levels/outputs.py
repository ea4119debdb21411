"""Check one array a user callable returned, and bring it into nestopt's flat layout.

Gradients become ``(D,)`` vectors and Hessians ``(rows, D)`` matrices; a
callable may return per-level blocks instead (``None`` for a zero block).
Every check names the level, the callable and the block it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import array_api_compat as compat
import numpy as np

from .._backend.names import namespace_name
from .._errors import OracleError, OracleTypeError
from .._linalg.sparse import is_sparse

__all__ = ["Where", "Target", "check_array", "vector_layout", "matrix_layout"]


class Where(NamedTuple):
    """Which output is being checked: a level, one of its callables, a block of it.

    (A named tuple: one is made for every checked output, and only read when a
    check fails.)
    """

    level: int
    level_text: str
    callable: str
    block: str = ""

    def __str__(self) -> str:
        return f"{self.level_text}, callable {self.callable!r}" + (
            f" {self.block}" if self.block else ""
        )

    def at_block(self, block: str) -> Where:
        return self._replace(block=block)


@dataclass(frozen=True)
class Target:
    """What every returned array must be: namespace, device and dtype of the run."""

    xp: Any
    device: Any
    dtype: Any

    # ``numpy.ndarray`` on the NumPy backend (one device: an exact type check suffices)
    host_type: Any = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if compat.is_numpy_namespace(self.xp):
            object.__setattr__(self, "host_type", _ndarray())

    def plain(self, out: Any, shape: tuple[int, ...]) -> bool:
        """Whether ``out`` is a plain ndarray of the run's dtype and ``shape`` (NumPy only):
        every check of a returned array passes for it, in one comparison."""
        return type(out) is self.host_type and out.dtype == self.dtype and out.shape == shape

    def scalar(self, value: float) -> Any:
        """A Python (or NumPy) number as a 0-d array of the run's dtype and device."""
        if self.host_type is not None:
            return np.asarray(value, dtype=self.dtype)
        return self.xp.asarray(value, dtype=self.dtype, device=self.device)


def _ndarray() -> type:
    return np.ndarray


def check_array(out: Any, target: Target, where: Where) -> Any:
    """Type, backend, device and dtype of one returned array."""
    if type(out) is target.host_type and getattr(out, "dtype", None) == target.dtype:
        return out  # a plain ndarray of the run's dtype: every check below passes
    xp = target.xp
    if type(out).__name__ == "MaskedArray":
        raise OracleTypeError(
            f"{where} returned a masked array; nestopt ignores no entries, so return a "
            "plain array (fill or drop the masked entries first)",
            level=where.level,
        )
    if not compat.is_array_api_obj(out) or isinstance(out, (list, tuple, int, float)):
        raise OracleTypeError(
            f"{where} returned {type(out).__name__}; expected an array of the active "
            f"backend ({namespace_name(xp)})",
            level=where.level,
        )
    try:
        got = compat.array_namespace(out)
    except TypeError:
        got = None
    if got is not xp:
        raise OracleTypeError(
            f"{where} returned an array of {namespace_name(got)}; the problem is being "
            f"solved on {namespace_name(xp)}. Write the callable with the namespace of "
            "its inputs (xp = array_api_compat.array_namespace(x1)) or switch backends",
            level=where.level,
        )
    if compat.device(out) != target.device:
        raise OracleTypeError(
            f"{where} returned an array on device {compat.device(out)!r}; the inputs live "
            f"on {target.device!r}. Create arrays with device=array_api_compat.device(x1); "
            "nestopt never copies across devices behind your back",
            level=where.level,
        )
    if out.dtype != target.dtype:
        raise OracleTypeError(
            f"{where} returned dtype {out.dtype}; expected {target.dtype} (the dtype of "
            "the starting point)",
            level=where.level,
        )
    return out


def vector_layout(out: Any, sizes: tuple[int, ...], target: Target, where: Where) -> Any:
    """A ``(D,)`` vector from one array or a sequence of per-level blocks (``None``: zero)."""
    dim, n = sum(sizes), len(sizes)
    if target.plain(out, (dim,)):
        return out
    xp = target.xp
    if isinstance(out, (list, tuple)):
        if len(out) != n:
            raise OracleError(
                f"{where} returned a sequence of length {len(out)}; " + _expected(sizes),
                level=where.level,
            )
        parts = []
        for j, (part, size) in enumerate(zip(out, sizes), start=1):
            if part is None:
                parts.append(xp.zeros((size,), dtype=target.dtype, device=target.device))
                continue
            part = check_array(part, target, where.at_block(f"block {j}"))
            if tuple(part.shape) != (size,):
                raise OracleError(
                    f"{where}: block {j} has shape {tuple(part.shape)}; " + _expected(sizes),
                    level=where.level,
                )
            parts.append(part)
        return xp.concat(parts)
    out = check_array(out, target, where)
    if tuple(out.shape) != (dim,):
        raise OracleError(
            f"{where} returned shape {tuple(out.shape)}; " + _expected(sizes), level=where.level
        )
    return out


def _expected(sizes: tuple[int, ...]) -> str:
    return (
        f"expected an array of shape ({sum(sizes)},) or a tuple of {len(sizes)} arrays of "
        f"shapes {tuple((d,) for d in sizes)} (None for a zero block)"
    )


def matrix_layout(
    out: Any, sizes: tuple[int, ...], target: Target, where: Where, *, rows: int | None = None
) -> Any:
    """A ``(rows, D)`` matrix from one array or an ``n x n`` nested sequence of blocks.

    ``rows`` is the number of rows expected (the last ``rows`` of ``D``, default
    all); blocks always describe the full ``(D, D)`` matrix, and only the block
    rows holding the rows asked for are assembled.
    """
    dim, n = sum(sizes), len(sizes)
    rows = dim if rows is None else rows
    if target.plain(out, (rows, dim)):
        return out
    xp = target.xp
    if is_sparse(out):
        return _sparse_layout(out, rows, dim, target, where)
    expected = (
        f"expected a ({rows}, {dim}) array or a {n} x {n} nested sequence of blocks "
        f"(block (i, j) of shape (d_i, d_j) with d = {sizes}, None for zero)"
    )
    if isinstance(out, (list, tuple)):
        if len(out) != n or any(not isinstance(row, (list, tuple)) or len(row) != n for row in out):
            raise OracleError(
                f"{where} returned a nested sequence that is not {n} x {n}; " + expected,
                level=where.level,
            )
        # Only the block rows that hold the rows asked for are assembled (a lower level's
        # rows of a large Hessian, without copying the upper levels' rows twice); the
        # others' blocks are checked, and None there costs nothing.
        cuts = [sum(sizes[:i]) for i in range(n + 1)]
        first = cuts.index(dim - rows) if dim - rows in cuts else 0
        for i, row in enumerate(out[:first]):
            for j, b in enumerate(row):
                if b is not None:
                    _block(b, (sizes[i], sizes[j]), i, j, target, where)
        checked = [
            [_block(b, (sizes[i], sizes[j]), i, j, target, where) for j, b in enumerate(row)]
            for i, row in enumerate(out[first:], start=first)
        ]
        full = xp.concat([xp.concat(row, axis=1) for row in checked], axis=0)
        skipped = cuts[first]
        return full[dim - rows - skipped :, :] if rows != dim - skipped else full
    out = check_array(out, target, where)
    if tuple(out.shape) != (rows, dim):
        raise OracleError(
            f"{where} returned shape {tuple(out.shape)}; " + expected, level=where.level
        )
    return out


def _block(block: Any, shape: tuple[int, int], i: int, j: int, target: Target, where: Where) -> Any:
    """Block ``(i, j)`` of a nested Hessian, checked (zeros for None)."""
    if block is None:
        return target.xp.zeros(shape, dtype=target.dtype, device=target.device)
    if target.plain(block, shape):
        return block
    block = check_array(block, target, where.at_block(f"block ({i + 1}, {j + 1})"))
    if tuple(block.shape) != shape:
        raise OracleError(
            f"{where}: block ({i + 1}, {j + 1}) has shape {tuple(block.shape)}, expected {shape}",
            level=where.level,
        )
    return block


def _sparse_layout(out: Any, rows: int, dim: int, target: Target, where: Where) -> Any:
    """A sparse Hessian (SciPy on NumPy, cupyx on CuPy): shape and dtype, rows sliceable."""
    import array_api_compat as compat

    on_gpu = type(out).__module__.startswith("cupyx")
    if on_gpu != compat.is_cupy_namespace(target.xp):
        raise OracleTypeError(
            f"{where} returned a {type(out).__module__} sparse matrix; on "
            f"{namespace_name(target.xp)} return a dense array"
            + (" or a cupyx.scipy.sparse matrix" if compat.is_cupy_namespace(target.xp) else "")
            + (" or a scipy.sparse matrix" if compat.is_numpy_namespace(target.xp) else ""),
            level=where.level,
        )
    if tuple(out.shape) != (rows, dim):
        raise OracleError(
            f"{where} returned a sparse matrix of shape {tuple(out.shape)}; expected "
            f"({rows}, {dim})",
            level=where.level,
        )
    if out.dtype != target.dtype:
        raise OracleTypeError(
            f"{where} returned a sparse matrix of dtype {out.dtype}; expected {target.dtype}",
            level=where.level,
        )
    return out.tocsr()
