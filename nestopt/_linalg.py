"""Factor a symmetric block once, solve for many right-hand sides.

The array API standard has ``linalg.cholesky`` but no triangular solve, so
each backend family gets a native branch (SciPy for NumPy when it is
installed, cuSOLVER/cuBLAS through CuPy, torch's own kernels) and everything
else the portable blocked substitution below, written in the standard alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import array_api_compat as compat

__all__ = ["Factorization", "factorize", "host_floats", "LINEAR_SOLVERS"]

LINEAR_SOLVERS = ("cholesky", "lu", "lstsq")
_BLOCK = 64


class _NotFactorizable(ArithmeticError):
    """Internal: the matrix could not be factored as asked."""


@dataclass(frozen=True)
class Factorization:
    """A factored square matrix ``a``; ``solve(b)`` returns ``a^{-1} b``.

    ``kind`` says which kernel is used, so users and tests can see the choice.
    """

    method: str
    kind: str
    a: Any
    factor: Any
    xp: Any

    def solve(self, b: Any) -> Any:
        xp = self.xp
        vector = b.ndim == 1
        rhs = xp.reshape(b, (b.shape[0], 1)) if vector else b
        out = _SOLVERS[self.kind](self, rhs)
        return xp.reshape(out, (b.shape[0],)) if vector else out


def factorize(a: Any, *, method: str = "cholesky", xp: Any = None) -> Factorization:
    """Factor the square matrix ``a`` once.

    Raises ``_NotFactorizable`` (internal) when ``method='cholesky'`` and
    ``a`` is not numerically positive definite; callers turn that into a
    user-facing error that names the level.
    """
    if method not in LINEAR_SOLVERS:
        raise ValueError(
            f"unknown linear solver {method!r}; choose one of {', '.join(LINEAR_SOLVERS)}"
        )
    xp = compat.array_namespace(a) if xp is None else xp
    family = _family(xp)
    if method == "cholesky":
        return _cholesky(a, xp, family)
    if method == "lu":
        if family == "numpy" and _scipy_linalg() is not None:
            sl = _scipy_linalg()
            with warnings.catch_warnings():
                warnings.simplefilter("error", sl.LinAlgWarning)
                try:
                    lu = sl.lu_factor(a, check_finite=False)
                except (sl.LinAlgWarning, ValueError) as exc:
                    raise _NotFactorizable(f"singular ({exc})") from None
            return Factorization(method, "scipy_lu", a, lu, xp)
        return Factorization(method, "dense_solve", a, None, xp)
    # Least squares through the pseudo-inverse: computed once, applied many times.
    return Factorization(method, "pinv", a, xp.linalg.pinv(a), xp)


def _family(xp: Any) -> str:
    if compat.is_numpy_namespace(xp):
        return "numpy"
    if compat.is_cupy_namespace(xp):
        return "cupy"
    if compat.is_torch_namespace(xp):
        return "torch"
    return "portable"


_SCIPY: list[Any] = []


def _scipy_linalg() -> Any:
    """scipy.linalg if installed (imported on first use, never at import)."""
    if not _SCIPY:
        try:
            import scipy.linalg as sl
        except ImportError:
            sl = None
        _SCIPY.append(sl)
    return _SCIPY[0]


def _cholesky(a: Any, xp: Any, family: str) -> Factorization:
    if family == "numpy" and _scipy_linalg() is not None:
        sl = _scipy_linalg()
        try:
            c, lower = sl.cho_factor(a, lower=True, check_finite=False)
        except Exception as exc:  # scipy raises numpy's LinAlgError
            raise _NotFactorizable(str(exc)) from exc
        fact = Factorization("cholesky", "scipy_cholesky", a, (c, lower), xp)
        diag = xp.linalg.diagonal(c)
    elif family == "torch":
        import torch

        low, info = torch.linalg.cholesky_ex(a)
        if int(info) != 0:
            raise _NotFactorizable(f"torch cholesky failed at minor {int(info)}")
        fact = Factorization("cholesky", "torch_cholesky", a, low, xp)
        diag = torch.diagonal(low)
    else:
        try:
            low = xp.linalg.cholesky(a)
        except Exception as exc:  # each library has its own LinAlgError
            raise _NotFactorizable(str(exc)) from exc
        kind = "cupy_cholesky" if family == "cupy" else "blocked_substitution"
        fact = Factorization("cholesky", kind, a, low, xp)
        diag = xp.linalg.diagonal(low)
    _check_cholesky_diagonal(diag, xp)
    return fact


def host_floats(xp: Any, *scalars: Any) -> list[float]:
    """Several 0-d device arrays as Python floats, in one device-to-host copy."""
    stacked = xp.stack([xp.reshape(s, ()) for s in scalars])
    if compat.is_cupy_array(stacked):
        return [float(v) for v in stacked.get()]
    if compat.is_torch_array(stacked):
        return [float(v) for v in stacked.cpu().tolist()]
    return [float(stacked[i]) for i in range(len(scalars))]


def _check_cholesky_diagonal(diag: Any, xp: Any) -> None:
    """Reject NaN pivots (CuPy signals failure so) and numerical singularity."""
    smallest, largest = host_floats(xp, xp.min(diag), xp.max(diag))
    eps = float(xp.finfo(diag.dtype).eps)
    if not (smallest > 0.0) or not (largest < float("inf")):
        raise _NotFactorizable("non-positive or non-finite pivot")
    if (largest / smallest) ** 2 * eps > 1.0:
        raise _NotFactorizable(
            f"numerically singular (condition estimate {(largest / smallest) ** 2:.2e})"
        )


def _solve_scipy_cholesky(f: Factorization, b: Any) -> Any:
    return _scipy_linalg().cho_solve(f.factor, b, check_finite=False)


def _solve_scipy_lu(f: Factorization, b: Any) -> Any:
    return _scipy_linalg().lu_solve(f.factor, b, check_finite=False)


def _solve_torch_cholesky(f: Factorization, b: Any) -> Any:
    import torch

    return torch.cholesky_solve(b, f.factor)


def _solve_cupy_cholesky(f: Factorization, b: Any) -> Any:
    from cupyx.scipy.linalg import solve_triangular

    y = solve_triangular(f.factor, b, lower=True, check_finite=False)
    return solve_triangular(f.factor, y, lower=True, trans="T", check_finite=False)


def _solve_blocked(f: Factorization, b: Any) -> Any:
    y = forward_substitution(f.factor, b, xp=f.xp)
    return backward_substitution(f.xp.matrix_transpose(f.factor), y, xp=f.xp)


def _solve_dense(f: Factorization, b: Any) -> Any:
    try:
        return f.xp.linalg.solve(f.a, b)
    except Exception as exc:  # numpy, torch and others each have a LinAlgError
        if "LinAlgError" in type(exc).__name__:
            raise _NotFactorizable(f"singular ({exc})") from None
        raise


def _solve_pinv(f: Factorization, b: Any) -> Any:
    return f.factor @ b


_SOLVERS = {
    "scipy_cholesky": _solve_scipy_cholesky,
    "scipy_lu": _solve_scipy_lu,
    "torch_cholesky": _solve_torch_cholesky,
    "cupy_cholesky": _solve_cupy_cholesky,
    "blocked_substitution": _solve_blocked,
    "dense_solve": _solve_dense,
    "pinv": _solve_pinv,
}


def forward_substitution(low: Any, b: Any, *, xp: Any) -> Any:
    """Solve ``low @ y = b`` for lower-triangular ``low`` using the standard only.

    Works block by block: each diagonal block (at most 64 wide) is solved with
    ``linalg.solve`` and the rest is matrix products, so the cost is that of
    a triangular solve, ``O(n^2 k)``, up to small dense solves.
    """
    n = low.shape[0]
    pieces: list[Any] = []
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        rhs = b[start:stop, :]
        if pieces:
            done = xp.concat(pieces, axis=0)
            rhs = rhs - low[start:stop, :start] @ done
        pieces.append(xp.linalg.solve(low[start:stop, start:stop], rhs))
    return xp.concat(pieces, axis=0)


def backward_substitution(up: Any, b: Any, *, xp: Any) -> Any:
    """Solve ``up @ x = b`` for upper-triangular ``up`` using the standard only."""
    n = up.shape[0]
    pieces: list[Any] = []
    stop = n
    while stop > 0:
        start = max(stop - _BLOCK, 0)
        rhs = b[start:stop, :]
        if pieces:
            done = xp.concat(pieces[::-1], axis=0)
            rhs = rhs - up[start:stop, stop:] @ done
        pieces.append(xp.linalg.solve(up[start:stop, start:stop], rhs))
        stop = start
    return xp.concat(pieces[::-1], axis=0)
