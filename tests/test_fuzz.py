"""Fuzz what user callables return (issue 7): every bad output is caught where it enters.

A valid three-level `quad` problem (uneven sizes 2, 3, 1, so a transposed or
swapped block always has the wrong shape) is wrapped, and one callable of one
level is made to return something wrong. The contract: a nestopt error
(`OracleError` for shapes and layouts, `OracleTypeError` for types, dtypes,
backends and devices, `NonFiniteError` for NaN and Inf) whose message names
the level and the callable; never another exception, never a number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat
import array_api_strict
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nestopt
from nestopt import NonFiniteError, OracleError, OracleTypeError, Status
from nestopt.problems import quad, quad_reference

SIZES = (2, 3, 1)
N = len(SIZES)
DIM = sum(SIZES)
CUTS = np.cumsum(SIZES)[:-1]

# Which callables of which level a hypergradient in exact mode calls: level 1
# gives grad (the hypergradient) and value (`fun`); levels 2 and 3 are solved
# by Newton with a line search (grad, hess, value); level 3 is not declared
# quadratic and has hess_dir, which the curvature term of level 2 calls.
VECTOR_TARGETS = [(1, "grad"), (2, "grad"), (3, "grad")]
MATRIX_TARGETS = [(2, "hess"), (3, "hess"), (3, "hess_dir")]
VALUE_TARGETS = [(1, "value"), (2, "value"), (3, "value")]


@dataclass(frozen=True)
class Context:
    """How a corruption makes arrays: on the backend under test, or elsewhere."""

    backend: nestopt.Backend

    def arr(self, a: Any) -> Any:
        """A NumPy array or scalar on the backend under test, dtype kept."""
        return self.backend.asarray(np.asarray(a))

    def foreign(self, a: Any) -> Any:
        """The same values in another array library than the one solving."""
        if self.backend.name == "array_api_strict":
            return np.array(a)
        return array_api_strict.asarray(np.asarray(a))

    @property
    def foreign_name(self) -> str:
        return "numpy" if self.backend.name == "array_api_strict" else "array_api_strict"


def blocks(v: np.ndarray) -> list[np.ndarray]:
    return np.split(v, CUTS)


def nested(H: np.ndarray) -> list[list[np.ndarray]]:
    return [np.split(row, CUTS, axis=1) for row in np.split(H, CUTS, axis=0)]


@dataclass(frozen=True)
class Corruption:
    """``make(valid_numpy_output, context)``: what the callable returns instead."""

    make: Callable[[Any, Context], Any]
    raises: type | tuple[type, ...]
    says: str | Callable[[Context], str] = ""


def _replace(items: list, index: int, item: Any) -> list:
    out = list(items)
    out[index] = item
    return out


def _replace_block(H: np.ndarray, i: int, j: int, block: Any, c: Context) -> list[list[Any]]:
    grid = [[c.arr(b) for b in row] for row in nested(H)]
    grid[i][j] = block
    return grid


# Gradients: a flat (D,) array or a tuple of N per-level arrays.
VECTOR = {
    "too_short": Corruption(lambda g, c: c.arr(g[:-1]), OracleError, "(5,)"),
    "too_long": Corruption(lambda g, c: c.arr(np.append(g, 0.0)), OracleError, "(7,)"),
    "empty": Corruption(lambda g, c: c.arr(g[:0]), OracleError, "(0,)"),
    "column": Corruption(lambda g, c: c.arr(g[:, None]), OracleError, "(6, 1)"),
    "row": Corruption(lambda g, c: c.arr(g[None, :]), OracleError, "(1, 6)"),
    "scalar": Corruption(lambda g, c: c.arr(g[0]), OracleError, "shape ()"),
    "float32": Corruption(lambda g, c: c.arr(g.astype(np.float32)), OracleTypeError, "float32"),
    "int": Corruption(lambda g, c: c.arr(np.round(g).astype(np.int64)), OracleTypeError, "int"),
    "bool": Corruption(lambda g, c: c.arr(g > 0), OracleTypeError, "bool"),
    "complex": Corruption(lambda g, c: c.arr(g.astype(np.complex128)), OracleTypeError, "complex"),
    # A list is a legal container of per-level blocks, so a list of D floats
    # is either the wrong number of blocks or blocks of the wrong type.
    "python_list": Corruption(lambda g, c: g.tolist(), (OracleError, OracleTypeError)),
    "python_float": Corruption(lambda g, c: float(g[0]), OracleTypeError, "float"),
    "none": Corruption(lambda g, c: None, OracleTypeError, "NoneType"),
    "string": Corruption(lambda g, c: "grad", OracleTypeError, "str"),
    "dict": Corruption(lambda g, c: {"x": c.arr(g)}, OracleTypeError, "dict"),
    "foreign_backend": Corruption(
        lambda g, c: c.foreign(g), OracleTypeError, lambda c: c.foreign_name
    ),
    "nan": Corruption(lambda g, c: c.arr(_with(g, 0, np.nan)), NonFiniteError, "NaN"),
    "inf": Corruption(lambda g, c: c.arr(_with(g, -1, -np.inf)), NonFiniteError, "Inf"),
    "missing_block": Corruption(
        lambda g, c: tuple(c.arr(b) for b in blocks(g)[:-1]), OracleError, "length 2"
    ),
    "extra_block": Corruption(
        lambda g, c: tuple(c.arr(b) for b in [*blocks(g), blocks(g)[-1]]),
        OracleError,
        "length 4",
    ),
    "flat_in_tuple": Corruption(lambda g, c: (c.arr(g),), OracleError, "length 1"),
    "swapped_blocks": Corruption(
        lambda g, c: tuple(c.arr(b) for b in [blocks(g)[1], blocks(g)[0], blocks(g)[2]]),
        OracleError,
        "block 1",
    ),
    "short_block": Corruption(
        lambda g, c: tuple(c.arr(b) for b in _replace(blocks(g), 1, blocks(g)[1][:-1])),
        OracleError,
        "block 2",
    ),
    "2d_block": Corruption(
        lambda g, c: tuple(c.arr(b) for b in _replace(blocks(g), 0, blocks(g)[0][:, None])),
        OracleError,
        "block 1",
    ),
    "list_block": Corruption(
        lambda g, c: tuple(_replace([c.arr(b) for b in blocks(g)], 1, blocks(g)[1].tolist())),
        OracleTypeError,
        "list",
    ),
    "float32_block": Corruption(
        lambda g, c: tuple(
            _replace([c.arr(b) for b in blocks(g)], 1, c.arr(blocks(g)[1].astype(np.float32)))
        ),
        OracleTypeError,
        "float32",
    ),
    "foreign_block": Corruption(
        lambda g, c: tuple(_replace([c.arr(b) for b in blocks(g)], 0, c.foreign(blocks(g)[0]))),
        OracleTypeError,
        lambda c: c.foreign_name,
    ),
    "nan_block": Corruption(
        lambda g, c: tuple(
            _replace([c.arr(b) for b in blocks(g)], 1, c.arr(_with(blocks(g)[1], 2, np.nan)))
        ),
        NonFiniteError,
        "NaN",
    ),
}

# Hessians and hess_dir: a (D, D) array or an N x N nested sequence of blocks.
MATRIX = {
    "missing_row": Corruption(lambda H, c: c.arr(H[:-1]), OracleError, "(5, 6)"),
    "missing_column": Corruption(lambda H, c: c.arr(H[:, :-1]), OracleError, "(6, 5)"),
    "flattened": Corruption(lambda H, c: c.arr(H.reshape(-1)), OracleError, "(36,)"),
    "vector": Corruption(lambda H, c: c.arr(H[0]), OracleError, "(6,)"),
    "three_dimensional": Corruption(lambda H, c: c.arr(H[None]), OracleError, "(1, 6, 6)"),
    "scalar": Corruption(lambda H, c: c.arr(H[0, 0]), OracleError, "shape ()"),
    "float32": Corruption(lambda H, c: c.arr(H.astype(np.float32)), OracleTypeError, "float32"),
    "int": Corruption(lambda H, c: c.arr(np.round(H).astype(np.int64)), OracleTypeError, "int"),
    "complex": Corruption(lambda H, c: c.arr(H.astype(np.complex128)), OracleTypeError, "complex"),
    "python_list": Corruption(lambda H, c: H.tolist(), (OracleError, OracleTypeError)),
    "none": Corruption(lambda H, c: None, OracleTypeError, "NoneType"),
    "string": Corruption(lambda H, c: "hess", OracleTypeError, "str"),
    "foreign_backend": Corruption(
        lambda H, c: c.foreign(H), OracleTypeError, lambda c: c.foreign_name
    ),
    "nan": Corruption(lambda H, c: c.arr(_with(H, (1, 4), np.nan)), NonFiniteError, "NaN"),
    "inf": Corruption(lambda H, c: c.arr(_with(H, (5, 5), np.inf)), NonFiniteError, "Inf"),
    "transposed_blocks": Corruption(
        lambda H, c: [[c.arr(b.T) for b in row] for row in nested(H)], OracleError, "block (1, 2)"
    ),
    "missing_block_row": Corruption(
        lambda H, c: [[c.arr(b) for b in row] for row in nested(H)[:-1]], OracleError, "3 x 3"
    ),
    "short_block_row": Corruption(
        lambda H, c: [[c.arr(b) for b in row[:-1]] for row in nested(H)], OracleError, "3 x 3"
    ),
    "extra_block_row": Corruption(
        lambda H, c: [[c.arr(b) for b in row] for row in [*nested(H), nested(H)[0]]],
        OracleError,
        "3 x 3",
    ),
    "row_as_array": Corruption(
        lambda H, c: _replace([[c.arr(b) for b in row] for row in nested(H)], 0, c.arr(H[:2])),
        OracleError,
        "3 x 3",
    ),
    "rows_as_arrays": Corruption(
        lambda H, c: tuple(c.arr(r) for r in np.split(H, CUTS, axis=0)), OracleError, "3 x 3"
    ),
    "block_wrong_shape": Corruption(
        lambda H, c: _replace_block(H, 2, 1, c.arr(nested(H)[2][1][:, :-1]), c),
        OracleError,
        "block (3, 2)",
    ),
    "block_float32": Corruption(
        lambda H, c: _replace_block(H, 1, 1, c.arr(nested(H)[1][1].astype(np.float32)), c),
        OracleTypeError,
        "float32",
    ),
    "block_list": Corruption(
        lambda H, c: _replace_block(H, 0, 2, nested(H)[0][2].tolist(), c),
        OracleTypeError,
        "list",
    ),
    "block_string": Corruption(
        lambda H, c: _replace_block(H, 2, 2, "0", c), OracleTypeError, "str"
    ),
    "block_foreign": Corruption(
        lambda H, c: _replace_block(H, 1, 0, c.foreign(nested(H)[1][0]), c),
        OracleTypeError,
        lambda c: c.foreign_name,
    ),
    "block_nan": Corruption(
        lambda H, c: _replace_block(H, 2, 0, c.arr(_with(nested(H)[2][0], (0, 1), np.nan)), c),
        NonFiniteError,
        "NaN",
    ),
}

# Values: a scalar (0-d array, shape (1,), or a Python int or float).
VALUE = {
    "vector": Corruption(lambda v, c: c.arr(np.array([v, v])), OracleError, "(2,)"),
    "matrix": Corruption(lambda v, c: c.arr(np.array([[v]])), OracleError, "(1, 1)"),
    "float32": Corruption(lambda v, c: c.arr(np.float32(v)), OracleTypeError, "float32"),
    "int_array": Corruption(lambda v, c: c.arr(np.int64(3)), OracleTypeError, "int"),
    "python_list": Corruption(lambda v, c: [float(v)], OracleTypeError, "list"),
    "bool": Corruption(lambda v, c: True, OracleTypeError, "bool"),
    "complex": Corruption(lambda v, c: complex(v), OracleTypeError, "complex"),
    "none": Corruption(lambda v, c: None, OracleTypeError, "NoneType"),
    "string": Corruption(lambda v, c: "1.0", OracleTypeError, "str"),
    "foreign_backend": Corruption(
        lambda v, c: c.foreign(v), OracleTypeError, lambda c: c.foreign_name
    ),
    "nan": Corruption(lambda v, c: c.arr(np.nan), NonFiniteError, "NaN"),
    "inf": Corruption(lambda v, c: float("inf"), NonFiniteError, "Inf"),
}


def _with(a: np.ndarray, index: Any, value: float) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out[index] = value
    return out


def zero_hess_dir(*args: Any) -> Any:
    """A quadratic's third derivative: zero, in the namespace and dtype of ``v``."""
    v = args[-1]
    xp = array_api_compat.array_namespace(v)
    return xp.zeros((DIM, DIM), dtype=v.dtype, device=array_api_compat.device(v))


