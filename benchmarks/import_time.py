"""Time of ``import nestopt`` against ``import numpy, array_api_compat``.

What nestopt adds is the difference between importing all three and
importing its two dependencies alone (``import nestopt`` by itself loads
neither NumPy nor anything else heavy; NumPy comes with the first array).

Each import runs in a fresh interpreter, alternating between the cases, so
every run pays the full cost (no module cache in memory; the OS file cache
is warm after the first run, which is the case a user meets). Two numbers
per case: the wall time of the whole subprocess and the cumulative import
time that ``python -X importtime`` reports for the top-level packages.
Also lists which optional libraries ``import nestopt`` loaded (it must load
none: no SciPy, CuPy, torch or JAX). Target: nestopt adds <= 50 ms.

    python benchmarks/import_time.py [--quick] [--runs N]
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_info, parser, print_machine, print_table, write_json

CASES = {
    "python (empty)": "pass",
    "numpy, array_api_compat": "import numpy, array_api_compat",
    "nestopt alone": "import nestopt",
    "numpy, array_api_compat, nestopt": "import numpy, array_api_compat, nestopt",
}
OPTIONAL = ("scipy", "cupy", "torch", "jax", "matplotlib", "array_api_strict")
TOP = {
    "pass": (),
    "import numpy, array_api_compat": ("numpy", "array_api_compat"),
    "import nestopt": ("nestopt",),
    "import numpy, array_api_compat, nestopt": ("numpy", "array_api_compat", "nestopt"),
}
LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def environment() -> dict[str, str]:
    """The parent's environment, with the nestopt it imports first on the path."""
    import nestopt

    env = dict(os.environ)
    where = str(Path(nestopt.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (where, env.get("PYTHONPATH")) if p)
    return env


def run_once(code: str, env: dict[str, str], cwd: str) -> tuple[float, dict[str, float]]:
    """Wall seconds of the subprocess, and -X importtime's cumulative seconds per package."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    cumulative = {}
    for line in done.stderr.splitlines():
        match = LINE.match(line)
        # Top-level entries have no indentation before the package name.
        if match and len(match.group(3)) == 1 and match.group(4) in TOP[code]:
            cumulative[match.group(4)] = int(match.group(2)) * 1e-6
    return wall, cumulative


def loaded_optional(env: dict[str, str], cwd: str) -> list[str]:
    code = f"import sys, nestopt; print(' '.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="fresh interpreters per case")
    args = p.parse_args()
    runs = args.runs or (10 if args.quick else 30)
    info = machine_info()
    print_machine(info)
    env = environment()
    with tempfile.TemporaryDirectory() as cwd:
        for code in CASES.values():  # warm the OS file cache
            run_once(code, env, cwd)
        samples: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name in CASES}
        for _ in range(runs):
            for name, code in CASES.items():
                samples[name].append(run_once(code, env, cwd))
        optional = loaded_optional(env, cwd)
    rows: list[dict[str, Any]] = []
    for name, pairs in samples.items():
        rows.append(
            {
                "import": name,
                "wall_ms": 1e3 * statistics.median(w for w, _ in pairs),
                "importtime_ms": 1e3 * statistics.median(sum(c.values()) for _, c in pairs),
                "nestopt_entry_ms": (
                    1e3 * statistics.median(c["nestopt"] for _, c in pairs)
                    if "nestopt" in pairs[0][1]
                    else None
                ),
                "runs": len(pairs),
            }
        )
    base, ours = rows[1], rows[3]
    added_wall = ours["wall_ms"] - base["wall_ms"]
    added_import = ours["importtime_ms"] - base["importtime_ms"]
    own = ours["nestopt_entry_ms"]
    print_table(
        rows,
        ["import", "wall_ms", "importtime_ms", "nestopt_entry_ms", "runs"],
        "Fresh-interpreter import times (medians; importtime = cumulative -X importtime "
        "of the top-level packages; nestopt_entry = nestopt's own line)",
    )
    worst = max(added_wall, added_import, own)
    print(
        f"\nnestopt adds {added_wall:.1f} ms wall and {added_import:.1f} ms by -X importtime "
        f"(differences of medians), {own:.1f} ms by its own -X importtime line after NumPy "
        f"(target <= 50 ms: {'met' if worst <= 50 else 'MISSED'})"
    )
    print(f"optional libraries loaded by `import nestopt`: {', '.join(optional) or 'none'}")
    write_json(
        "import_time",
        {
            "machine": info,
            "args": vars(args),
            "rows": rows,
            "added_wall_ms": added_wall,
            "added_importtime_ms": added_import,
            "nestopt_entry_after_numpy_ms": own,
            "optional_loaded": optional,
        },
    )


if __name__ == "__main__":
    main()
