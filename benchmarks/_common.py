"""What every benchmark script shares: timing, machine facts, tables, JSON.

Timings are medians of repeats after a warm-up run, taken with
``time.perf_counter``; a ``sync`` hook (``cupy.cuda.Device().synchronize``
on a GPU) is called before each clock read so asynchronous work is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

__all__ = [
    "RESULTS",
    "ROOT",
    "measure",
    "measure_alternating",
    "paired_ratio",
    "peak_memory",
    "machine_info",
    "print_machine",
    "print_table",
    "write_json",
    "parser",
    "fmt",
    "limit_threads",
]


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the ``--quick`` flag every script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small, fast version (< 1 minute)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit every BLAS pool to this many threads (default: as installed)",
    )
    return p


def measure(
    fn: Callable[[], Any],
    *,
    repeats: int = 5,
    warmup: int = 1,
    budget: float | None = None,
    sync: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs.

    With ``budget`` (seconds), repeats stop once their total exceeds it
    (at least one timed run is always made). Returns ``median``, ``min``,
    ``times`` (seconds) and ``value``, the last return value of ``fn``.
    """
    sync = sync or (lambda: None)
    value = None
    for _ in range(warmup):
        value = fn()
        sync()
    times: list[float] = []
    for _ in range(max(repeats, 1)):
        sync()
        start = time.perf_counter()
        value = fn()
        sync()
        times.append(time.perf_counter() - start)
        if budget is not None and sum(times) > budget:
            break
    return {
        "median": statistics.median(times),
        "min": min(times),
        "times": times,
        "value": value,
    }


def measure_alternating(
    fns: dict[str, Callable[[], Any]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    budget: float | None = None,
    sync: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Like `measure` for several functions, run in turns.

    Alternating makes drifts in machine load (other processes, CPU clocks)
    hit every function alike, so their ratios stay meaningful. Returns
    ``median`` and ``value`` (dicts by name) and ``times`` (one dict of
    seconds per round).
    """
    sync = sync or (lambda: None)
    values: dict[str, Any] = {}
    for _ in range(warmup):
        for name, fn in fns.items():
            values[name] = fn()
            sync()
    rounds: list[dict[str, float]] = []
    spent = 0.0
    for _ in range(max(repeats, 1)):
        times = {}
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            values[name] = fn()
            sync()
            times[name] = time.perf_counter() - start
        rounds.append(times)
        spent += sum(times.values())
        if budget is not None and spent > budget:
            break
    return {
        "median": {name: statistics.median(r[name] for r in rounds) for name in fns},
        "value": values,
        "times": rounds,
    }


def paired_ratio(result: dict[str, Any], num: str, den: str) -> float:
    """Median over the rounds of `measure_alternating` of ``time[num] / time[den]``.

    Each round runs both back to back, so a slow spell of the machine hits
    numerator and denominator alike: steadier than a ratio of medians.
    """
    return statistics.median(r[num] / r[den] for r in result["times"])


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc, which sees NumPy's buffers) while ``fn()`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


# -- the machine ----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    """Every BLAS/OpenMP pool loaded, with its thread count (threadpoolctl if present)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [
            f"{Path(p['filepath']).name} {p.get('version') or ''} ({p['num_threads']} threads)"
            for p in threadpool_info()
        ]
        return "; ".join(pools) or "none loaded"
    try:
        import numpy as np

        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy has no dict mode; not worth more effort
        return "unknown"


def limit_threads(threads: int | None) -> None:
    """Limit every loaded BLAS pool to ``threads`` (None: leave as installed).

    Call after NumPy and SciPy are imported. Needs threadpoolctl; without it
    set ``OPENBLAS_NUM_THREADS`` before starting Python instead.
    """
    if threads is None:
        return
    import numpy  # noqa: F401  (load the pools first)
    import scipy.linalg  # noqa: F401

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit(
            "--threads needs threadpoolctl (pip install threadpoolctl), or set "
            "OPENBLAS_NUM_THREADS before running"
        ) from None
    threadpool_limits(limits=threads)


def _commit() -> str:
    """The checkout's commit, marked dirty when nestopt/ has uncommitted changes."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "nestopt"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (nestopt/ modified)" if dirty else "")


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine_info(backend: str = "numpy", device: str = "cpu") -> dict[str, Any]:
    """CPU, threads, library versions, BLAS, backend and device of this run."""
    import numpy as np

    try:
        import scipy

        scipy_version = scipy.__version__
    except ImportError:
        scipy_version = "not installed"
    import nestopt

    try:
        threads = len(os.sched_getaffinity(0))
    except AttributeError:
        threads = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "threads": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy_version,
        "blas": _blas(),
        "nestopt": nestopt.__version__,
        "commit": _commit(),
        "backend": backend,
        "device": device,
        "platform": platform.platform(),
        "load_average": _load(),
    }


def print_machine(info: dict[str, Any]) -> None:
    print(
        f"machine: {info['cpu']}, {info['threads']} threads; Python {info['python']}, "
        f"numpy {info['numpy']}, scipy {info['scipy']}, BLAS {info['blas']}; "
        f"nestopt {info['nestopt']} ({info['commit']}), backend {info['backend']}, "
        f"device {info['device']}"
    )
    for key, value in info.items():
        if key not in {
            "cpu",
            "threads",
            "python",
            "numpy",
            "scipy",
            "blas",
            "nestopt",
            "commit",
            "backend",
            "device",
        }:
            print(f"  {key}: {value}")


# -- output ---------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A short, aligned-friendly rendering of one table cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0.0:
            return "0"
        if abs(value) >= 1e4 or abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.3g}"
    return str(value)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Print ``rows`` (dicts) as a Markdown-compatible table of ``columns``."""
    if title:
        print(f"\n{title}")
    cells = [[fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + " |")
    sys.stdout.flush()


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``benchmarks/results/<name>.json``; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {**payload, "load_average_end": _load()}
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2, default=_jsonable)
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return str(value)
