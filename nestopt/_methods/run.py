"""One run: the problem's points on a backend, checked oracles, and a bound method."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._backend.names import namespace_name
from .._backend.points import prepare_points
from .._levels.oracles import SYMMETRY_POLICIES, Oracles
from .._levels.outputs import Target
from .._levels.problem import Problem
from .options import check_choice
from .resolve import IMPLICIT_KEYWORDS, UNROLLED_KEYWORDS, resolve_method

__all__ = ["Run", "start_run", "split_keywords", "METHOD_KEYWORDS", "RUN_KEYWORDS"]

METHOD_KEYWORDS = IMPLICIT_KEYWORDS + UNROLLED_KEYWORDS
RUN_KEYWORDS = ("backend", "device", "check_finite", "symmetry")


@dataclass
class Run:
    """Everything one call of `best_response`, `hypergradient` or `solve` works with."""

    problem: Problem
    xp: Any
    device: Any
    xs: tuple[Any, ...]
    oracles: Oracles
    method: Any
    engine: Any

    @property
    def backend(self) -> str:
        return namespace_name(self.xp)

    def nfev(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(counts) for name, counts in self.oracles.counts.items()}


def start_run(
    problem: Problem,
    xs: Sequence[Any],
    method: Any,
    method_keywords: dict[str, Any],
    *,
    backend: Any = None,
    device: Any = None,
    check_finite: bool = True,
    symmetry: str = "raise",
    deadline: float | None = None,
) -> Run:
    """Check the arguments, copy the points onto the backend, bind the method."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a nestopt.Problem, got {type(problem).__name__}")
    chosen = _resolve(method, method_keywords)
    check_choice("symmetry", symmetry, SYMMETRY_POLICIES)
    if not isinstance(check_finite, bool):
        raise TypeError(f"check_finite must be True or False, got {check_finite!r}")
    xp, dev, points = prepare_points(problem, xs, backend, device)
    oracles = Oracles.for_problem(
        problem,
        Target(xp, dev, points[0].dtype),
        check_finite=check_finite,
        symmetry=symmetry,
    )
    engine = chosen.bind(problem, oracles, deadline=deadline)
    return Run(problem, xp, dev, points, oracles, chosen, engine)


# Methods built from a name and keywords, by those (with their types: True and 1 are
# different settings); a loop of calls with the same keywords checks them once.
_METHODS: dict[tuple[Any, ...], Any] = {}


def _resolve(method: Any, keywords: dict[str, Any]) -> Any:
    if not isinstance(method, str):
        return resolve_method(method, **keywords)
    values = tuple(keywords.values())
    key = (method, values, tuple(map(type, values)))
    try:
        chosen = _METHODS.get(key)
    except TypeError:  # an unhashable keyword (level_options as a dict)
        return resolve_method(method, **keywords)
    if chosen is None:
        chosen = resolve_method(method, **keywords)
        if len(_METHODS) >= 256:
            _METHODS.clear()
        _METHODS[key] = chosen
    return chosen


def split_keywords(keywords: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``best_response``'s keywords, split into the method's and the run's; others refused."""
    unknown = sorted(set(keywords) - set(METHOD_KEYWORDS) - set(RUN_KEYWORDS))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {', '.join(map(repr, unknown))}; the keywords "
            f"are those of nestopt.best_response: {', '.join(METHOD_KEYWORDS + RUN_KEYWORDS)}"
        )
    method = {name: keywords.get(name) for name in METHOD_KEYWORDS}
    run = {name: keywords[name] for name in RUN_KEYWORDS if name in keywords}
    return method, run
