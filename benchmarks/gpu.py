"""Hypergradient of ``quad(3, d)`` on the CPU (NumPy) and on a GPU (CuPy).

For each ``d``, at the problem's solution (every Newton loop stops at
iteration 0, so the work is the Jacobian composition of DESIGN section 2),
``curvature='first_order'``:

- nestopt on NumPy, and the bare NumPy/SciPy linear algebra of the same
  products (`_bare.hypergradient`);
- nestopt on CuPy (problem built with ``backend='cupy'``, run inside
  ``nestopt.backend('cupy')``), and the bare cuBLAS/cuSOLVER work of the
  same products (CuPy matmuls, ``cupy.linalg.cholesky``,
  ``cupyx.scipy.linalg.solve_triangular``), timed with
  ``cupy.cuda.Device().synchronize()`` before each clock read.

Without CuPy or a GPU the GPU part is skipped with a message (exit 0) and
the CPU part still runs.

    python benchmarks/gpu.py [--quick] [--dims 400 1000 ...] [--threads N]
"""

from __future__ import annotations

from typing import Any

import _bare
import numpy as np
from _common import (
    limit_threads,
    machine_info,
    measure_alternating,
    paired_ratio,
    parser,
    print_machine,
    print_table,
    write_json,
)

import nestopt
from nestopt.problems import quad


def find_gpu() -> tuple[Any, str]:
    """``(cupy, description)`` of a usable GPU, or ``(None, why not)``."""
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed (pip install 'nestopt[cuda12]')"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver or no device
        return None, f"CuPy found no usable CUDA device ({exc})"
    if count == 0:
        return None, "CuPy reports no CUDA device"
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else name

    def version(v: int) -> str:
        return f"{v // 1000}.{v % 1000 // 10}"

    return cupy, (
        f"{name}; driver CUDA {version(cupy.cuda.runtime.driverGetVersion())}, "
        f"runtime CUDA {version(cupy.cuda.runtime.runtimeGetVersion())}, CuPy {cupy.__version__}"
    )


def time_pair(
    problem: Any, Qs: Any, cs: Any, x: Any, ops: Any, sync: Any, repeats: int
) -> tuple[float, float, float, Any]:
    """nestopt's and the bare time at the solution, their paired ratio, nestopt's result."""
    sizes = problem.data["sizes"]
    t = measure_alternating(
        {
            "nestopt": lambda: nestopt.hypergradient(
                problem, problem.solution, curvature="first_order"
            ),
            "bare": lambda: _bare.hypergradient(Qs, cs, sizes, x, ops),
        },
        repeats=repeats,
        warmup=2,
        sync=sync,
    )
    ratio = paired_ratio(t, "nestopt", "bare")
    return t["median"]["nestopt"], t["median"]["bare"], ratio, t["value"]["nestopt"]


def cpu_case(d: int, args: Any) -> dict[str, Any]:
    problem = quad(3, d, args.seed)
    Qs, cs = problem.data["Q"], problem.data["c"]
    x = np.concatenate(problem.solution)
    ours, bare, ratio, g = time_pair(problem, Qs, cs, x, _bare.kernels("numpy"), None, args.repeats)
    return {"cpu_s": ours, "cpu_bare_s": bare, "cpu_ratio": ratio, "_g": np.asarray(g)}


def gpu_case(cupy: Any, d: int, args: Any, g_cpu: Any) -> dict[str, Any]:
    sync = cupy.cuda.Device().synchronize
    with nestopt.backend("cupy"):
        problem = quad(3, d, args.seed, backend="cupy")
        Qs = [cupy.asarray(Q) for Q in problem.data["Q"]]
        cs = [cupy.asarray(c) for c in problem.data["c"]]
        x = cupy.concatenate(problem.solution)
        ours, bare, ratio, g = time_pair(
            problem, Qs, cs, x, _bare.kernels("cupy"), sync, args.repeats
        )
    out = {
        "gpu_s": ours,
        "gpu_bare_s": bare,
        "gpu_ratio": ratio,
        "max_abs_diff": float(np.max(np.abs(cupy.asnumpy(g) - g_cpu))),
    }
    del problem, Qs, cs, x, g
    cupy.get_default_memory_pool().free_all_blocks()
    return out


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dims", type=int, nargs="+", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    limit_threads(args.threads)
    dims = args.dims or ((400, 1000) if args.quick else (400, 1000, 2000, 4000))
    cupy, gpu = find_gpu()
    info = machine_info(
        backend="numpy" + (" and cupy" if cupy else ""),
        device="cpu" + (f" and {gpu}" if cupy else ""),
    )
    print_machine(info)
    if cupy is None:
        print(f"GPU part skipped: {gpu}. Running the CPU part only.")

    rows = []
    for d in dims:
        row = {"d": d, "D": 3 * d}
        row.update(cpu_case(d, args))
        if cupy is not None:
            row.update(gpu_case(cupy, d, args, row.pop("_g")))
        row.pop("_g", None)
        rows.append(row)
        print(
            f"  d={d}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)),
            flush=True,
        )

    columns = ["d", "D", "cpu_s", "cpu_bare_s", "cpu_ratio"]
    if cupy is not None:
        columns += ["gpu_s", "gpu_bare_s", "gpu_ratio", "cpu/gpu", "max_abs_diff"]
        for row in rows:
            row["cpu/gpu"] = row["cpu_s"] / row["gpu_s"]
    print_table(
        rows,
        columns,
        "quad(3, d) hypergradient at the solution, first_order (median seconds; "
        "ratio = nestopt / bare linear algebra on the same device, median of per-round "
        "ratios)",
    )
    write_json("gpu", {"machine": info, "gpu": gpu, "args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
