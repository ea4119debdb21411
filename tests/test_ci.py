"""The CI script: a temporary directory of its own, the package built and installed as a wheel,
and README's test command."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]
SCRIPT = (ROOT / ".ci" / "run").read_text()


def test_ci_works_in_a_fresh_temporary_directory_that_it_removes():
    assert 'work=$(mktemp -d "${TMPDIR:-/tmp}/nestopt-ci.XXXXXXXX")' in SCRIPT
    assert "trap 'rm -rf \"$work\"' EXIT" in SCRIPT
    # Every environment lives in it: no fixed path that two runs at once would share.
    for line in SCRIPT.splitlines():
        if "venv" in line and not line.lstrip().startswith("#"):
            assert '"$work/' in line, line


def test_ci_builds_the_sdist_and_wheel_and_runs_the_quickstart_from_the_wheel():
    assert '-m build --outdir "$work/dist"' in SCRIPT
    assert '-m pip install --quiet "${wheels[0]}"' in SCRIPT
    assert "examples/quickstart_bilevel.py" in SCRIPT
    assert (ROOT / "examples" / "quickstart_bilevel.py").is_file()


def test_ci_reads_the_test_command_from_the_readme():
    line = next(line for line in SCRIPT.splitlines() if line.startswith("test_command="))
    command = line.removeprefix("test_command=$(").removesuffix(")")
    found = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == 'pip install ".[test]" && pytest -n auto'
