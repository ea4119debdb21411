"""Call the user's oracles and check what comes back, once, where it enters.

Every array a user callable returns is checked for type, backend, device,
dtype, shape/layout and finiteness before the core touches it, and turned
into one flat layout: gradients ``(D,)``, Hessian rows ``(D - start, D)``.
One `Oracles` serves one run (a `best_response`, a `solve`, a check), so the
once-per-run checks (call signatures) hold per run. Symmetry, a property of
the callable, is probed on the first Hessian of each level object (and row
offset) in the process, and so is the finiteness of a declared quadratic
level's constant Hessian: a user's loop of `hypergradient` calls pays them once.
"""

from __future__ import annotations

import inspect
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend.host import all_finite, host_floats, to_numpy
from .._backend.names import dtype_name, machine_eps
from .._errors import (
    NonFiniteError,
    OracleError,
    SymmetryError,
    SymmetryWarning,
    warn_user,
)
from .._linalg.sparse import is_sparse
from .outputs import Target, Where, check_array, matrix_layout, vector_layout

__all__ = ["Oracles", "SYMMETRY_POLICIES"]

SYMMETRY_POLICIES = ("raise", "warn")
_CALLABLES = ("value", "grad", "hess", "hess_dir", "hvp", "hvp_dir")
# (id(level), start, check, dtype) -> weak reference to the level: checks passed before.
_PASSED: dict[tuple[int, int, str, str], Any] = {}


def check_passed(level: Any, start: int, check: str, dtype: Any) -> bool:
    ref = _PASSED.get((id(level), start, check, dtype_name(dtype)))
    return ref is not None and ref() is level


def mark_check_passed(level: Any, start: int, check: str, dtype: Any) -> None:
    key = (id(level), start, check, dtype_name(dtype))

    def forget(_: Any) -> None:  # the level is gone, and its id may be reused
        _PASSED.pop(key, None)

    _PASSED[key] = weakref.ref(level, forget)


