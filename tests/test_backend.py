"""Backend selection: names, precedence (pair by pair), devices, errors, imports."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nestopt
from nestopt._backend import selection as _backend
from nestopt.problems import quad


@pytest.fixture(autouse=True)
def clean_selection(monkeypatch):
    """Each test starts with no environment, no set_backend and no context."""
    monkeypatch.setattr(_backend, "_ENV_SETTING", (None, None))
    nestopt.set_backend(None)
    yield
    nestopt.set_backend(None)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NESTOPT_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120
    )


# -- precedence, pair by pair -------------------------------------------------


def test_default_is_numpy():
    chosen = nestopt.get_backend()
    assert (chosen.name, chosen.device, chosen.source) == ("numpy", None, "default")


def test_environment_beats_default(monkeypatch):
    monkeypatch.setattr(_backend, "_ENV_SETTING", ("array_api_strict", None))
    chosen = nestopt.get_backend()
    assert (chosen.name, chosen.source) == ("array_api_strict", "environment")


def test_set_backend_beats_environment(monkeypatch):
    monkeypatch.setattr(_backend, "_ENV_SETTING", ("array_api_strict", None))
    nestopt.set_backend("numpy")
    assert (nestopt.get_backend().name, nestopt.get_backend().source) == ("numpy", "set_backend")


def test_context_beats_set_backend():
    nestopt.set_backend("numpy")
    with nestopt.backend("array_api_strict"):
        assert nestopt.get_backend().name == "array_api_strict"
        assert nestopt.get_backend().source == "context"
    assert nestopt.get_backend().name == "numpy"


def test_argument_beats_context():
    with nestopt.backend("array_api_strict"):
        chosen = nestopt.get_backend("numpy")
    assert (chosen.name, chosen.source) == ("numpy", "argument")


def test_argument_reaches_computation_inside_context():
    problem = quad(2, 3, seed=0, backend="numpy")
    with nestopt.backend("array_api_strict"):
        g = nestopt.hypergradient(problem, problem.x0, backend="numpy")
    assert isinstance(g, np.ndarray)


def test_innermost_context_wins_and_is_restored():
    with nestopt.backend("array_api_strict"):
        with nestopt.backend("numpy"):
            assert nestopt.get_backend().name == "numpy"
        assert nestopt.get_backend().name == "array_api_strict"
    assert nestopt.get_backend().source == "default"


def test_set_backend_none_restores_environment(monkeypatch):
    monkeypatch.setattr(_backend, "_ENV_SETTING", ("array_api_strict", None))
    nestopt.set_backend("numpy")
    nestopt.set_backend(None)
    assert nestopt.get_backend().source == "environment"


def test_context_is_local_to_its_thread():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with nestopt.backend("array_api_strict"):
            seen["worker"] = nestopt.get_backend().name
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(10)
    seen["main"] = nestopt.get_backend().name
    release.set()
    thread.join()
    assert seen == {"worker": "array_api_strict", "main": "numpy"}


# -- names and errors -----------------------------------------------------------


def test_names_are_case_insensitive():
    assert nestopt.get_backend("NumPy").name == "numpy"
    assert nestopt.get_backend("Array-API-Strict").name == "array_api_strict"


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="'nosuch'") as info:
        nestopt.set_backend("nosuch")
    for name in ("numpy", "cupy", "torch", "array_api_strict"):
        assert name in str(info.value)


def test_unknown_environment_name_names_the_variable(monkeypatch):
    monkeypatch.setattr(_backend, "_ENV_SETTING", ("nosuch", None))
    with pytest.raises(ValueError, match="NESTOPT_BACKEND") as info:
        nestopt.get_backend()
    assert "'nosuch'" in str(info.value) and "numpy" in str(info.value)


def test_missing_library_names_package_and_extra():
    nestopt.register_backend(
        "phantom",
        "nestopt_phantom_module_that_does_not_exist",
        package="phantom-arrays",
        extra="phantom",
    )
    try:
        with pytest.raises(ImportError, match="phantom-arrays") as info:
            nestopt.set_backend("phantom")
        assert "nestopt[phantom]" in str(info.value)
        assert nestopt.get_backend().name == "numpy"  # nothing fell back silently
    finally:
        _backend._REGISTRY.pop("phantom")


def test_cupy_missing_or_without_gpu_is_a_clear_error():
    try:
        nestopt.get_backend("cupy").xp
    except ImportError as exc:
        assert "cupy-cuda12x" in str(exc) and "nestopt[cuda12]" in str(exc)
    except RuntimeError as exc:
        assert "GPU" in str(exc) or "CUDA" in str(exc)
    else:
        pytest.skip("CuPy with a GPU is present")


def test_register_backend_by_module_name():
    nestopt.register_backend("strict_alias", "array_api_strict", package="array-api-strict")
    try:
        problem = quad(2, 2, seed=1, backend="strict_alias")
        g = nestopt.hypergradient(problem, problem.x0, backend="strict_alias")
        import array_api_compat

        assert array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(g))
        assert "strict_alias" in nestopt.list_backends()
    finally:
        _backend._REGISTRY.pop("strict_alias")


# -- devices --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:1", "cuda:1"), ("gpu:2", "cuda:2"), ("", None)],
)
def test_device_strings(text, canonical):
    assert nestopt.get_backend("numpy", device=text).device == canonical


def test_bad_device_string():
    with pytest.raises(ValueError, match="cuda:N"):
        nestopt.get_backend("numpy", device="tpu")


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_cuda_device_on_cpu_backend_is_an_error(name):
    with pytest.raises(ValueError, match="CPU-only"):
        nestopt.set_backend(name, device="cuda:0")
    assert nestopt.get_backend().source == "default"


def test_non_default_device_is_kept_and_leaks_are_caught():
    import array_api_strict as xp

    problem = quad(2, 3, seed=2, backend=nestopt.Backend("array_api_strict", "device1", "argument"))
    with nestopt.backend("array_api_strict", device="device1"):
        g = nestopt.hypergradient(problem, problem.x0)
    assert g.device == xp.Device("device1")
    leaky_level = nestopt.Level(
        grad=lambda x1, x2: xp.zeros(6, dtype=xp.float64),  # default device: a leak
        hess=problem.levels[1].hess,
        size=3,
    )
    leaky = nestopt.Problem([problem.levels[0], leaky_level])
    with nestopt.backend("array_api_strict", device="device1"):
        with pytest.raises(nestopt.OracleTypeError, match="device"):
            nestopt.hypergradient(leaky, problem.x0)


def test_callable_on_another_backend_is_a_type_error():
    problem = quad(2, 2, seed=3, backend="numpy")
    with pytest.raises(TypeError, match="numpy") as info:
        nestopt.hypergradient(problem, problem.x0, backend="array_api_strict")
    assert isinstance(info.value, nestopt.OracleTypeError)
    assert "level 2" in str(info.value)


# -- to_numpy ----------------------------------------------------------------------


def test_to_numpy_copies_from_any_backend():
    import array_api_strict as xp

    a = xp.asarray([1.0, 2.0])
    out = nestopt.to_numpy((a, [a]))
    assert isinstance(out[0], np.ndarray) and np.array_equal(out[0], [1.0, 2.0])
    assert isinstance(out[1][0], np.ndarray)
    b = np.ones(3)
    c = nestopt.to_numpy(b)
    c[0] = 5.0
    assert b[0] == 1.0


# -- the environment, in fresh interpreters --------------------------------------------


def test_environment_variable_in_a_fresh_process():
    out = run_python(
        "import nestopt; b = nestopt.get_backend(); print(b.name, b.source)",
        NESTOPT_BACKEND="array_api_strict",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["array_api_strict", "environment"]


def test_bad_environment_variable_fails_on_first_use_not_on_import():
    out = run_python(
        "import nestopt\nprint('imported')\nnestopt.get_backend()", NESTOPT_BACKEND="nosuch"
    )
    assert "imported" in out.stdout
    assert out.returncode != 0
    assert "ValueError" in out.stderr and "NESTOPT_BACKEND" in out.stderr


def test_empty_environment_variable_counts_as_unset():
    out = run_python(
        "import nestopt; print(nestopt.get_backend().source)", NESTOPT_BACKEND="", NESTOPT_DEVICE=""
    )
    assert out.stdout.strip() == "default", out.stderr


def test_environment_device_is_read():
    out = run_python(
        "import nestopt; print(nestopt.get_backend().device)",
        NESTOPT_BACKEND="array_api_strict",
        NESTOPT_DEVICE="device1",
    )
    assert out.stdout.strip() == "device1", out.stderr


def test_import_is_silent_and_imports_nothing_optional():
    code = (
        "import sys, nestopt, nestopt.problems\n"
        "heavy = ['cupy', 'scipy', 'torch', 'matplotlib', 'tqdm', 'sklearn', 'jax']\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "\n"
    assert out.stderr == ""
