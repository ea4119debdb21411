"""Shared fixtures: one backend fixture over every array library present.

``NESTOPT_TEST_BACKENDS`` (comma-separated, e.g. ``numpy,cupy``) restricts the
backends under test; each tox environment sets it. A backend whose library is
missing, or CuPy without a GPU, skips with the reason.
"""

from __future__ import annotations

import importlib
import os

import pytest

import nestopt

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "cupy")


def _selected() -> tuple[str, ...]:
    raw = os.environ.get("NESTOPT_TEST_BACKENDS", "").strip()
    if not raw:
        return ALL_BACKENDS
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _skip_reason(name: str) -> str | None:
    module = {"array_api_strict": "array_api_strict"}.get(name, name)
    try:
        importlib.import_module(module)
    except ImportError:
        return f"{name} is not installed"
    if name == "cupy":
        try:
            nestopt.get_backend("cupy").xp
        except (ImportError, RuntimeError) as exc:
            return f"no usable GPU for CuPy: {exc}"
    return None


def _backend_params() -> list:
    params = []
    for name in _selected():
        marks = [pytest.mark.gpu] if name == "cupy" else []
        reason = _skip_reason(name)
        if reason:
            marks.append(pytest.mark.skip(reason=reason))
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
