"""Smooth functions of a few named scalars, written as sums of terms, with exact derivatives.

The test-problem catalogues (`bolib`, `constrained_trilevel`) write every
objective and constraint as a sum of three kinds of term of the flat vector
``w`` of all variables:

- ``power(p, shift, scale, **coef)``: ``scale * (sum(coef[v] * v) + shift) ** p``,
  an integer ``p >= 1``;
- ``exponential(shift, scale, **coef)``: ``scale * exp(sum(coef[v] * v) + shift)``;
- ``monomial(scale, **powers)``: ``scale * prod(v ** powers[v])`` (a constant
  without powers).

`compile_terms` turns such a sum into value, gradient and Hessian callables on
the arrays of one backend; the derivatives are exact term by term.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Compiled", "compile_terms", "exponential", "monomial", "namespace", "power", "square"]


@dataclass(frozen=True)
class _Ridge:
    kind: str  # "power" or "exp"
    coef: dict[str, float]
    shift: float
    scale: float
    p: int = 1


@dataclass(frozen=True)
class _Monomial:
    scale: float
    powers: dict[str, int] = field(default_factory=dict)


def power(p: int, shift: float = 0.0, scale: float = 1.0, **coef: float) -> _Ridge:
    """``scale * (sum(coef[v] * v) + shift) ** p`` for an integer ``p >= 1``."""
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ValueError(f"power needs an integer exponent p >= 1, got {p!r}")
    return _Ridge("power", dict(coef), float(shift), float(scale), p)


def square(shift: float = 0.0, scale: float = 1.0, **coef: float) -> _Ridge:
    """``scale * (sum(coef[v] * v) + shift) ** 2``."""
    return power(2, shift, scale, **coef)


def exponential(shift: float = 0.0, scale: float = 1.0, **coef: float) -> _Ridge:
    """``scale * exp(sum(coef[v] * v) + shift)``."""
    return _Ridge("exp", dict(coef), float(shift), float(scale))


def monomial(scale: float, **powers: int) -> _Monomial:
    """``scale * prod(v ** powers[v])``; a constant when no powers are given."""
    return _Monomial(float(scale), {name: int(k) for name, k in powers.items() if k})


@dataclass(frozen=True)
class Compiled:
    """Value, gradient and Hessian of a sum of terms, on one backend.

    Attributes
    ----------
    value, grad, hess : callable
        Of the flat ``(D,)`` vector of all variables: a 0-d array, a ``(D,)``
        array and a ``(D, D)`` array.
    degree : int or None
        Polynomial degree, ``None`` when an exponential term is present.
    """

    value: Callable[[Any], Any]
    grad: Callable[[Any], Any]
    hess: Callable[[Any], Any]
    degree: int | None


def _degree(terms: Sequence[Any]) -> int | None:
    degree = 0
    for term in terms:
        if isinstance(term, _Monomial):
            degree = max(degree, sum(term.powers.values()))
        elif term.kind == "power":
            degree = max(degree, term.p if any(term.coef.values()) else 0)
        else:
            return None
    return degree


# One kind of term compiled: its value, gradient and Hessian callables of ``w``.
_Part = tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], Any]]


def _rows(terms: Sequence[_Ridge], index: dict[str, int], dim: int) -> np.ndarray:
    A = np.zeros((len(terms), dim))
    for r, term in enumerate(terms):
        for name, value in term.coef.items():
            A[r, index[name]] += value
    return A


def compile_terms(
    terms: Sequence[Any], names: Sequence[str], on_backend: Callable[[np.ndarray], Any]
) -> Compiled:
    """Compile a sum of terms in the variables ``names`` (in that order).

    Parameters
    ----------
    terms : sequence
        Terms made by `power`, `square`, `exponential` and `monomial`.
    names : sequence of str
        The variables, in the order of the flat vector ``w``.
    on_backend : callable
        Turns a NumPy float array into a constant of the backend (and device).

    Returns
    -------
    Compiled
    """
    index = {name: i for i, name in enumerate(names)}
    for term in terms:
        used = term.powers if isinstance(term, _Monomial) else term.coef
        unknown = sorted(set(used) - set(index))
        if unknown:
            raise ValueError(f"term {term!r} uses {unknown}, not among the variables {list(names)}")
    dim = len(names)
    parts: list[_Part] = []
    powers = [t for t in terms if isinstance(t, _Ridge) and t.kind == "power"]
    if powers:
        parts.append(_power_part(powers, index, dim, on_backend))
    exps = [t for t in terms if isinstance(t, _Ridge) and t.kind == "exp"]
    if exps:
        parts.append(_exp_part(exps, index, dim, on_backend))
    monos = [t for t in terms if isinstance(t, _Monomial)]
    if monos:
        parts.append(_monomial_part(monos, index, dim, on_backend))
    zero_row = on_backend(np.zeros(dim))
    zero_matrix = on_backend(np.zeros((dim, dim)))

    def value(w: Any) -> Any:
        total = zero_row[0] * 0.0
        for part in parts:
            total = total + part[0](w)
        return total

    def grad(w: Any) -> Any:
        total = zero_row
        for part in parts:
            total = total + part[1](w)
        return total

    def hess(w: Any) -> Any:
        total = zero_matrix
        for part in parts:
            total = total + part[2](w)
        return total

    return Compiled(value, grad, hess, _degree(terms))


_NAMESPACES: dict[type, Any] = {}


def namespace(*arrays: Any) -> Any:
    """The arrays' namespace, looked up once per array type (these callables run in every
    inner iteration, and ``array_namespace`` costs more than a small problem's arithmetic)."""
    kind = type(arrays[0])
    xp = _NAMESPACES.get(kind)
    if xp is None or any(type(a) is not kind for a in arrays[1:]):
        import array_api_compat

        xp = array_api_compat.array_namespace(*arrays)
        if all(type(a) is kind for a in arrays[1:]):
            _NAMESPACES[kind] = xp
    return xp


