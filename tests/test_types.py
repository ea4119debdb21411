"""The package type-checks: mypy, strict, with the settings of pyproject.toml.

Arrays are typed ``Any`` (array API objects share no static type), so this
checks everything around them: optional values narrowed before use, the
signatures callers rely on, containers with their item types. It runs
mypy in a subprocess on the source tree (not on an installed copy), without a
cache, so a stale cache can neither hide an error nor invent one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 12 s of CPU: mypy reads NumPy's and matplotlib's stubs afresh
def test_package_passes_mypy_strict():
    pytest.importorskip("mypy", reason="mypy is not installed (it is in the 'test' extra)")
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        os.devnull,  # no cache: each run checks from scratch
        "nestopt",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"mypy found type errors:\n{done.stdout}{done.stderr}"
