"""nestopt.autodiff: levels and constraints built by JAX and torch.func against analytic ones.

Truth is independent of the adapters: the hand-written derivatives of
``nestopt.problems`` (quad, softplus_levels), a constraint differentiated by
hand, and the hypergradient of the analytic problem. Adapter and analytic
oracles evaluate the same formulas in float64, so they agree to rounding:
``rtol = 1e-12`` for single oracles (D <= 12, well-conditioned data), and
``1e-10`` for hypergradients, which add lower-level Newton solves stopped at
their tolerance and linear solves with condition numbers near 10.

Every test that needs JAX or torch skips without it (``pytest.importorskip``).
"""

from __future__ import annotations

import doctest
import importlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from helpers import assert_array_on, relative_error

import nestopt
import nestopt.autodiff as ad
from nestopt.problems import quad, softplus_levels

RTOL = 1e-12
HYPER_RTOL = 1e-10


@dataclass(frozen=True)
class Lib:
    """One autodiff library as the tests use it: adapters and the few array functions."""

    name: str
    level: Any
    constraint: Any
    const: Any  # NumPy data -> a float64 constant of the library
    concat: Any
    softplus: Any
    exp: Any


def _jax() -> Lib:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    return Lib(
        "jax",
        ad.jax_level,
        ad.jax_constraint,
        lambda a: jnp.asarray(a, dtype=jnp.float64),
        jnp.concatenate,
        lambda z: jnp.logaddexp(z, 0.0),
        jnp.exp,
    )


def _torch() -> Lib:
    torch = pytest.importorskip("torch")
    return Lib(
        "torch",
        ad.torch_level,
        ad.torch_constraint,
        lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64),
        torch.cat,
        lambda z: torch.logaddexp(z, torch.zeros_like(z)),
        torch.exp,
    )


@pytest.fixture(scope="module", params=["jax", "torch"])
def lib(request) -> Lib:
    return {"jax": _jax, "torch": _torch}[request.param]()


def softplus_objective(lib: Lib, Q: Any, c: Any, W: Any = None, weight: float = 0.0) -> Any:
    """``1/2 x^T Q x + c^T x + weight sum softplus(W x)``, written in ``lib``."""
    Q, c = lib.const(Q), lib.const(c)
    W = None if W is None or weight == 0.0 else lib.const(W)

    def f(*xs: Any) -> Any:
        x = lib.concat(xs)
        quadratic = 0.5 * (x @ (Q @ x)) + c @ x
        return quadratic if W is None else quadratic + weight * lib.softplus(W @ x).sum()

    return f


def adapter_softplus(lib: Lib, problem: Any) -> nestopt.Problem:
    """The softplus_levels problem rebuilt from its data by ``lib``'s adapter alone."""
    data = problem.data
    levels = []
    for k, level in enumerate(problem.levels, start=1):
        weight = 0.0 if k == 1 else data["beta"]
        fun = softplus_objective(lib, data["Q"][k - 1], data["c"][k - 1], data["W"][k - 1], weight)
        levels.append(lib.level(fun, level.size, name=level.name, quadratic=weight == 0.0))
    return nestopt.Problem(levels)


def random_point(sizes: tuple[int, ...], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(d) for d in sizes]


# -- imports ------------------------------------------------------------------