def fuzzed_problem(
    backend: nestopt.Backend,
    target: tuple[int, str] | None = None,
    corrupt: Callable[[Any], Any] | None = None,
    *,
    dtype: Any = None,
    seed: int = 0,
) -> tuple[nestopt.Problem, tuple[Any, ...]]:
    """The quad problem with callable ``target = (level, name)`` corrupted.

    Levels are named ``'L1'``, ``'L2'``, ... so that messages can be checked
    for the level's number and name together.
    """
    base = quad(N, SIZES, seed=seed, backend=backend.name, dtype=dtype)
    levels = []
    for k, level in enumerate(base.levels, start=1):
        callables = {"grad": level.grad, "hess": level.hess, "value": level.value}
        callables["hess_dir"] = zero_hess_dir if k == N else None
        if target is not None and target[0] == k:
            valid = callables[target[1]]

            def wrapped(*args: Any, valid: Callable[..., Any] = valid) -> Any:
                return corrupt(np.asarray(nestopt.to_numpy(valid(*args))))

            callables[target[1]] = wrapped
        levels.append(
            nestopt.Level(
                **callables,
                size=level.size,
                name=f"L{k}",
                # Level 3 undeclared: exact mode then calls its hess_dir.
                quadratic=k != N,
            )
        )
    return nestopt.Problem(levels), base.x0


