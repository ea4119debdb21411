"""Call the user's oracles and check what comes back, once, where it enters.

Every array a user callable returns is checked for type, backend, device,
dtype, shape/layout and finiteness before the core touches it, and turned
into one flat layout: gradients ``(D,)``, Hessians ``(D, D)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import array_api_compat as compat

from ._errors import NonFiniteError, OracleError, OracleTypeError, SymmetryWarning, warn_user
from ._linalg import host_floats as _floats
from ._problem import Problem

__all__ = ["Oracles"]

_CALLABLES = ("value", "grad", "hess", "hess_dir")

# Levels whose Hessian symmetry was checked, per problem: once is enough, and the
# check would otherwise repeat on every call (each call builds new Oracles).
_SYMMETRY_CHECKED: weakref.WeakKeyDictionary[Problem, set[int]] = weakref.WeakKeyDictionary()


class Oracles:
    """The user's callables for one run, on one backend, device and dtype.

    Counts every call per level (``counts['grad'][k - 1]`` and so on).
    """

    def __init__(
        self, problem: Problem, xp: Any, dtype: Any, device: Any, *, check_finite: bool = True
    ) -> None:
        self.problem = problem
        self.xp = xp
        self.dtype = dtype
        self.device = device
        self.check_finite = check_finite
        self.counts = {name: [0] * problem.n for name in _CALLABLES}
        try:
            self._symmetry_checked = _SYMMETRY_CHECKED.setdefault(problem, set())
        except TypeError:  # a stand-in layout (check_derivatives) is not weak-referable
            self._symmetry_checked = set()

    # -- public calls -------------------------------------------------------

    def value(self, k: int, xs: Sequence[Any]) -> Any:
        fun = self.problem.levels[k - 1].value
        if fun is None:
            raise ValueError(
                f"{self.problem.describe(k)} has no value callable, which this "
                "computation needs; pass Level(..., value=...)"
            )
        self.counts["value"][k - 1] += 1
        out = fun(*xs)
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            out = self.xp.asarray(out, dtype=self.dtype, device=self.device)
        out = self._check_array(out, k, "value")
        if out.ndim != 0 and out.shape != (1,):
            raise OracleError(
                f"{self._where(k, 'value')} returned shape {tuple(out.shape)}; "
                "expected a scalar (shape ())",
                level=k,
            )
        out = self.xp.reshape(out, ())
        self._check_finite(out, k, "value")
        return out

    def grad(self, k: int, xs: Sequence[Any]) -> Any:
        self.counts["grad"][k - 1] += 1
        out = self.problem.levels[k - 1].grad(*xs)
        flat = self._vector_layout(out, k, "grad")
        self._check_finite(flat, k, "grad")
        return flat

    def hess(self, k: int, xs: Sequence[Any]) -> Any:
        self.counts["hess"][k - 1] += 1
        out = self.problem.levels[k - 1].hess(*xs)
        full = self._matrix_layout(out, k, "hess")
        self._check_finite_matrix(full, k, "hess")
        if k not in self._symmetry_checked:
            self._symmetry_checked.add(k)
            self._warn_if_asymmetric(full, k)
        return full

    def has_hess_dir(self, k: int) -> bool:
        return self.problem.levels[k - 1].hess_dir is not None

    def hess_dir(self, k: int, xs: Sequence[Any], v: Any) -> Any:
        self.counts["hess_dir"][k - 1] += 1
        out = self.problem.levels[k - 1].hess_dir(*xs, v)
        full = self._matrix_layout(out, k, "hess_dir")
        self._check_finite_matrix(full, k, "hess_dir")
        return full

    # -- checks -------------------------------------------------------------

    def _where(self, k: int, what: str) -> str:
        if "'" in what:  # "grad' block 2": the callable, then which block of its output
            name, part = what.split("'", 1)
            return f"{self.problem.describe(k)}, callable {name!r}{part}"
        return f"{self.problem.describe(k)}, callable {what!r}"

    def _check_array(self, out: Any, k: int, what: str, part: str = "") -> Any:
        """Type, backend, device and dtype of one returned array (``part``: which block)."""
        xp = self.xp
        what = f"{what}'{part}" if part else what
        if not compat.is_array_api_obj(out) or isinstance(out, (list, tuple)):
            raise OracleTypeError(
                f"{self._where(k, what)} returned {type(out).__name__}; expected an "
                f"array of the active backend ({_namespace_name(xp)})",
                level=k,
            )
        try:
            got = compat.array_namespace(out)
        except TypeError:
            got = None
        if got is not xp:
            raise OracleTypeError(
                f"{self._where(k, what)} returned an array of {_namespace_name(got)}; "
                f"the problem is being solved on {_namespace_name(xp)}. Write the "
                "callable with the namespace of its inputs "
                "(xp = array_api_compat.array_namespace(x1)) or switch backends",
                level=k,
            )
        if compat.device(out) != self.device:
            raise OracleTypeError(
                f"{self._where(k, what)} returned an array on device "
                f"{compat.device(out)!r}; the inputs live on {self.device!r}. Create "
                "arrays with device=array_api_compat.device(x1); nestopt never copies "
                "across devices behind your back",
                level=k,
            )
        if out.dtype != self.dtype:
            raise OracleTypeError(
                f"{self._where(k, what)} returned dtype {out.dtype}; expected "
                f"{self.dtype} (the dtype of the starting point)",
                level=k,
            )
        return out

    def _check_finite_matrix(self, out: Any, k: int, what: str) -> None:
        """NaN or Inf anywhere in ``out`` shows in ``out @ probe`` (no zero in the probe).

        One matrix-vector product instead of a ``D x D`` boolean temporary and
        its reduction: a third of the per-call cost of checking a Hessian.
        """
        if self.check_finite:
            self._check_finite(out @ self._probe(out.shape[1]), k, what)

    def _probe(self, dim: int) -> Any:
        xp = self.xp
        index = xp.arange(dim, dtype=self.dtype, device=self.device)
        return 1.5 + xp.cos(2.0 + 1.3 * index)  # in [0.5, 2.5]: never zero

    def _check_finite(self, out: Any, k: int, what: str) -> None:
        if self.check_finite and not bool(self.xp.all(self.xp.isfinite(out))):
            raise NonFiniteError(
                f"{self._where(k, what)} returned NaN or Inf; check the callable at "
                "this point, or start closer to the solution",
                level=k,
            )

    def _vector_layout(self, out: Any, k: int, what: str) -> Any:
        problem, xp = self.problem, self.xp
        expected = (
            f"expected an array of shape ({problem.dim},) or a tuple of {problem.n} "
            f"arrays of shapes {tuple((d,) for d in problem.sizes)}"
        )
        if isinstance(out, (list, tuple)):
            if len(out) != problem.n:
                raise OracleError(
                    f"{self._where(k, what)} returned a sequence of length {len(out)}; " + expected,
                    level=k,
                )
            parts = []
            for j, (part, size) in enumerate(zip(out, problem.sizes), start=1):
                part = self._check_array(part, k, what, f" block {j}")
                if tuple(part.shape) != (size,):
                    raise OracleError(
                        f"{self._where(k, what)}: block {j} has shape "
                        f"{tuple(part.shape)}; " + expected,
                        level=k,
                    )
                parts.append(part)
            return xp.concat(parts)
        out = self._check_array(out, k, what)
        if tuple(out.shape) != (problem.dim,):
            raise OracleError(
                f"{self._where(k, what)} returned shape {tuple(out.shape)}; " + expected,
                level=k,
            )
        return out

    def _matrix_layout(self, out: Any, k: int, what: str) -> Any:
        problem, xp = self.problem, self.xp
        dim, n = problem.dim, problem.n
        expected = (
            f"expected a ({dim}, {dim}) array or a {n} x {n} nested sequence of blocks "
            f"(block (i, j) of shape (d_i, d_j) with d = {problem.sizes}, None for zero)"
        )
        if isinstance(out, (list, tuple)):
            if len(out) != n or any(
                not isinstance(row, (list, tuple)) or len(row) != n for row in out
            ):
                raise OracleError(
                    f"{self._where(k, what)} returned a nested sequence that is not "
                    f"{n} x {n}; " + expected,
                    level=k,
                )
            rows = []
            for i, row in enumerate(out):
                blocks = []
                for j, block in enumerate(row):
                    shape = (problem.sizes[i], problem.sizes[j])
                    if block is None:
                        blocks.append(xp.zeros(shape, dtype=self.dtype, device=self.device))
                        continue
                    block = self._check_array(block, k, what, f" block ({i + 1}, {j + 1})")
                    if tuple(block.shape) != shape:
                        raise OracleError(
                            f"{self._where(k, what)}: block ({i + 1}, {j + 1}) has shape "
                            f"{tuple(block.shape)}, expected {shape}",
                            level=k,
                        )
                    blocks.append(block)
                rows.append(xp.concat(blocks, axis=1))
            return xp.concat(rows, axis=0)
        out = self._check_array(out, k, what)
        if tuple(out.shape) != (dim, dim):
            raise OracleError(
                f"{self._where(k, what)} returned shape {tuple(out.shape)}; " + expected,
                level=k,
            )
        return out

    def _warn_if_asymmetric(self, full: Any, k: int) -> None:
        """Warn when ``u^T H v != v^T H u`` for fixed pseudo-random probes.

        Two matrix-vector products instead of forming ``H - H^T`` (three
        ``D x D`` temporaries on every call); for a nonsymmetric ``H`` the two
        sides differ except on a set of probes of measure zero.
        """
        xp = self.xp
        dim = full.shape[0]
        index = xp.arange(dim, dtype=full.dtype, device=self.device)
        u = xp.sin(1.0 + 0.7 * index)
        v = self._probe(dim)
        hv = full @ v
        hu = full @ u
        gap, scale = _floats(
            xp, xp.abs(u @ hv - v @ hu), xp.linalg.vector_norm(hv) + xp.linalg.vector_norm(hu)
        )
        scale *= float(dim) ** 0.5
        tol = 1e3 * float(xp.finfo(self.dtype).eps) * max(scale, 1e-300)
        if gap > tol:
            warn_user(
                f"{self.problem.describe(k)}: hess is not symmetric (|u^T H v - v^T H u| = "
                f"{gap:.3e} for probe vectors, tolerance {tol:.1e}); nestopt uses its rows "
                "as given, so check the callable",
                SymmetryWarning,
            )


def _namespace_name(xp: Any) -> str:
    if xp is None:
        return "an unknown library"
    name = getattr(xp, "__name__", repr(xp))
    return name.replace("array_api_compat.", "")