def test_import_nestopt_imports_no_autodiff_library():
    code = (
        "import sys, nestopt, nestopt.problems\n"
        "def loaded():\n"
        "    return sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'torch'))\n"
        "assert 'nestopt.autodiff' not in sys.modules, 'nestopt imported nestopt.autodiff'\n"
        "assert not loaded(), loaded()\n"
        "import nestopt.autodiff\n"
        "assert not loaded(), loaded()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NESTOPT_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("adapter", "module", "extra"),
    [
        (ad.jax_level, "jax", "nestopt[jax]"),
        (ad.jax_constraint, "jax", "nestopt[jax]"),
        (ad.torch_level, "torch", "nestopt[torch]"),
        (ad.torch_constraint, "torch", "nestopt[torch]"),
    ],
)
def test_missing_library_names_the_extra(monkeypatch, adapter, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` fail
    args = (lambda x: x @ x, 1) if adapter.__name__.endswith("level") else (lambda x: x, 0, 1)
    with pytest.raises(ImportError, match=re.escape(f'pip install "{extra}"')):
        adapter(*args)


@pytest.mark.parametrize("adapter", [ad.jax_level, ad.torch_level])
def test_bad_arguments_say_what_is_expected(adapter):
    with pytest.raises(ValueError, match="hessian='full'.*'dense'.*'hvp'"):
        adapter(lambda x: x @ x, 1, hessian="full")
    with pytest.raises(TypeError, match=r"fun must be a function.*got int"):
        adapter(3, 1)


# -- single oracles -----------------------------------------------------------


def test_quadratic_levels_match_and_have_zero_third_derivatives(lib):
    problem = quad(3, (2, 3, 2), seed=4)
    xs = random_point(problem.sizes)
    rng = np.random.default_rng(2)
    v, u = rng.standard_normal(problem.dim), rng.standard_normal(problem.dim)
    for k, analytic in enumerate(problem.levels):
        fun = softplus_objective(lib, problem.data["Q"][k], problem.data["c"][k])
        level = lib.level(fun, analytic.size)
        assert relative_error(level.value(*xs), analytic.value(*xs)) <= RTOL
        assert relative_error(level.grad(*xs), analytic.grad(*xs)) <= RTOL
        assert relative_error(level.hess(*xs), analytic.hess(*xs)) <= RTOL
        assert relative_error(level.hvp(*xs, v), analytic.hess(*xs) @ v) <= RTOL
        # Exactly zero: the JVP of a constant Hessian propagates zeros, no rounding.
        assert np.array_equal(level.hess_dir(*xs, v), np.zeros((problem.dim, problem.dim)))
        assert np.array_equal(level.hvp_dir(*xs, v, u), np.zeros(problem.dim))


@pytest.fixture(scope="module")
def softplus3():
    return softplus_levels(3, (2, 3, 4), seed=3)


@pytest.fixture(scope="module")
def softplus3_adapted(lib, softplus3):
    """Built once per library, so JAX compiles each callable once for the module."""
    return adapter_softplus(lib, softplus3)


def test_softplus_levels_match_every_analytic_oracle(softplus3, softplus3_adapted):
    xs = random_point(softplus3.sizes)
    rng = np.random.default_rng(5)
    D = softplus3.dim
    v, u = rng.standard_normal(D), rng.standard_normal(D)
    for k, (analytic, level) in enumerate(zip(softplus3.levels, softplus3_adapted.levels), 1):
        H = analytic.hess(*xs)
        assert relative_error(level.value(*xs), analytic.value(*xs)) <= RTOL
        assert relative_error(level.grad(*xs), analytic.grad(*xs)) <= RTOL
        assert relative_error(level.hess(*xs), H) <= RTOL
        assert relative_error(level.hvp(*xs, v), H @ v) <= RTOL
        start = softplus3.offsets[k - 1]
        assert level.hess_rows is True
        assert relative_error(level.hess(*xs, start=start), H[start:]) <= RTOL
        if k > 1:
            full = level.hess_dir(*xs, u)
            assert relative_error(level.hess_dir(*xs, u, start=start), full[start:]) <= RTOL
        if k > 1:  # level 1 is quadratic: no analytic hess_dir
            T = analytic.hess_dir(*xs, u)
            assert relative_error(level.hess_dir(*xs, u), T) <= RTOL
            assert relative_error(level.hvp_dir(*xs, v, u), T @ v) <= RTOL


def test_hvp_mode_builds_a_matrix_free_level(lib, softplus3):
    data, k = softplus3.data, 3
    fun = softplus_objective(lib, data["Q"][k - 1], data["c"][k - 1], data["W"][k - 1], 1.0)
    level = lib.level(fun, softplus3.sizes[-1], hessian="hvp")
    assert (level.hess, level.hess_dir, level.hess_rows) == (None, None, False)
    xs, analytic = random_point(softplus3.sizes), softplus3.levels[k - 1]
    v = np.linspace(-1.0, 1.0, softplus3.dim)
    assert relative_error(level.hvp(*xs, v), analytic.hess(*xs) @ v) <= RTOL
    assert relative_error(level.hvp_dir(*xs, v, v), analytic.hess_dir(*xs, v) @ v) <= RTOL


def test_fun_must_return_a_scalar(lib):
    level = lib.level(lambda x1, x2: x1 * x2, 2, name="lower")
    with pytest.raises(TypeError, match=r"level\('lower'\): fun returned shape \(2,\); expected"):
        level.grad(np.ones(2), np.ones(2))


# -- backends: arrays stay where the user solves --------------------------------


BACKENDS = ["numpy", "array_api_strict", "torch"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_are_arrays_of_the_inputs_backend(lib, softplus3, softplus3_adapted, backend):
    pytest.importorskip(backend)
    chosen = nestopt.get_backend(backend)
    xs = [chosen.asarray(x, dtype=chosen.xp.float64) for x in random_point(softplus3.sizes)]
    v = chosen.asarray(np.ones(softplus3.dim), dtype=chosen.xp.float64)
    level, D = softplus3_adapted.levels[2], softplus3.dim
    xp = chosen.xp
    assert_array_on(level.value(*xs), xp, shape=(), dtype=xp.float64)
    assert_array_on(level.grad(*xs), xp, shape=(D,), dtype=xp.float64)
    assert_array_on(level.hess(*xs), xp, shape=(D, D), dtype=xp.float64)
    assert_array_on(level.hess_dir(*xs, v), xp, shape=(D, D), dtype=xp.float64)
    assert_array_on(level.hvp_dir(*xs, v, v), xp, shape=(D,), dtype=xp.float64)
    assert_array_on(level.hess(*xs, start=5), xp, shape=(D - 5, D), dtype=xp.float64)
    numpy_xs = [nestopt.to_numpy(x) for x in xs]
    assert relative_error(level.hess(*xs), softplus3.levels[2].hess(*numpy_xs)) <= RTOL


# -- hypergradients -------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_adapter_problem_has_the_analytic_hypergradient(softplus3, softplus3_adapted, backend):
    """Exact curvature (the third-order terms from hess_dir) on the trilevel softplus problem."""
    pytest.importorskip(backend)
    point = random_point(softplus3.sizes, seed=7)
    point[1:] = [np.zeros(d) for d in softplus3.sizes[1:]]
    expected = nestopt.hypergradient(softplus3, point, curvature="exact")
    with nestopt.backend(backend) as chosen:
        xs = [chosen.asarray(x, dtype=chosen.xp.float64) for x in point]
        got = nestopt.hypergradient(softplus3_adapted, xs, curvature="exact")
        assert_array_on(got, chosen.xp, shape=(softplus3.sizes[0],))
    assert relative_error(got, expected) <= HYPER_RTOL
    # The curvature terms matter here: first order differs far beyond the tolerance.
    first = nestopt.hypergradient(softplus3, point, curvature="first_order")
    assert relative_error(first, expected) > 1e3 * HYPER_RTOL


def test_solve_a_bilevel_problem_built_by_adapters(lib):
    problem = quad(2, 2, seed=6)
    levels = [
        lib.level(softplus_objective(lib, Q, c), d, quadratic=True)
        for Q, c, d in zip(problem.data["Q"], problem.data["c"], problem.sizes)
    ]
    result = nestopt.solve(nestopt.Problem(levels), problem.x0)
    assert result.success, result.message
    distance = max(np.max(np.abs(a - b)) for a, b in zip(result.xs, problem.solution))
    assert distance <= 1e-8


# -- constraints ----------------------------------------------------------------


A = np.array([0.3, -0.2, 0.5])
B = np.array([-0.4, 0.1, 0.2])


def analytic_constraint() -> nestopt.NonlinearConstraint:
    """``c(x) = (exp(a.x), (b.x)^3 / 3)`` with derivatives by hand, ``x = (x1, x2)``."""

    def fun(x1, x2):
        x = np.concatenate([x1, x2])
        return np.array([np.exp(A @ x), (B @ x) ** 3 / 3])

    def jac(x1, x2):
        x = np.concatenate([x1, x2])
        return np.stack([np.exp(A @ x) * A, (B @ x) ** 2 * B])

    def hess(x1, x2, v):
        x = np.concatenate([x1, x2])
        return v[0] * np.exp(A @ x) * np.outer(A, A) + v[1] * 2 * (B @ x) * np.outer(B, B)

    def hess_dir(x1, x2, v, u):
        x = np.concatenate([x1, x2])
        first = np.exp(A @ x) * (A @ u) * np.outer(A, A)
        second = 2 * (B @ u) * np.outer(B, B)
        return v[0] * first + v[1] * second

    return nestopt.NonlinearConstraint(fun, -np.inf, 1.0, jac=jac, hess=hess, hess_dir=hess_dir)


def test_constraint_adapter_matches_the_analytic_derivatives(lib):
    a, b = lib.const(A), lib.const(B)

    def fun(x1, x2):
        x = lib.concat([x1, x2])
        return lib.concat([lib.exp(a @ x)[None], ((b @ x) ** 3 / 3)[None]])

    built = lib.constraint(fun, -np.inf, 1.0, name="exp and cube")
    truth = analytic_constraint()
    assert (built.lb, built.ub, built.name) == (-np.inf, 1.0, "exp and cube")
    xs = [np.array([0.7, -1.2]), np.array([2.0])]
    v, u = np.array([1.5, -0.5]), np.array([0.2, 0.9, -0.4])
    assert relative_error(built.fun(*xs), truth.fun(*xs)) <= RTOL
    assert relative_error(built.jac(*xs), truth.jac(*xs)) <= RTOL
    assert relative_error(built.hess(*xs, v), truth.hess(*xs, v)) <= RTOL
    assert relative_error(built.hess_dir(*xs, v, u), truth.hess_dir(*xs, v, u)) <= RTOL


def test_scalar_constraint_counts_as_one_row(lib):
    built = lib.constraint(lambda x1, x2: (x1 * x2).sum(), 0.0, 0.0)
    xs = [np.array([2.0]), np.array([3.0])]
    assert built.fun(*xs).shape == (1,)
    np.testing.assert_array_equal(built.jac(*xs), [[3.0, 2.0]])
    np.testing.assert_array_equal(built.hess(*xs, np.array([2.0])), [[0.0, 2.0], [2.0, 0.0]])


# -- JAX specifics ----------------------------------------------------------------


def test_jax_float64_needs_x64_and_says_how():
    jax = pytest.importorskip("jax")
    level = ad.jax_level(lambda x1, x2: (x1 * x2).sum(), 1, name="lower")
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(TypeError, match=r"float64.*jax\.config\.update\(\"jax_enable_x64\""):
            level.grad(np.ones(1), np.ones(1))
        g = level.grad(np.ones(1, dtype=np.float32), np.full(1, 2.0, dtype=np.float32))
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, [2.0, 1.0])
    finally:
        jax.config.update("jax_enable_x64", True)


def test_jax_jit_false_gives_the_same_oracles(softplus3):
    pytest.importorskip("jax")
    lib = _jax()
    data, k = softplus3.data, 2
    fun = softplus_objective(lib, data["Q"][k - 1], data["c"][k - 1], data["W"][k - 1], 1.0)
    eager, compiled = (lib.level(fun, 3, jit=jit) for jit in (False, True))
    xs, v = random_point(softplus3.sizes), np.linspace(0.0, 1.0, softplus3.dim)
    # One oracle only: eager JAX compiles every primitive on its first use (seconds).
    assert relative_error(eager.hvp(*xs, v), compiled.hvp(*xs, v)) <= RTOL


@pytest.mark.parametrize(("module", "library"), [("_jax", "jax"), ("_torch", "torch")])
def test_docstring_examples_run(module, library):
    pytest.importorskip(library)
    mod = importlib.import_module(f"nestopt.autodiff.{module}")
    failures, tried = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


class _UnsharableGpuArray:
    """Claims CUDA device 0 and refuses DLPack: what a CPU-only build of the library meets."""

    shape = (1,)
    dtype = "float64"

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, 0)  # kDLCUDA

    def __dlpack__(self, **kwargs: Any) -> Any:
        raise BufferError("no GPU in this test")


def test_an_array_the_library_cannot_share_is_a_clear_error(lib):
    level = lib.level(lambda x1, x2: (x1 * x2).sum(), 1, name="lower")
    with pytest.raises(TypeError, match=r"'lower'\) received .* \(2, 0\).*could not share"):
        level.grad(_UnsharableGpuArray(), _UnsharableGpuArray())


@pytest.mark.parametrize(
    ("category", "message", "passes"),
    [
        # torch 2.13 says it with a DeprecationWarning, 2.14 with a FutureWarning.
        ("DeprecationWarning", "`torch.jit.script` is deprecated. Please switch", True),
        ("FutureWarning", "torch.jit.script is deprecated", True),
        # Only that warning is silenced.
        ("FutureWarning", "something else is deprecated", False),
    ],
)
def test_torch_jit_script_deprecation_alone_is_silenced(category, message, passes):
    pytest.importorskip("torch")
    # A fresh process: torch scripts its JVP decompositions once, on the first forward-mode call.
    code = (
        "import warnings, torch\n"
        "original = torch.jit.script\n"
        "def script(*args, **kwargs):\n"
        f"    warnings.warn({message!r}, {category}, stacklevel=2)\n"
        "    return original(*args, **kwargs)\n"
        "torch.jit.script = script\n"
        "import numpy as np, nestopt.autodiff\n"
        "level = nestopt.autodiff.torch_level(lambda x, y: (x * y).sum() + (y**4).sum(), size=1)\n"
        "print(level.hess_dir(np.ones(1), np.ones(1), np.ones(2)).tolist())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NESTOPT_")}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if passes:
        assert out.returncode == 0, out.stderr
        # d/dv of the Hessian [[0, 1], [1, 12 y^2]] along v = (1, 1): [[0, 0], [0, 24 y]].
        assert out.stdout.strip() == "[[0.0, 0.0], [0.0, 24.0]]"
    else:
        assert out.returncode != 0 and "something else is deprecated" in out.stderr