def assert_caught(
    backend: nestopt.Backend, target: tuple[int, str], corruption: Corruption
) -> None:
    context = Context(backend)
    problem, x0 = fuzzed_problem(backend, target, lambda out: corruption.make(out, context))
    k, name = target
    # best_response evaluates every callable, level 1's value included
    # (hypergradient alone has no use for that value and does not call it).
    with pytest.raises(nestopt.NestoptError) as info:
        nestopt.best_response(problem, x0, curvature="exact")
    error = info.value
    assert isinstance(error, corruption.raises), f"{type(error).__name__}: {error}"
    message = str(error)
    assert error.level == k
    assert f"level {k} ('L{k}')" in message
    assert f"'{name}'" in message
    says = corruption.says(context) if callable(corruption.says) else corruption.says
    assert says in message
    expected_status = Status.NON_FINITE if isinstance(error, NonFiniteError) else None
    assert error.status is expected_status


# --- the wrapper is sound: uncorrupted outputs give the right answer ----------

LAYOUTS = {
    "grad": {"flat": lambda g, c: c.arr(g), "blocks": lambda g, c: [c.arr(b) for b in blocks(g)]},
    "hess": {
        "flat": lambda H, c: c.arr(H),
        "blocks": lambda H, c: [[c.arr(b) for b in row] for row in nested(H)],
        "blocks_with_none": lambda H, c: [
            [None if not np.any(b) else c.arr(b) for b in row] for row in nested(H)
        ],
    },
    "value": {
        "0-d": lambda v, c: c.arr(v),
        "shape_1": lambda v, c: c.arr(np.reshape(v, (1,))),
        "python_float": lambda v, c: float(v),
    },
}


