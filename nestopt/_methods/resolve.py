"""How a hypergradient is computed is a value: a method object, or a string that builds one.

A method is a frozen settings object with ``bind(problem, oracles)``, which
returns an engine for one run with three verbs: ``respond(xs)`` (solve or
unroll the lower levels at ``x_1 = xs[0]``), ``hypergradient(state)`` and
``predict(state, x1)`` (where the lower levels should start when ``x_1``
moves). `best_response`, `hypergradient`, `solve` and
`check_hypergradient` all take ``method=`` and the same keywords.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .implicit import Implicit
from .unrolled import Unrolled

__all__ = ["Method", "resolve_method", "METHOD_NAMES", "IMPLICIT_KEYWORDS", "UNROLLED_KEYWORDS"]

METHOD_NAMES = ("implicit", "itd")
IMPLICIT_KEYWORDS = (
    "curvature",
    "linear_solver",
    "fd_step",
    "level_options",
    "predict",
    "newton_curvature",
)
UNROLLED_KEYWORDS = ("steps", "step_size")


@runtime_checkable
class Method(Protocol):
    """What `solve` and friends need of a method object."""

    name: str

    def bind(self, problem: Any, oracles: Any, *, deadline: float | None = None) -> Any: ...


def resolve_method(method: Any, **keywords: Any) -> Any:
    """The method object for ``method`` (a name or an object) and the per-call keywords.

    Keywords left at ``None`` were not given. Keywords that do not apply to
    the method are refused, never ignored; with a method object, method
    keywords belong in the object.
    """
    given = {name: value for name, value in keywords.items() if value is not None}
    unknown = sorted(set(given) - set(IMPLICIT_KEYWORDS) - set(UNROLLED_KEYWORDS))
    if unknown:  # a programming error inside nestopt, not a user mistake
        raise TypeError(f"unexpected method keyword(s): {unknown}")
    if isinstance(method, (Implicit, Unrolled)) or (
        not isinstance(method, str) and isinstance(method, Method)
    ):
        if given:
            raise ValueError(
                f"{', '.join(sorted(given))} given beside the method object "
                f"{type(method).__name__}(...); put them in the object (e.g. "
                f"{type(method).__name__}({next(iter(sorted(given)))}=...)), or use the "
                "string form method='implicit' / 'itd' with keywords"
            )
        return method
    if not isinstance(method, str) or method not in METHOD_NAMES:
        raise ValueError(
            f"unknown method {method!r}; choose one of: {', '.join(METHOD_NAMES)}, or pass "
            "a method object (nestopt.Implicit(...), nestopt.Unrolled(...))"
        )
    if method == "implicit":
        misplaced = sorted(set(given) & set(UNROLLED_KEYWORDS))
        if misplaced:
            raise ValueError(
                f"{' and '.join(misplaced)} apply to method='itd' only (the implicit method "
                "solves the lower levels by Newton's method)"
            )
        return Implicit(**given)
    misplaced = sorted(set(given) & set(IMPLICIT_KEYWORDS))
    if misplaced:
        raise ValueError(
            f"{', '.join(misplaced)} apply to the implicit method only; method='itd' takes "
            "steps and step_size"
        )
    return Unrolled(**given)
