"""Extras: each installs what its feature imports, is described in the docs, and is named
when its package is missing.

The truth is pyproject.toml, read here with tomllib; nestopt/_extras.py says which extra
provides each optional module and which public names import which modules.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import nestopt
import nestopt.problems
from nestopt._extras import FEATURES, OPTIONAL

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?")


def distribution(requirement: str) -> str:
    """``'dask[distributed]>=2024.1'`` -> ``'dask[distributed]'``."""
    return NAME.match(requirement).group(0)


def bare(name: str) -> str:
    return re.sub(r"\[.*\]", "", name).lower().replace("_", "-")


def installed_by(extra: str) -> set[str]:
    """The distributions (without their own extras) that ``nestopt[extra]`` installs."""
    found = {bare(distribution(r)) for r in PROJECT["dependencies"]}
    for requirement in EXTRAS[extra]:
        name = distribution(requirement)
        if bare(name) == "nestopt":
            for inner in re.search(r"\[(.*)\]", name).group(1).split(","):
                found |= installed_by(inner.strip())
        else:
            found.add(bare(name))
    return found


def docs_row(extra: str) -> str:
    text = (ROOT / "docs" / "index.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith(f"| `{extra}` |")]
    assert len(rows) == 1, f"docs/index.md has {len(rows)} rows for the extra {extra!r}"
    return rows[0]


# -- pyproject and the docs ---------------------------------------------------


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_docs_describe_every_extra_with_its_packages(extra):
    installs = docs_row(extra).split("|")[2]
    for requirement in EXTRAS[extra]:
        assert f"`{distribution(requirement)}`" in installs, (
            f"docs/index.md's row for {extra!r} does not list {distribution(requirement)!r}"
        )


def test_docs_describe_no_extra_that_does_not_exist():
    text = (ROOT / "docs" / "index.md").read_text()
    described = set(re.findall(r"^\| `([a-z0-9_-]+)` \|", text, flags=re.MULTILINE))
    assert described == set(EXTRAS)


def test_torch_is_a_lower_bound_and_all_runs_without_a_gpu():
    assert EXTRAS["torch"] == ["torch>=2.13"]
    everything = installed_by("all")
    assert "cupy-cuda12x" not in everything and "torch" not in everything
    for extra in ("scipy", "sklearn", "plot", "progress", "parallel", "dask", "jax", "examples"):
        assert installed_by(extra) <= everything, extra


@pytest.mark.parametrize("module", sorted(OPTIONAL))
def test_each_optional_module_is_installed_by_the_extra_named_for_it(module):
    dist, extra = OPTIONAL[module]
    assert extra in EXTRAS, f"{module}: no extra {extra!r} in pyproject.toml"
    assert bare(dist) in installed_by(extra)


def test_every_install_hint_names_an_extra_that_exists():
    files = [*ROOT.glob("nestopt/**/*.py"), *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*.py")]
    files.append(ROOT / "README.md")
    for path in files:
        for names in re.findall(r"nestopt\[([a-z0-9_, ]+)\]", path.read_text()):
            for name in names.split(","):
                assert name.strip() in EXTRAS, f"{path.relative_to(ROOT)} names nestopt[{names}]"


# -- the scripts' imports -------------------------------------------------------

# Imports a script makes only when the library is there or asked for: autodiff_bilevel.py
# lists the installed libraries and skips without any (tests/test_examples.py checks it);
# the benchmarks' CuPy branch runs only for the cupy backend (the cuda12 extra), and the
# autodiff benchmark measures the library named by --library.
CHOSEN_AT_RUN_TIME = {
    "autodiff_bilevel.py": {"jax", "torch"},
    "_bare.py": {"cupy", "cupyx"},
    "autodiff_overhead.py": {"jax", "torch"},
    "large_levels.py": {"jax", "jaxopt"},  # its jaxopt column is skipped, saying why
}


def guarded(node: ast.Try) -> bool:
    """Whether a ``try`` catches ImportError (its imports are optional for the script)."""
    caught = []
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        caught += [kind.id for kind in kinds if isinstance(kind, ast.Name)]
    return bool({"ImportError", "ModuleNotFoundError", "Exception"} & set(caught))


def needed_modules(path: Path) -> set[str]:
    """Top-level modules the script imports, itself or through the nestopt names it uses."""
    local = {p.stem for p in path.parent.glob("*.py")}
    modules: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Try) and guarded(node):
            for child in node.orelse + node.finalbody:
                visit(child)
            return
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
            if node.module.split(".")[0] == "nestopt":
                for alias in node.names:
                    modules.update(FEATURES.get(alias.name, ()))
        elif isinstance(node, ast.Attribute):
            modules.update(FEATURES.get(node.attr, ()))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    modules -= local | {"__future__", "nestopt"} | set(sys.stdlib_module_names)
    return modules - CHOSEN_AT_RUN_TIME.get(path.name, set())


def distribution_of(module: str) -> str:
    if module in OPTIONAL:
        return OPTIONAL[module][0]
    return {"numpy": "numpy", "array_api_compat": "array-api-compat"}.get(module, module)


SCRIPT_EXTRAS = {
    "benchmarks/constrained_peers.py": "bench-peers",
    "benchmarks/_bolib_casadi.py": "bench-peers",
}


@pytest.mark.parametrize(
    ("folder", "extra"),
    [("examples", "examples"), ("docs/scripts", "docs"), ("benchmarks", "bench")],
)
def test_scripts_need_only_what_their_extra_installs(folder, extra):
    scripts = sorted((ROOT / folder).glob("*.py"))
    assert scripts
    for script in scripts:
        # The peer benchmark and its CasADi formulas need the peers' own extra.
        own = SCRIPT_EXTRAS.get(f"{folder}/{script.name}", extra)
        provided = installed_by(own)
        for module in needed_modules(script):
            assert bare(distribution_of(module)) in provided, (
                f"{folder}/{script.name} needs {module!r} ({distribution_of(module)}), "
                f'which pip install ".[{own}]" does not install'
            )


def test_the_import_scan_sees_nestopt_features_used_through_attributes(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(
        "import nestopt\nfrom nestopt.problems import data_poisoning\n"
        "def main():\n    import tqdm\n    return nestopt.solve_many\n"
        "try:\n    import jax\nexcept ImportError:\n    jax = None\n"
    )
    assert needed_modules(script) == {"joblib", "sklearn", "tqdm"}


# -- a missing package names its extra ----------------------------------------


def hide(monkeypatch, name):
    """Make ``import name`` (and its submodules) fail in this process."""
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        monkeypatch.setitem(sys.modules, key, None)
    monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(
    ("module", "extra", "call"),
    [
        (
            "scipy",
            "scipy",
            lambda: nestopt.problems.group_ridge(n_features=8, n_samples=20, n_groups=2, per_row=4),
        ),
        ("sklearn", "sklearn", lambda: nestopt.problems.data_poisoning()),
        ("joblib", "parallel", lambda: nestopt.solve_many(quad2(), [quad2().x0])),
        ("matplotlib", "plot", lambda: nestopt.plot.convergence({"history": {}})),
    ],
)
def test_a_missing_package_names_its_extra(monkeypatch, module, extra, call):
    import nestopt.plot  # noqa: F401  (imported before matplotlib is hidden; it imports lazily)

    hide(monkeypatch, module)
    with pytest.raises(ImportError, match=re.escape(f'pip install "nestopt[{extra}]"')):
        call()


def test_progress_without_tqdm_names_its_extra(monkeypatch):
    hide(monkeypatch, "tqdm")
    problem = quad2()
    with pytest.warns(nestopt.NestoptWarning, match=re.escape('pip install "nestopt[progress]"')):
        nestopt.solve(problem, problem.x0, progress=True)


def quad2():
    return nestopt.problems.quad(2, 2, seed=0)


def test_group_ridge_builds_with_scipy():
    pytest.importorskip("scipy")
    problem = nestopt.problems.group_ridge(n_features=8, n_samples=20, n_groups=2, per_row=4)
    assert np.all(np.isfinite(nestopt.to_numpy(problem.x0[0])))


# -- the docs show no path of the machine they were written on -------------------


def test_docs_show_no_local_paths():
    local = re.compile(r"(?<![\w.-])(/home/|/Users/|/work/|/root/|[A-Z]:\\Users\\)")
    for path in [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not local.search(line), f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