class Oracles:
    """The user's callables for one run, on one backend, device and dtype.

    Parameters
    ----------
    levels : sequence of Level
        The levels, top first (``levels[k - 1]`` is level ``k``).
    sizes : tuple of int
        Every level's size; ``D = sum(sizes)``.
    level_texts : sequence of str
        How messages name each level (``'level 2 ("attacker")'``).
    target : Target
        Namespace, device and dtype every output must have.
    check_finite : bool
        Check outputs for NaN and Inf.
    symmetry : {'raise', 'warn'}
        What an asymmetric Hessian (beyond rounding) does; checked on the
        first Hessian of each level in the run.

    Notes
    -----
    Arrays are returned as the callable gave them where they are used at
    once; ``keep=True`` copies, for results held across another call of the
    same callable (a callable may reuse one output buffer).
    """

    def __init__(
        self,
        levels: Sequence[Any],
        sizes: tuple[int, ...],
        level_texts: Sequence[str],
        target: Target,
        *,
        check_finite: bool = True,
        symmetry: str = "raise",
    ) -> None:
        self.levels = tuple(levels)
        self.sizes = tuple(sizes)
        self.dim = sum(sizes)
        self.level_texts = tuple(level_texts)
        self.target = target
        self.xp = target.xp
        self.check_finite = check_finite
        self.symmetry = symmetry
        self.counts = {name: [0] * len(self.levels) for name in _CALLABLES}
        self._symmetry_checked: set[int] = set()

    @classmethod
    def for_problem(cls, problem: Any, target: Target, **options: Any) -> Oracles:
        texts = tuple(map(problem.describe, range(1, problem.n + 1)))
        return cls(problem.levels, problem.sizes, texts, target, **options)

    # -- calls --------------------------------------------------------------

    def has(self, k: int, name: str) -> bool:
        return getattr(self.levels[k - 1], name) is not None

    def value(self, k: int, xs: Sequence[Any]) -> Any:
        """``f_k`` as a 0-d array of the run's dtype."""
        if self.levels[k - 1].value is None:
            raise ValueError(
                f"{self.level_texts[k - 1]} has no value callable, which this computation "
                "needs; pass Level(..., value=...)"
            )
        out = self._call(k, "value", xs)
        where = self._where(k, "value")
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            # A Python float, or a NumPy scalar (a float too): tested as it is.
            if self.check_finite and not math.isfinite(out):
                self._check_finite(self.target.scalar(out), where, xs)
            return self.target.scalar(out)
        out = check_array(out, self.target, where)
        if out.ndim != 0:
            if tuple(out.shape) != (1,):
                raise OracleError(
                    f"{where} returned shape {tuple(out.shape)}; expected a scalar (shape ())",
                    level=k,
                )
            out = self.xp.reshape(out, ())
        if self.check_finite and not all_finite(self.xp, out):
            self._check_finite(out, where, xs)
        return out

    def grad(self, k: int, xs: Sequence[Any]) -> Any:
        """``grad f_k`` as a fresh ``(D,)`` array (always copied: it is cheap)."""
        out = self._call(k, "grad", xs)
        where = self._where(k, "grad")
        flat = vector_layout(out, self.sizes, self.target, where)
        if flat is out:
            flat = _copy(self.xp, flat)
        if self.check_finite and not all_finite(self.xp, flat):
            self._check_finite(flat, where, xs)
        return flat

    def hess(self, k: int, xs: Sequence[Any], *, start: int = 0, keep: bool = False) -> Any:
        """Rows ``start:D`` of ``hess f_k`` (only those, when the level declares ``hess_rows``)."""
        where = self._where(k, "hess")
        if self.levels[k - 1].hess_rows and start > 0:
            out = self._call(k, "hess", xs, start=start)
            rows = matrix_layout(out, self.sizes, self.target, where, rows=self.dim - start)
            self._check_finite_matrix(rows, where, xs, start=start)
            self._check_symmetry(rows, k, where, start=start)
            return _copy(self.xp, rows) if keep and rows is out else rows
        out = self._call(k, "hess", xs)
        if start and isinstance(out, (list, tuple)):
            # Blocks: only the block rows asked for are assembled; the others are checked
            # for NaN and Inf (one sum each), not copied.
            rows = matrix_layout(out, self.sizes, self.target, where, rows=self.dim - start)
            if self.check_finite:
                cuts = [sum(self.sizes[:i]) for i in range(len(self.sizes) + 1)]
                for row in out[: cuts.index(start) if start in cuts else 0]:
                    for block in row:
                        if block is not None:
                            self._check_finite(self.xp.sum(block), where, xs)
            self._check_finite_matrix(rows, where, xs, start=start)
            self._check_symmetry(rows, k, where, start=start)
            return rows
        full = matrix_layout(out, self.sizes, self.target, where)
        # The whole output is checked (a NaN anywhere means a broken callable),
        # finiteness first: NaN would pass any symmetry test.
        self._check_finite_matrix(full, where, xs, start=0)
        self._check_symmetry(full, k, where, start=0)
        rows = full[start:, :] if start else full
        if keep and (full is out or is_sparse(full)):  # the caller's buffer, or a view of it
            rows = _copy(self.xp, rows)
        return rows

    def hess_dir(self, k: int, xs: Sequence[Any], v: Any, *, start: int = 0) -> Any:
        """Rows ``start:D`` of ``d/dt hess f_k(x + t v)`` at ``t = 0``."""
        where = self._where(k, "hess_dir")
        if self.levels[k - 1].hess_rows and start > 0:
            out = self._call(k, "hess_dir", [*xs, v], start=start)
            rows = matrix_layout(out, self.sizes, self.target, where, rows=self.dim - start)
            self._check_finite_matrix(rows, where, xs)
            return rows
        out = self._call(k, "hess_dir", [*xs, v])
        full = matrix_layout(out, self.sizes, self.target, where)
        self._check_finite_matrix(full, where, xs)
        return full[start:, :] if start else full

    def hvp(self, k: int, xs: Sequence[Any], v: Any, *, finite_later: bool = False) -> Any:
        """``hess f_k @ v`` for a flat ``v``: from ``hvp``, or from the dense ``hess``.

        ``finite_later``: the caller tests the product for NaN and Inf itself (a Krylov
        solve's ``p^T A p`` is not finite if an entry it uses is not) and calls
        `check_hvp_finite` where it is not; every other product is tested here.
        """
        if self.levels[k - 1].hvp is None:
            return self.hess(k, xs) @ v
        where = self._where(k, "hvp")
        out = self._call(k, "hvp", [*xs, v])
        flat = vector_layout(out, self.sizes, self.target, where)
        # One reduction per product: a NaN or Inf makes the sum non-finite; only then the
        # elementwise test (a sum that merely overflowed passes it).
        if self.check_finite and not finite_later and not _finite_sum(self.xp, flat):
            self._check_finite(flat, where, xs)
        return flat

    def check_hvp_finite(self, k: int, xs: Sequence[Any], out: Any) -> None:
        """Raise `NonFiniteError` naming level ``k``'s ``hvp`` if ``out`` holds NaN or Inf."""
        self._check_finite(out, self._where(k, "hvp"), xs)

    def hvp_dir(self, k: int, xs: Sequence[Any], v: Any, u: Any) -> Any:
        """``d/dt hess f_k(x + t u) @ v`` at ``t = 0``."""
        where = self._where(k, "hvp_dir")
        out = self._call(k, "hvp_dir", [*xs, v, u])
        flat = vector_layout(out, self.sizes, self.target, where)
        self._check_finite(flat, where, xs)
        return flat

    # -- checks -------------------------------------------------------------

    def _where(self, k: int, name: str) -> Where:
        return Where(k, self.level_texts[k - 1], name)

    def _call(self, k: int, name: str, args: Sequence[Any], **keywords: Any) -> Any:
        fun: Callable[..., Any] = getattr(self.levels[k - 1], name)
        self.counts[name][k - 1] += 1
        try:
            return fun(*args, **keywords)
        except TypeError:
            self._check_signature(fun, k, name, len(args), keywords)
            raise

    def _check_signature(
        self, fun: Callable[..., Any], k: int, name: str, count: int, keywords: dict[str, Any]
    ) -> None:
        """A callable that cannot take ``count`` positional arrays is named, clearly."""
        try:
            signature = inspect.signature(fun)
        except (TypeError, ValueError):
            return
        try:
            signature.bind(*([None] * count), **keywords)
        except TypeError as exc:
            extra = {"hess_dir": ", v", "hvp": ", v", "hvp_dir": ", v, u"}
            if keywords:
                extra = {name: extra.get(name, "") + ", start=s (hess_rows=True)"}
            raise OracleError(
                f"{self._where(k, name)} cannot be called with {count} arrays ({exc}); it "
                f"must take one array per level, x1, ..., x{len(self.sizes)}"
                f"{extra.get(name, '')}. (In check_derivatives, xs holds every level's "
                "variable.)",
                level=k,
            ) from None

    def _check_finite_matrix(
        self, out: Any, where: Where, xs: Sequence[Any], *, start: int | None = None
    ) -> None:
        """NaN or Inf anywhere in ``out`` shows in ``out @ probe`` (no zero in the probe).

        One matrix-vector product instead of a boolean temporary of the
        matrix's size and its reduction. With ``start``, the Hessian rows of a
        declared quadratic level: constant, so checked once per level object.
        """
        if not self.check_finite:
            return
        level = self.levels[where.level - 1] if start is not None else None
        constant_from = start if level is not None and level.quadratic else None
        if constant_from is not None and check_passed(level, constant_from, "finite", out.dtype):
            return
        self._check_finite(out @ self._probe(out.shape[1]), where, xs)
        if constant_from is not None:
            mark_check_passed(level, constant_from, "finite", out.dtype)

    def _probe(self, dim: int, which: str = "v") -> Any:
        """A fixed probe vector of length ``dim``: ``v`` in [0.5, 2.5] (never zero), ``u``
        another, independent of it. Made once per length and target (read only)."""
        key = (self.target, dim, which)
        probe = _PROBES.get(key)
        if probe is None:
            xp = self.xp
            index = xp.arange(dim, dtype=self.target.dtype, device=self.target.device)
            if which == "v":
                probe = 1.5 + xp.cos(2.0 + 1.3 * index)
            else:
                probe = xp.sin(1.0 + 0.7 * index)
            if len(_PROBES) >= 64:
                _PROBES.clear()
            _PROBES[key] = probe
        return probe

    def _check_finite(self, out: Any, where: Where, xs: Sequence[Any]) -> None:
        if self.check_finite and not all_finite(self.xp, out):
            raise NonFiniteError(
                f"{where} returned NaN or Inf at {abbreviate(xs, len(self.sizes))}; check "
                "the callable at this point, or start closer to the solution",
                level=where.level,
            )

    def _check_symmetry(self, rows: Any, k: int, where: Where, *, start: int) -> None:
        """``u^T H v = v^T H u`` on the square part of ``rows``, once per level and run
        (and not again for a level object found symmetric before).

        Two matrix-vector products instead of forming ``H - H^T``; for a
        nonsymmetric ``H`` the two sides differ except on a set of probes of
        measure zero.
        """
        level = self.levels[k - 1]
        if k in self._symmetry_checked or check_passed(level, start, "symmetry", rows.dtype):
            return
        self._symmetry_checked.add(k)
        xp = self.xp
        square = rows[:, start:]
        dim = square.shape[0]
        if dim == 0:
            return
        u, v = self._probe(dim, "u"), self._probe(dim)
        hv = square @ v
        hu = square @ u
        gap, scale = host_floats(
            xp, xp.abs(u @ hv - v @ hu), xp.linalg.vector_norm(hv) + xp.linalg.vector_norm(hu)
        )  # (norms that scale against overflow: the test must hold for any Hessian's size)
        scale *= float(dim) ** 0.5
        tol = 1e3 * machine_eps(xp, square.dtype) * max(scale, 1e-300)
        if not gap > tol:
            mark_check_passed(level, start, "symmetry", rows.dtype)
            return
        message = (
            f"{self.level_texts[k - 1]}: hess is not symmetric (|u^T H v - v^T H u| = "
            f"{gap:.3e} for probe vectors, tolerance {tol:.1e}); a Hessian is symmetric, so "
            "the callable is wrong: check it with nestopt.check_derivatives"
        )
        if self.symmetry == "warn":
            warn_user(message + "; nestopt uses its rows as given", SymmetryWarning)
            return
        raise SymmetryError(
            message + ". To use the rows as given anyway, pass symmetry='warn'", level=k
        )


# Probe vectors by (target, length, which): a few small arrays, used read only.
_PROBES: dict[tuple[Any, int, str], Any] = {}


def _finite_sum(xp: Any, a: Any) -> bool:
    return math.isfinite(float(xp.sum(a)))


def _copy(xp: Any, a: Any) -> Any:
    if type(a) is np.ndarray or is_sparse(a):
        return a.copy()
    return xp.asarray(a, copy=True)


def abbreviate(xs: Sequence[Any], n: int) -> str:
    """``(x1=[0.1, 0.2, ...], x2=[...])``: a point for messages, a few entries per level."""

    parts = []
    for k, x in enumerate(list(xs)[:n], start=1):
        try:
            values = to_numpy(x).reshape(-1)
        except Exception:  # a message must never fail
            parts.append(f"x{k}=?")
            continue
        shown = ", ".join(f"{float(v):.4g}" for v in values[:3])
        parts.append(f"x{k}=[{shown}{', ...' if values.size > 3 else ''}]")
    return "(" + ", ".join(parts) + ")"