def _power_part(
    terms: Sequence[_Ridge],
    index: dict[str, int],
    dim: int,
    on_backend: Callable[[np.ndarray], Any],
) -> _Part:
    A_np = _rows(terms, index, dim)
    p_np = np.array([float(t.p) for t in terms])
    A, At = on_backend(A_np), on_backend(A_np.T.copy())
    b = on_backend(np.array([t.shift for t in terms]))
    s = on_backend(np.array([t.scale for t in terms]))
    p = on_backend(p_np)
    # Exponents of the first and second derivatives, clipped at 0 so that a linear or
    # quadratic term never evaluates u ** -1 (its coefficient p or p (p - 1) is 0 there).
    p1, c1 = on_backend(np.maximum(p_np - 1.0, 0.0)), on_backend(p_np)
    p2, c2 = on_backend(np.maximum(p_np - 2.0, 0.0)), on_backend(p_np * (p_np - 1.0))

    def value(w: Any) -> Any:
        xp = namespace(w)
        return xp.sum(s * xp.pow(A @ w + b, p))

    def grad(w: Any) -> Any:
        xp = namespace(w)
        return At @ (s * c1 * xp.pow(A @ w + b, p1))

    def hess(w: Any) -> Any:
        xp = namespace(w)
        weights = s * c2 * xp.pow(A @ w + b, p2)
        return At @ (weights[:, None] * A)

    return value, grad, hess


def _exp_part(
    terms: Sequence[_Ridge],
    index: dict[str, int],
    dim: int,
    on_backend: Callable[[np.ndarray], Any],
) -> _Part:
    A_np = _rows(terms, index, dim)
    A, At = on_backend(A_np), on_backend(A_np.T.copy())
    b = on_backend(np.array([t.shift for t in terms]))
    s = on_backend(np.array([t.scale for t in terms]))

    def value(w: Any) -> Any:
        xp = namespace(w)
        return xp.sum(s * xp.exp(A @ w + b))

    def grad(w: Any) -> Any:
        xp = namespace(w)
        return At @ (s * xp.exp(A @ w + b))

    def hess(w: Any) -> Any:
        xp = namespace(w)
        weights = s * xp.exp(A @ w + b)
        return At @ (weights[:, None] * A)

    return value, grad, hess


def _monomial_part(
    terms: Sequence[_Monomial],
    index: dict[str, int],
    dim: int,
    on_backend: Callable[[np.ndarray], Any],
) -> _Part:
    E_np = np.zeros((len(terms), dim))
    for m, term in enumerate(terms):
        for name, k in term.powers.items():
            E_np[m, index[name]] = k
    E = on_backend(E_np)
    s = on_backend(np.array([t.scale for t in terms]))
    E1, c1 = on_backend(np.maximum(E_np - 1.0, 0.0)), E
    E2, c2 = on_backend(np.maximum(E_np - 2.0, 0.0)), on_backend(E_np * (E_np - 1.0))
    # Which factor of each monomial a derivative replaces, for every entry at once:
    # first derivatives (i, k): k == i; second (i, j, k): D2 where k == i == j, D1 where
    # k is i or j (i != j). One broadcast product per derivative, not one per entry.
    eye = np.eye(dim, dtype=bool)
    first = on_backend(eye[:, None, :])
    diagonal = eye[:, :, None] & eye[:, None, :] & eye[None, :, :]
    offdiagonal = (eye[:, None, :] | eye[None, :, :]) & ~eye[:, :, None]
    second, mixed = on_backend(diagonal[:, :, None, :]), on_backend(offdiagonal[:, :, None, :])

    def factors(w: Any) -> tuple[Any, Any, Any, Any]:
        xp = namespace(w)
        row = w[None, :]
        return xp, xp.pow(row, E), c1 * xp.pow(row, E1), c2 * xp.pow(row, E2)

    def value(w: Any) -> Any:
        xp, P, _, _ = factors(w)
        return xp.sum(s * xp.prod(P, axis=1))

    def grad(w: Any) -> Any:
        # d/dw_i prod_k w_k^E_k: factor i replaced by its derivative.
        xp, P, D1, _ = factors(w)
        return xp.sum(s * xp.prod(xp.where(first, D1, P), axis=-1), axis=-1)

    def hess(w: Any) -> Any:
        xp, P, D1, D2 = factors(w)
        swapped = xp.where(second, D2, xp.where(mixed, D1, P))
        return xp.sum(s * xp.prod(swapped, axis=-1), axis=-1)

    return value, grad, hess
