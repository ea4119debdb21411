"""The derivatives an adapter builds, written once for JAX and for torch.func.

Both libraries offer the same composable transforms (``grad``, ``jvp``,
``hessian``, ``jacrev``, ``vmap``) with the same calling conventions, so every
oracle is written once here against a small table of them. The functions here
take and return arrays of the autodiff library; converting from and to the
backend nestopt solves on is the job of each library's module.

Every oracle flattens the per-level arguments into one vector ``z`` of length
``D`` and differentiates ``f(z) = fun(*split(z))``: nestopt's ``v`` and ``u``
are flat, and one flat gradient or Hessian is one output to convert back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import Level, NonlinearConstraint

__all__ = [
    "HESSIAN_MODES",
    "Transforms",
    "build_constraint",
    "build_level",
    "check_fun",
    "constraint_derivatives",
    "describe",
    "level_derivatives",
    "oracles",
]

# Which Level callables each ``hessian=`` mode builds.
HESSIAN_MODES = {
    "dense": ("value", "grad", "hess", "hess_dir", "hess_rows", "hvp", "hvp_dir"),
    "hvp": ("value", "grad", "hvp", "hvp_dir"),
}


@dataclass(frozen=True)
class Transforms:
    """One autodiff library: its transforms and the three array helpers the oracles need."""

    grad: Callable[..., Any]
    jvp: Callable[..., Any]
    hessian: Callable[..., Any]
    jacrev: Callable[..., Any]
    vmap: Callable[..., Any]
    concat: Callable[[Sequence[Any]], Any]
    split: Callable[[Any, Sequence[int]], Sequence[Any]]
    eye: Callable[[int, Any], Any]  # eye(n, like): identity with like's dtype and device


def oracles(hessian: str) -> tuple[str, ...]:
    """The Level callables of a ``hessian=`` mode; an unknown mode is an error listing the known."""
    try:
        return HESSIAN_MODES[hessian]
    except (KeyError, TypeError):
        raise ValueError(
            f"hessian={hessian!r} is not a known mode; use 'dense' (Hessian matrices: hess, "
            "hess_dir, hess_rows, and the products too) or 'hvp' (matrix-free: "
            "Hessian-vector products only)"
        ) from None


def describe(adapter: str, name: str | None) -> str:
    """How messages name an adapter's product: ``jax_level('lower')``."""
    return f"{adapter}({name!r})" if name else adapter


def check_fun(fun: Any, label: str) -> None:
    """``fun`` must be callable; say so where the adapter is called, not at the first call."""
    if not callable(fun):
        raise TypeError(
            f"{label}: fun must be a function of the levels' variables, fun(x1, ..., xn); "
            f"got {type(fun).__name__}"
        )


def _flat(
    t: Transforms, fun: Callable[..., Any], xs: Sequence[Any], check: Callable[[Any], Any]
) -> Any:
    """``z = concat(xs)`` and ``f(z) = fun(*split(z))`` with its output checked."""
    sizes = [int(x.shape[0]) for x in xs]

    def f(z: Any) -> Any:
        return check(fun(*t.split(z, sizes)))

    return t.concat(xs), f


def level_derivatives(t: Transforms, fun: Callable[..., Any], label: str) -> dict[str, Any]:
    """Every Level callable of a scalar ``fun(x1, ..., xn)``, on the library's arrays.

    ``hess_rows`` takes ``start`` first (``hess_rows(start, *xs)``) so a
    compiler can treat it as static; the caller restores nestopt's order.
    """

    def scalar(out: Any) -> Any:
        shape = getattr(out, "shape", None)
        if shape is None or tuple(shape) != ():
            got = f"shape {tuple(shape)}" if shape is not None else type(out).__name__
            raise TypeError(
                f"{label}: fun returned {got}; expected a scalar array (shape ()), the "
                "objective's value. Reduce it (sum, mean) or, for a vector of constraint "
                "values, use the matching *_constraint adapter"
            )
        return out

    def hvp_at(f: Callable[[Any], Any], z: Any, v: Any) -> Any:
        # Forward-over-reverse: one JVP of the gradient, about the cost of two gradients.
        return t.jvp(t.grad(f), (z,), (v,))[1]

    def value(*xs: Any) -> Any:
        z, f = _flat(t, fun, xs, scalar)
        return f(z)

    def grad(*xs: Any) -> Any:
        z, f = _flat(t, fun, xs, scalar)
        return t.grad(f)(z)

    def hess(*xs: Any) -> Any:
        z, f = _flat(t, fun, xs, scalar)
        return t.hessian(f)(z)

    def hess_dir(*args: Any) -> Any:
        *xs, v = args
        z, f = _flat(t, fun, xs, scalar)
        return t.jvp(t.hessian(f), (z,), (v,))[1]

    def hess_rows(start: int, *xs: Any) -> Any:
        # Row j of a symmetric Hessian is H e_j: D - start products instead of D.
        z, f = _flat(t, fun, xs, scalar)
        basis = t.eye(z.shape[0], z)[start:]
        return t.vmap(lambda e: hvp_at(f, z, e))(basis)

    def hvp(*args: Any) -> Any:
        *xs, v = args
        z, f = _flat(t, fun, xs, scalar)
        return hvp_at(f, z, v)

    def hvp_dir(*args: Any) -> Any:
        *xs, v, u = args
        z, f = _flat(t, fun, xs, scalar)
        return t.jvp(lambda y: hvp_at(f, y, v), (z,), (u,))[1]

    return {
        "value": value,
        "grad": grad,
        "hess": hess,
        "hess_dir": hess_dir,
        "hess_rows": hess_rows,
        "hvp": hvp,
        "hvp_dir": hvp_dir,
    }