@pytest.mark.parametrize(
    "what, layout",
    [(what, layout) for what, layouts in LAYOUTS.items() for layout in layouts],
)
def test_valid_layouts_pass_through_the_wrapper(backend_name, what, layout):
    # Positive control: with every legal layout the answer is the closed
    # form (1e-9: see test_properties), so the failures below come from the
    # corruption alone.
    backend = nestopt.get_backend(backend_name)
    context = Context(backend)
    reference = quad_reference(
        quad(N, SIZES, seed=0).data["Q"], quad(N, SIZES, seed=0).data["c"], SIZES
    )
    expected = reference["grad_at_zero"]
    for k in range(1, N + 1):
        targets = {"grad": (k, "grad"), "hess": (k, "hess"), "value": (k, "value")}
        if what == "hess" and k == 1:
            continue
        problem, x0 = fuzzed_problem(
            backend, targets[what], lambda out: LAYOUTS[what][layout](out, context)
        )
        got = nestopt.hypergradient(problem, x0, curvature="exact")
        error = np.linalg.norm(nestopt.to_numpy(got) - expected) / np.linalg.norm(expected)
        assert error <= 1e-9


# --- every corruption is caught -------------------------------------------------


@pytest.mark.parametrize("target", VECTOR_TARGETS, ids=lambda t: f"L{t[0]}-{t[1]}")
@pytest.mark.parametrize("name", list(VECTOR))
def test_corrupted_gradients_are_caught(backend_name, target, name):
    assert_caught(nestopt.get_backend(backend_name), target, VECTOR[name])


