"""Shared fixtures: one backend fixture over the array libraries under test.

Without ``NESTOPT_TEST_BACKENDS`` every backend whose library is installed
(and, for CuPy, finds a GPU) is under test; the tests of the others are
deselected, and the header and the last lines of the run name them with the
reason. ``NESTOPT_TEST_BACKENDS`` (comma-separated, e.g. ``numpy,cupy``; each
tox environment sets it) names the backends to test: a named backend that
cannot run skips with the reason, so asking for CuPy on a machine without a
GPU says so instead of passing quietly.
"""

from __future__ import annotations

import importlib
import os

import pytest

import nestopt

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "cupy")


def _requested() -> tuple[tuple[str, ...] | None, str | None]:
    """The backends ``NESTOPT_TEST_BACKENDS`` names (None when unset), and an error if any."""
    raw = os.environ.get("NESTOPT_TEST_BACKENDS", "").strip()
    if not raw:
        return None, None
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    unknown = [name for name in names if name not in ALL_BACKENDS]
    if unknown:
        return tuple(n for n in names if n in ALL_BACKENDS), (
            f"NESTOPT_TEST_BACKENDS={raw!r} names unknown backends {unknown}; "
            f"expected a comma-separated list of {', '.join(ALL_BACKENDS)}"
        )
    return names, None


def _unavailable_reason(name: str) -> str | None:
    try:
        importlib.import_module(name)
    except ImportError:
        return f"{name} is not installed"
    if name == "cupy":
        try:
            nestopt.get_backend("cupy").xp
        except (ImportError, RuntimeError) as exc:
            return f"no usable GPU for CuPy: {str(exc).splitlines()[0]}"
    return None


REQUESTED, REQUEST_ERROR = _requested()
SELECTED = ALL_BACKENDS if REQUESTED is None else REQUESTED
UNAVAILABLE = {
    name: reason for name in SELECTED if (reason := _unavailable_reason(name)) is not None
}
# Backends nobody asked for and that cannot run: their tests are deselected, not skipped.
DESELECTED = set(UNAVAILABLE) if REQUESTED is None else set()


def _backend_params() -> list:
    params = []
    for name in SELECTED:
        marks = [pytest.mark.gpu] if name == "cupy" else []
        if name in UNAVAILABLE and name not in DESELECTED:
            marks.append(pytest.mark.skip(reason=UNAVAILABLE[name]))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=_backend_params())
def backend_name(request: pytest.FixtureRequest) -> str:
    """Name of a backend under test; the backend is in force for the test."""
    with nestopt.backend(request.param):
        yield request.param


@pytest.fixture
def xp(backend_name: str):
    """The array namespace of the backend under test."""
    return nestopt.get_backend(backend_name).xp


def _backend_lines() -> list[str]:
    running = [name for name in SELECTED if name not in UNAVAILABLE]
    source = "all installed" if REQUESTED is None else "from NESTOPT_TEST_BACKENDS"
    lines = [f"nestopt backends under test ({source}): {', '.join(running) or 'none'}"]
    if UNAVAILABLE:
        what = "deselected" if REQUESTED is None else "skipped"
        reasons = "; ".join(f"{name}: {reason}" for name, reason in UNAVAILABLE.items())
        lines.append(f"nestopt backends {what}: {reasons}")
    if REQUESTED is None and UNAVAILABLE:
        lines.append(
            "(name them in NESTOPT_TEST_BACKENDS, e.g. NESTOPT_TEST_BACKENDS=cupy, "
            "to run or skip them explicitly)"
        )
    return lines


def pytest_configure(config: pytest.Config) -> None:
    if REQUEST_ERROR:
        raise pytest.UsageError(REQUEST_ERROR)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return _backend_lines()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not DESELECTED:
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("backend_name") if callspec is not None else None
        (drop if name in DESELECTED else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    # The header scrolls away (and -q hides it): repeat the backends at the end, and say in
    # one line why the skipped tests were skipped (optional libraries such as jax, torch).
    for line in _backend_lines()[:2]:
        terminalreporter.write_line(line)
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        summary = "; ".join(f"{reason} ({count})" for reason, count in sorted(reasons.items()))
        terminalreporter.write_line(f"skipped tests: {summary}")