def constraint_derivatives(t: Transforms, fun: Callable[..., Any], label: str) -> dict[str, Any]:
    """``fun``, ``jac``, ``hess`` and ``hess_dir`` of constraints ``fun(x1, ..., xn)``."""

    def vector(out: Any) -> Any:
        shape = getattr(out, "shape", None)
        if shape is None or len(shape) > 1:
            got = f"shape {tuple(shape)}" if shape is not None else type(out).__name__
            raise TypeError(
                f"{label}: fun returned {got}; expected the constraint values as a "
                "1-d array of shape (m,) (a scalar counts as m = 1)"
            )
        return out[None] if len(shape) == 0 else out

    def weighted(c: Callable[[Any], Any], v: Any) -> Callable[[Any], Any]:
        return lambda y: (v * c(y)).sum()

    def values(*xs: Any) -> Any:
        z, c = _flat(t, fun, xs, vector)
        return c(z)

    def jac(*xs: Any) -> Any:
        # Reverse mode: one pass per constraint, the cheap side when m < D.
        z, c = _flat(t, fun, xs, vector)
        return t.jacrev(c)(z)

    def hess(*args: Any) -> Any:
        *xs, v = args
        z, c = _flat(t, fun, xs, vector)
        return t.hessian(weighted(c, v))(z)

    def hess_dir(*args: Any) -> Any:
        *xs, v, u = args
        z, c = _flat(t, fun, xs, vector)
        return t.jvp(t.hessian(weighted(c, v)), (z,), (u,))[1]

    return {"fun": values, "jac": jac, "hess": hess, "hess_dir": hess_dir}


def row_blocks(callables: dict[str, Any], rows: Callable[..., Any]) -> dict[str, Any]:
    """``hess`` and ``hess_dir`` that take ``start=`` (``Level(hess_rows=True)``).

    ``hess(*xs, start=s)`` computes rows ``s:D`` only, as ``D - s`` Hessian-
    vector products; ``hess_dir`` computes the full derivative and returns
    its rows (its cost does not shrink with fewer rows).
    """
    full_hess, full_dir = callables["hess"], callables["hess_dir"]

    def hess(*xs: Any, start: int = 0) -> Any:
        return rows(*xs, start) if start else full_hess(*xs)

    def hess_dir(*args: Any, start: int = 0) -> Any:
        out = full_dir(*args)
        return out[start:, :] if start else out

    hess.__name__ = hess.__qualname__ = "hess"
    hess_dir.__name__ = hess_dir.__qualname__ = "hess_dir"
    return {"hess": hess, "hess_dir": hess_dir}


def build_level(bridge: Any, fun: Callable[..., Any], label: str, kinds: tuple[str, ...],
                **fields: Any) -> Level:  # fmt: skip
    """A `Level` of the callables ``kinds`` of ``fun``, converted by the library's ``bridge``
    (``transforms``, ``wrap``, ``wrap_rows``); ``fields`` are the Level's other fields."""
    built = level_derivatives(bridge.transforms, fun, label)
    callables = {kind: bridge.wrap(built[kind]) for kind in kinds if kind != "hess_rows"}
    if "hess_rows" in kinds:
        callables.update(row_blocks(callables, bridge.wrap_rows(built["hess_rows"])))
    return Level(**callables, hess_rows="hess_rows" in kinds, **fields)


def build_constraint(bridge: Any, fun: Callable[..., Any], lb: Any, ub: Any, label: str,
                     name: str | None) -> NonlinearConstraint:  # fmt: skip
    """A `NonlinearConstraint` ``lb <= fun <= ub`` with derivatives converted by ``bridge``."""
    built = constraint_derivatives(bridge.transforms, fun, label)
    return NonlinearConstraint(
        bridge.wrap(built["fun"]),
        lb,
        ub,
        jac=bridge.wrap(built["jac"]),
        hess=bridge.wrap(built["hess"]),
        hess_dir=bridge.wrap(built["hess_dir"]),
        name=name,
    )
