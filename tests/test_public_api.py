"""The public API: __all__ is honest, documented, and its examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import nestopt
import nestopt.autodiff
import nestopt.plot
import nestopt.problems

PUBLIC_MODULES = [nestopt, nestopt.problems, nestopt.plot, nestopt.autodiff]


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(module):
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    for name in exported:
        assert hasattr(module, name), f"{module.__name__}.{name} listed but missing"
    public = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(obj)
        and getattr(obj, "__module__", module.__name__).startswith("nestopt")
        and name not in {"annotations"}
    }
    assert public <= exported, f"public but not in __all__: {sorted(public - exported)}"


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_public_symbol_has_a_docstring(module):
    missing = [
        name for name in module.__all__ if not (inspect.getdoc(getattr(module, name)) or "").strip()
    ]
    assert not missing, f"undocumented: {missing}"


DOCTEST_MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(nestopt.__path__, "nestopt.")
    if not info.ispkg and ".autodiff." not in info.name
)


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert failures == 0


def test_readme_example_runs_and_prints_what_it_claims(capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.split("\n")
    assert printed[0] == "[3.]"
    assert printed[1] == "[0.5] True"


def test_show_config_lists_both_blas_pools_when_scipy_is_installed(capsys):
    pytest.importorskip("threadpoolctl")
    pytest.importorskip("scipy")
    info = nestopt.show_config(mode="dicts")
    files = [pool["file"] for pool in info["blas"]]
    # NumPy's and SciPy's wheels each carry an OpenBLAS: both pools are listed.
    assert len(files) >= 2 and len(set(files)) == len(files)
    assert info["backend"]["name"] == nestopt.get_backend().name
    nestopt.show_config()
    out = capsys.readouterr().out
    assert out.count("BLAS pool:") == len(files)
    with pytest.raises(ValueError, match="stdout"):
        nestopt.show_config(mode="json")


def test_deprecated_names_resolve_with_a_warning():
    with pytest.warns(DeprecationWarning, match="never raised"):
        cls = nestopt.DegenerateError
    assert issubclass(cls, nestopt.NestoptError)
    assert "DegenerateError" not in nestopt.__all__
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        nestopt.no_such_name  # noqa: B018


def test_old_keyword_names_still_work_with_a_warning():
    from nestopt.problems import quad

    problem = quad(2, 2, seed=0)
    expected = nestopt.hypergradient(problem, x0=problem.x0)
    with pytest.warns(DeprecationWarning, match=r"hypergradient\(xs=...\) is deprecated"):
        got = nestopt.hypergradient(problem, xs=problem.x0)
    assert (got == expected).all()
    with pytest.warns(DeprecationWarning, match=r"check_derivatives\(h=...\)"):
        report = nestopt.check_derivatives(problem, problem.x0, h=1e-3)
    assert report.ok
    with pytest.raises(TypeError, match="got both xs="):
        nestopt.hypergradient(problem, problem.x0, xs=problem.x0)


def test_package_imports_and_solves_without_docstrings():
    # python -OO strips docstrings (``__doc__`` is None): the text filled into the entry
    # points' docstrings at import must not be needed (importing used to fail there).
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import numpy as np, nestopt, nestopt.problems, nestopt.autodiff, nestopt.plot\n"
        "problem = nestopt.problems.quad(2, 2, seed=0)\n"
        "xs = [np.zeros(2), np.zeros(2)]\n"
        "print(nestopt.hypergradient(problem, xs).shape)\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-OO", "-c", code], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(2,)"


def test_multistart_old_names_still_work_with_a_warning():
    from nestopt.problems import quad

    problem = quad(2, 2, seed=0)
    new = nestopt.multistart(problem, n_starts=2, bounds=(-1, 1), seed=0, n_jobs=1)
    with pytest.warns(DeprecationWarning, match=r"multistart\(box=...\) is deprecated"):
        old = nestopt.multistart(problem, n_starts=2, box=(-1, 1), seed=0, n_jobs=1)
    assert (old.x == new.x).all() and new.agree_xtol == 1e-4