@pytest.mark.parametrize("target", MATRIX_TARGETS, ids=lambda t: f"L{t[0]}-{t[1]}")
@pytest.mark.parametrize("name", list(MATRIX))
def test_corrupted_hessians_are_caught(backend_name, target, name):
    assert_caught(nestopt.get_backend(backend_name), target, MATRIX[name])


@pytest.mark.parametrize("target", VALUE_TARGETS, ids=lambda t: f"L{t[0]}-{t[1]}")
@pytest.mark.parametrize("name", list(VALUE))
def test_corrupted_values_are_caught(backend_name, target, name):
    assert_caught(nestopt.get_backend(backend_name), target, VALUE[name])


@pytest.mark.parametrize("target", [(2, "grad"), (3, "hess"), (1, "value")], ids=str)
def test_float64_outputs_are_rejected_when_solving_in_float32(target):
    # The working dtype is the starting point's; a callable that computes in
    # float64 anyway is a dtype error, not a silent upcast of the solve.
    backend = nestopt.get_backend("numpy")
    problem, x0 = fuzzed_problem(
        backend,
        target,
        lambda out: backend.asarray(np.asarray(out, dtype=np.float64)),
        dtype=np.float32,
        seed=1,
    )
    assert x0[0].dtype == np.float32
    with pytest.raises(OracleTypeError, match=r"float64.*expected float32") as info:
        nestopt.best_response(problem, x0)
    assert info.value.level == target[0]
    assert f"'{target[1]}'" in str(info.value)


@pytest.mark.parametrize("target", [(2, "grad"), (3, "hess_dir"), (1, "value")], ids=str)
def test_outputs_on_another_device_are_rejected(target):
    # array_api_strict has several devices: an output on another device than
    # the inputs is refused, never copied across.
    backend = nestopt.get_backend("array_api_strict")
    other = array_api_strict.Device("device1")
    problem, x0 = fuzzed_problem(
        backend, target, lambda out: array_api_strict.asarray(out, device=other)
    )
    with pytest.raises(OracleTypeError, match="device") as info:
        nestopt.best_response(problem, x0, curvature="exact")
    assert info.value.level == target[0]
    assert f"'{target[1]}'" in str(info.value)
    assert "device1" in str(info.value)


# --- NaN and Inf anywhere ------------------------------------------------------


@st.composite
def non_finite_cases(draw):
    backend = draw(st.sampled_from(["numpy", "array_api_strict"]))
    target = draw(st.sampled_from(VECTOR_TARGETS + MATRIX_TARGETS + VALUE_TARGETS))
    bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if target[1] == "value":
        index = ()
        layout = "flat"
    elif target[1] == "grad":
        index = draw(st.integers(0, DIM - 1))
        layout = draw(st.sampled_from(["flat", "blocks"]))
    else:
        index = (draw(st.integers(0, DIM - 1)), draw(st.integers(0, DIM - 1)))
        layout = draw(st.sampled_from(["flat", "blocks"]))
    return backend, target, bad, index, layout


@settings(derandomize=True, max_examples=120, deadline=None)
@given(case=non_finite_cases())
def test_non_finite_outputs_anywhere_are_caught(case):
    backend_name, target, bad, index, layout = case

    def make(out, c):
        out = _with(out, index, bad)
        if layout == "flat":
            return c.arr(out)
        if target[1] == "grad":
            return tuple(c.arr(b) for b in blocks(out))
        return [[c.arr(b) for b in row] for row in nested(out)]

    label = "NaN" if np.isnan(bad) else "Inf"
    assert_caught(
        nestopt.get_backend(backend_name), target, Corruption(make, NonFiniteError, label)
    )
