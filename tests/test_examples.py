"""Smoke tests of the example scripts: each runs and prints the answer it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nestopt

EXAMPLES = Path(__file__).parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path, backend: str | None = None) -> str:
    env = dict(os.environ)
    # The scripts import the same nestopt as these tests (installed or checkout).
    package_root = str(Path(nestopt.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    # The examples' matrices are small (at most 411 x 411): a threaded BLAS only
    # oversubscribes a busy CI machine (10x slower on 2 loaded cores) without speeding them up.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    if backend is None:
        env.pop("NESTOPT_BACKEND", None)
    else:
        env["NESTOPT_BACKEND"] = backend
    completed = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def number_after(text: str, label: str) -> float:
    match = re.search(re.escape(label) + r"\s*(\S+)", text)
    assert match, f"{label!r} not in the output:\n{text}"
    return float(match.group(1).rstrip(",)"))


def test_every_example_has_a_smoke_test():
    tested = {
        "quickstart_bilevel.py",
        "trilevel_known_optimum.py",
        "stackelberg_market.py",
        "data_poisoning.py",
        "backend_switching.py",
        "scenario_sweep.py",
        "autodiff_bilevel.py",
        "large_sparse_ridge.py",
        "capacitated_market.py",
        "svm_hyperparameter.py",
        "nonnegative_fit.py",
    }
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_quickstart_bilevel(backend_name, tmp_path):
    out = run_example("quickstart_bilevel.py", cwd=tmp_path, backend=backend_name)
    assert number_after(out, "error vs (x - t)/2:") <= 1e-12
    assert number_after(out, "distance to the closed form x* = t:") <= 1e-8


def test_trilevel_known_optimum(backend_name, tmp_path):
    out = run_example("trilevel_known_optimum.py", cwd=tmp_path, backend=backend_name)
    assert f"on {backend_name}: converged" in out
    assert number_after(out, "max distance to the known optimum:") <= 1e-8
    found = number_after(out, "top-level objective")
    known = number_after(out, "(known")
    assert found == pytest.approx(known, rel=1e-10)


def test_stackelberg_market(tmp_path):
    out = run_example("stackelberg_market.py", "--products", "4", cwd=tmp_path)
    assert "converged" in out
    assert number_after(out, "max distance to the closed-form equilibrium:") <= 1e-8
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s+\d", line)]
    assert len(rows) == 4


def test_scenario_sweep(tmp_path):
    pytest.importorskip("joblib")
    out = run_example("scenario_sweep.py", "--scenarios", "6", "--out", "sweep.png", cwd=tmp_path)
    assert out.startswith("6/6 scenarios converged")
    assert number_after(out, "max distance of q1 to the closed form:") <= 1e-8
    assert "results identical at 1 and 2 workers: True" in out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s*\d\.\d{3}\s", line)]
    assert [float(row[0]) for row in rows] == pytest.approx([1.0, 1.4, 1.8, 2.2, 2.6, 3.0])
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_backend_switching(tmp_path):
    out = run_example("backend_switching.py", cwd=tmp_path)
    assert number_after(out, "numpy: x* =") == pytest.approx(-6 / 11, abs=1e-8)
    assert "array_api_strict: max difference from numpy" in out
    assert out.strip().endswith("all backends agree with numpy and the known optimum: True")


@pytest.mark.parametrize(
    ("library", "backend"), [("jax", None), ("torch", None), ("torch", "torch")]
)
def test_autodiff_bilevel(library, backend, tmp_path):
    pytest.importorskip(library)
    if backend is not None:
        pytest.importorskip(backend)
    out = run_example("autodiff_bilevel.py", "--library", library, cwd=tmp_path, backend=backend)
    assert f"objectives written in {library}" in out
    assert f"solved on {backend or 'numpy'}" in out
    # The lower level is solved by Newton to its tolerance: the hypergradient is exact to that.
    assert number_after(out, "error vs the closed form:") <= 1e-10
    assert number_after(out, "x* = A^-1 sinh(t):") <= 1e-8
    assert number_after(out, "distance to t:") <= 1e-8


def test_autodiff_bilevel_without_jax_or_torch_says_what_to_install(tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    for name in ("jax", "torch"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ModuleNotFoundError('no {name}')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocked))
    out = run_example("autodiff_bilevel.py", cwd=tmp_path)
    assert 'pip install "nestopt[jax]" or pip install "nestopt[torch]"; skipping' in out


def test_data_poisoning(tmp_path):
    out = run_example("data_poisoning.py", "--seeds", "2", cwd=tmp_path)
    assert not list(tmp_path.iterdir()), "without --out the example writes no file"
    assert "mean ± standard deviation over the 2" in out
    rows = re.findall(
        r"^\s*([\d.]+)\s+([\d.]+) ±\s+([\d.]+)\s+([\d.]+) ±\s+([\d.]+)"
        r"\s+([-+][\d.]+) ±\s+([\d.]+)\s+(\d)/2 splits$",
        out,
        flags=re.MULTILINE,
    )
    assert [float(r[0]) for r in rows] == [0.0, 0.1, 0.2, 0.5, 1.0], out
    bilevel = [float(r[1]) for r in rows]
    trilevel = [float(r[3]) for r in rows]
    # Standardized target: a useful model explains part of its unit variance, and
    # noise of unit size on the features hurts both models.
    assert all(0.2 < mse < 1.0 for mse in bilevel[:1] + trilevel[:1])
    assert bilevel[-1] > bilevel[0] and trilevel[-1] > trilevel[0]
    for row, bi, tri in zip(rows, bilevel, trilevel):
        assert float(row[5]) == pytest.approx(tri - bi, abs=2e-4)  # rounding of the printed means
    verdict = "more" if trilevel[-1] < bilevel[-1] else "not more"
    assert f"the trilevel model is {verdict} stable" in out


def test_data_poisoning_saves_the_plot_where_asked(tmp_path):
    out = run_example("data_poisoning.py", "--seeds", "1", "--out", "plot.png", cwd=tmp_path)
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["plot.png"]
    assert "plot saved to plot.png" in out


def test_large_sparse_ridge(tmp_path):
    # The defaults (10^5 features) at a 25th of the size; the defaults' gtol.
    out = run_example("large_sparse_ridge.py", "--features", "4000", cwd=tmp_path)
    assert "follower: 4,000 features, 2,000 training rows" in out
    assert number_after(out, "worst relative residual") <= 1e-9
    assert "iteration  1: validation error" in out  # progress is printed
    assert "solve: SUCCESS" in out
    final, first = re.search(r"\(\|grad\| (\S+), from (\S+);", out).groups()
    assert float(final) <= 1e-3 * float(first)
    before, after = re.search(r"validation error (\S+) -> (\S+);", out).groups()
    assert float(after) < float(before)
    assert "peak memory" in out


def test_capacitated_market(tmp_path):
    out = run_example("capacitated_market.py", cwd=tmp_path)
    assert out.startswith("converged")
    assert number_after(out, "SciPy's followers at nestopt's q1 differ by") <= 1e-6
    ours = number_after(out, "leader's profit: nestopt")
    theirs = number_after(out, "SciPy's best")
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert number_after(out, "shadow price of firm 2's shared capacity K2 = 4:") > 0


def test_svm_hyperparameter(tmp_path):
    pytest.importorskip("sklearn")
    out = run_example("svm_hyperparameter.py", cwd=tmp_path)
    assert "status: SUCCESS" in out
    assert "kink certified: 1 weakly active row, 2 pieces checked" in out
    # The independent check: no nearby C (each solved cold) has a lower validation loss.
    assert number_after(out, "minus the loss at C*:") >= 0.0
    assert number_after(out, "C* =") == pytest.approx(0.00257289, rel=1e-5)


def test_nonnegative_fit(tmp_path):
    out = run_example("nonnegative_fit.py", "--features", "3000", cwd=tmp_path)
    assert "solve: SUCCESS" in out
    assert "peak memory" in out
    ours = re.search(r"KKT natural residual: nestopt (\S+), SciPy (\S+)", out).groups()
    assert float(ours[0]) <= 1e-8 and float(ours[0]) < float(ours[1])
    assert number_after(out, "SciPy's follower at nestopt's x differs by") <= 1e-4
    assert number_after(out, "(L-BFGS-B + CG): relative difference") <= 1e-5
