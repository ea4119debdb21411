"""Factor a symmetric block once, solve for many right-hand sides.

The array API standard has ``linalg.cholesky`` but no triangular solve, so
each backend family gets a native branch (SciPy for NumPy when it is
installed, cuSOLVER/cuBLAS through CuPy, torch's own kernels) and everything
else the portable blocked substitution of ``_substitution``. Failures raise
the internal `FactorizationError`, which the level solvers turn into errors
that name the level.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import array_api_compat as compat

from .._backend.host import host_floats
from .._backend.names import kernel_family, machine_eps
from .._errors import FactorizationError
from .sparse import identity_like, is_sparse, sparse_extremes, sparse_factor
from .triangular import backward_substitution, forward_substitution

__all__ = [
    "Factorization",
    "factorize",
    "factorize_shifted",
    "residual_is_small",
    "smallest_eigenvalues",
    "lapack_cholesky",
    "lapack_cholesky_solve",
    "scipy_linalg",
    "LINEAR_SOLVERS",
    "DENSE_SOLVERS",
]

DENSE_SOLVERS = ("cholesky", "lu", "lstsq")
LINEAR_SOLVERS = (*DENSE_SOLVERS, "cg", "minres")


@dataclass(eq=False, slots=True)
class Factorization:
    """A factored square matrix ``a``; ``solve(b)`` returns ``a^{-1} b``.

    ``kind`` says which kernel is used, so users and tests can see the choice;
    ``shift`` is the diagonal shift added before factoring (0 for none). Not
    changed once made (one is made per factorization: not a frozen dataclass,
    whose construction costs several times more).
    """

    method: str
    kind: str
    a: Any
    factor: Any
    xp: Any
    shift: float = 0.0
    negatives: int | None = None

    def solve(self, b: Any) -> Any:
        if self.kind == "scipy_cholesky":  # LAPACK takes a vector or a matrix as it is
            return lapack_cholesky_solve(self.factor, b)
        xp = self.xp
        vector = b.ndim == 1
        rhs = xp.reshape(b, (b.shape[0], 1)) if vector else b
        out = _SOLVERS[self.kind](self, rhs)
        return xp.reshape(out, (b.shape[0],)) if vector else out


def factorize(a: Any, *, method: str = "cholesky", xp: Any = None) -> Factorization:
    """Factor the square matrix ``a`` once.

    Raises `FactorizationError` when ``method='cholesky'`` and ``a`` is not
    numerically positive definite, or ``method='lu'`` and ``a`` is singular.
    """
    if method not in DENSE_SOLVERS:
        raise ValueError(
            f"unknown linear solver {method!r}; choose one of {', '.join(DENSE_SOLVERS)}"
        )
    if is_sparse(a):
        return sparse_factorization(a, method, xp)
    xp = compat.array_namespace(a) if xp is None else xp
    family = kernel_family(xp)
    if method == "cholesky":
        return _cholesky(a, xp, family)
    if method == "lu":
        if family == "numpy" and scipy_linalg() is not None:
            sl = scipy_linalg()
            with warnings.catch_warnings():
                warnings.simplefilter("error", sl.LinAlgWarning)
                try:
                    lu = sl.lu_factor(a, check_finite=False)
                except (sl.LinAlgWarning, ValueError) as exc:
                    raise FactorizationError(f"singular ({exc})") from None
            return Factorization(method, "scipy_lu", a, lu, xp)
        return Factorization(method, "dense_solve", a, None, xp)
    # Least squares through the pseudo-inverse: computed once, applied many times.
    return Factorization(method, "pinv", a, xp.linalg.pinv(a), xp)


def factorize_shifted(a: Any, *, xp: Any) -> Factorization:
    """Cholesky of ``a + shift I`` with the smallest shift (0, then growing) that works.

    Away from a solution a level's block may be indefinite; the shifted
    Newton step is still a descent direction. The shift starts at 1e-3 of
    the largest diagonal entry, so it is invariant to scaling the objective.
    Raises `FactorizationError` when the block is zero or no shift works.
    """
    try:
        return factorize(a, method="cholesky", xp=xp)
    except FactorizationError:
        pass
    if is_sparse(a):
        scale = float(abs(a).max()) if a.shape[0] else 0.0
    else:
        scale = float(xp.max(xp.abs(a))) if a.shape[0] else 0.0
    if not scale > 0.0:
        raise FactorizationError("zero curvature: the block is exactly zero")
    eye = identity_like(a, xp)
    shift = 1e-3 * scale
    for _ in range(40):
        try:
            fact = factorize(a + shift * eye, method="cholesky", xp=xp)
        except FactorizationError:
            shift *= 10.0
            continue
        return Factorization(fact.method, fact.kind, a, fact.factor, xp, shift)
    raise FactorizationError("no diagonal shift made the block positive definite")


def smallest_eigenvalues(a: Any, *, xp: Any) -> tuple[float, float]:
    """``(smallest, largest)`` eigenvalue of the symmetric ``a`` (for messages and checks)."""
    if is_sparse(a):
        return sparse_extremes(a)
    eigenvalues = xp.linalg.eigvalsh(a)
    smallest, largest = host_floats(xp, xp.min(eigenvalues), xp.max(eigenvalues))
    return smallest, largest


def residual_is_small(
    a: Any, xw: Any, bw: Any, tol: float, *, xp: Any, b_full: Any, w: Any
) -> tuple[bool, float]:
    """Is ``a (X w) = -B w`` solved to ``tol``? A probe along one vector ``w``.

    ``xw = X w`` and ``bw = B w`` are ``(d, 1)``. The residual is judged
    relative to ``||a xw|| + ||bw||``, and where those cancel, to the bound of a
    backward-stable solve, ``||a|| ||xw|| + ||B|| ||w||``. Returns whether it
    passes and the relative residual.
    """
    axw = a @ xw
    residual, norm_ax, norm_b = host_floats(
        xp,
        xp.linalg.vector_norm(axw + bw),
        xp.linalg.vector_norm(axw),
        xp.linalg.vector_norm(bw),
    )
    if residual <= tol * (norm_ax + norm_b):
        return True, residual / max(norm_ax + norm_b, 1e-300)
    norm_a, norm_xw, norm_bm, norm_w = host_floats(
        xp,
        xp.linalg.matrix_norm(a),
        xp.linalg.vector_norm(xw),
        xp.linalg.matrix_norm(b_full),
        xp.linalg.vector_norm(w),
    )
    scale = max(norm_a * norm_xw + norm_bm * norm_w, 1e-300)
    return residual <= tol * scale, residual / scale


_SCIPY: list[Any] = []


def scipy_linalg() -> Any:
    """scipy.linalg if installed (imported on first use, never at import)."""
    if not _SCIPY:
        try:
            import scipy.linalg as sl
        except ImportError:
            sl = None
        _SCIPY.append(sl)
    return _SCIPY[0]


def _cholesky(a: Any, xp: Any, family: str) -> Factorization:
    if family == "numpy" and scipy_linalg() is not None:
        # LAPACK's potrf/potrs directly: scipy.linalg's cho_factor/cho_solve wrappers cost
        # more than the factorization itself on the small blocks of many problems.
        potrf, potrs = lapack_cholesky(a)
        c, info = potrf(a, lower=1, clean=1, overwrite_a=0)
        if info != 0:
            raise FactorizationError(
                f"not positive definite (leading minor {info})"
                if info > 0
                else f"LAPACK potrf: illegal argument {-info}"
            )
        fact = Factorization("cholesky", "scipy_cholesky", a, (c, potrs), xp)
        diag = c.diagonal()
    elif family == "torch":
        import torch

        low, info = torch.linalg.cholesky_ex(a)
        if int(info) != 0:
            raise FactorizationError(f"torch cholesky failed at minor {int(info)}")
        fact = Factorization("cholesky", "torch_cholesky", a, low, xp)
        diag = torch.diagonal(low)
    else:
        try:
            low = xp.linalg.cholesky(a)
        except Exception as exc:  # each library has its own LinAlgError
            raise FactorizationError(str(exc)) from None
        kind = "cupy_cholesky" if family == "cupy" else "blocked_substitution"
        fact = Factorization("cholesky", kind, a, low, xp)
        diag = xp.linalg.diagonal(low)
    _check_cholesky_diagonal(diag, xp)
    return fact


def lapack_cholesky(a: Any) -> tuple[Any, Any]:
    """LAPACK's ``potrf`` and ``potrs`` for ``a``'s dtype, looked up once per dtype."""
    key = a.dtype.char
    pair = _LAPACK.get(key)
    if pair is None:
        pair = _LAPACK[key] = scipy_linalg().get_lapack_funcs(("potrf", "potrs"), (a,))
    return pair


_LAPACK: dict[str, tuple[Any, Any]] = {}


def lapack_cholesky_solve(factor: tuple[Any, Any], b: Any) -> Any:
    """``A^{-1} b`` from ``(c, potrs)``: ``A``'s lower Cholesky factor and LAPACK's solve."""
    c, potrs = factor
    x, info = potrs(c, b, lower=1)
    if info != 0:
        raise FactorizationError(f"LAPACK potrs: illegal argument {-info}")
    return x


def _check_cholesky_diagonal(diag: Any, xp: Any) -> None:
    """Reject NaN pivots (CuPy signals failure so) and numerical singularity."""
    if diag.shape[0] == 0:
        return
    if type(diag).__module__ == "numpy":  # host already: two reductions, no wrappers
        smallest, largest = float(diag.min()), float(diag.max())
    else:
        smallest, largest = host_floats(xp, xp.min(diag), xp.max(diag))
    eps = machine_eps(xp, diag.dtype)
    if not (smallest > 0.0) or not (largest < float("inf")):
        raise FactorizationError("non-positive or non-finite pivot")
    if (largest / smallest) ** 2 * eps > 1.0:
        raise FactorizationError(
            f"numerically singular in {diag.dtype} (condition estimate "
            f"{(largest / smallest) ** 2:.2e}, above 1/eps = {1 / eps:.1e})"
        )


def _solve_scipy_lu(f: Factorization, b: Any) -> Any:
    return scipy_linalg().lu_solve(f.factor, b, check_finite=False)


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
        if "LinAlgError" in type(exc).__name__ or "singular" in str(exc).lower():
            raise FactorizationError(f"singular ({exc})") from None
        raise


def _solve_pinv(f: Factorization, b: Any) -> Any:
    return f.factor @ b


def _solve_splu(f: Factorization, b: Any) -> Any:
    return f.factor.solve(b)


_SOLVERS = {
    "scipy_lu": _solve_scipy_lu,
    "torch_cholesky": _solve_torch_cholesky,
    "cupy_cholesky": _solve_cupy_cholesky,
    "blocked_substitution": _solve_blocked,
    "dense_solve": _solve_dense,
    "pinv": _solve_pinv,
    "scipy_splu": _solve_splu,
}


def sparse_factorization(a: Any, method: str, xp: Any) -> Factorization:
    """SuperLU in symmetric mode; for Cholesky its pivots must be positive, as Cholesky's."""
    try:
        lu, negatives, pivots = sparse_factor(a, method)
    except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
        raise FactorizationError(f"singular ({exc})") from None
    if method == "cholesky":
        import numpy as np

        magnitudes = np.abs(pivots)
        if negatives or not np.all(np.isfinite(pivots)) or magnitudes.min() == 0.0:
            raise FactorizationError("non-positive or non-finite pivot")
        eps = float(np.finfo(pivots.dtype).eps)
        if magnitudes.max() / magnitudes.min() * eps > 1.0:
            raise FactorizationError(
                f"numerically singular in {pivots.dtype} (pivot ratio "
                f"{magnitudes.max() / magnitudes.min():.2e}, above 1/eps = {1 / eps:.1e})"
            )
    return Factorization(method, "scipy_splu", a, lu, xp, negatives=negatives)
