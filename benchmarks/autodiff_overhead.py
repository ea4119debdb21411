"""Per-call cost of the array conversions in ``nestopt.autodiff``.

For level 3 of ``softplus_levels(3, d)`` (small: d = 3, D = 9; medium:
d = 100, D = 300) each oracle of a ``jax_level`` and a ``torch_level`` built
from the same objective is timed per call:

- ``native``: called with the library's own arrays (JAX arrays; torch
  tensors), so nothing is converted (JAX outputs are waited for with
  ``block_until_ready``);
- ``numpy``: called with NumPy arrays, as nestopt does on its default
  backend: inputs converted in, output converted back;
- ``torch``: ``jax_level`` called with torch tensors (DLPack both ways);
- ``analytic``: the hand-written NumPy oracle of ``softplus_levels``, for scale.

``overhead`` is ``numpy - native``: what the conversions cost per call.
``first_call`` is the first call on NumPy inputs, which traces ``fun`` and,
for JAX, compiles.
Minima over repeats (each a loop of calls, the kinds timed in turns), after
a warm-up that compiles.
Skips a library that is not installed.

    python benchmarks/autodiff_overhead.py [--quick] [--threads N] [--library jax|torch]
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import (
    limit_threads,
    machine_info,
    measure_alternating,
    parser,
    print_machine,
    print_table,
)
from _common import write_json as write_results

import nestopt.autodiff
from nestopt.problems import softplus_levels

ORACLES = ("grad", "hess", "hvp", "hess_dir")


def objective(lib: str, data: dict[str, Any], k: int) -> Callable[..., Any]:
    """``f_k`` of softplus_levels, written in JAX or torch."""
    Q, c, W, beta = data["Q"][k - 1], data["c"][k - 1], data["W"][k - 1], data["beta"]
    if lib == "jax":
        import jax.numpy as jnp

        Q, c, W = jnp.asarray(Q), jnp.asarray(c), jnp.asarray(W)

        def f(*xs: Any) -> Any:
            x = jnp.concatenate(xs)
            return 0.5 * x @ (Q @ x) + c @ x + beta * jnp.logaddexp(W @ x, 0.0).sum()

        return f
    import torch

    Q, c, W = (torch.as_tensor(a) for a in (Q, c, W))

    def g(*xs: Any) -> Any:
        x = torch.cat(xs)
        z = W @ x
        return 0.5 * x @ (Q @ x) + c @ x + beta * torch.logaddexp(z, torch.zeros_like(z)).sum()

    return g


def per_call(fns: dict[str, Callable[[], Any]], calls: int, repeats: int) -> dict[str, Any]:
    """Seconds per call of each of ``fns``: the fastest of ``repeats`` loops of ``calls`` calls.

    The functions are timed in turns, and the minimum is taken (as ``timeit``
    advises): the differences measured here are microseconds, and on a
    loaded machine medians carry more noise than that. ``'<kind>-native'``
    is the difference of the minima of ``kind`` and ``'native'``.
    """

    def loop(fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(calls):
                fn()

        return run

    timed = measure_alternating({k: loop(f) for k, f in fns.items()}, repeats=repeats)
    out = {k: min(r[k] for r in timed["times"]) / calls for k in fns}
    if "native" in fns:
        for k in fns:
            out[f"{k}-native"] = out[k] - out["native"]
    return out


def cases(lib: str, d: int, args: Any) -> list[dict[str, Any]]:
    problem = softplus_levels(3, d, seed=0)
    k, D = 3, problem.dim
    adapter = nestopt.autodiff.jax_level if lib == "jax" else nestopt.autodiff.torch_level
    level = adapter(objective(lib, problem.data, k), problem.sizes[k - 1])
    rng = np.random.default_rng(1)
    point = [rng.standard_normal(s) for s in problem.sizes]
    inputs: dict[str, list[Any]] = {"numpy": point + [rng.standard_normal(D)]}
    if lib == "jax":
        import jax

        inputs["native"] = [jax.device_put(a, jax.devices("cpu")[0]) for a in inputs["numpy"]]
    if importlib.util.find_spec("torch") is not None:
        import torch

        inputs["torch"] = [torch.from_numpy(a.copy()) for a in inputs["numpy"]]
        if lib == "torch":
            inputs["native"] = inputs.pop("torch")
    calls = max(3, args.calls if D < 50 else args.calls // 20)
    rows = []
    for name in ORACLES:
        row = oracle_row(lib, level, problem.levels[k - 1], name, inputs, calls, args.repeats)
        rows.append({"library": lib, "D": D, "oracle": name, **row})
        print(f"  {lib} D={D} {name}: done", flush=True)
    return rows


def oracle_row(
    lib: str,
    level: Any,
    analytic: Any,
    name: str,
    inputs: dict[str, list[Any]],
    calls: int,
    repeats: int,
) -> dict[str, Any]:
    """Per-call times of one oracle: analytic, and the adapter on each kind of input."""
    count = len(inputs["numpy"]) - (name not in ("hvp", "hess_dir"))
    args = inputs["numpy"][:count]
    if name == "hvp":
        *xs, v = args
        fns = {"analytic": lambda: analytic.hess(*xs) @ v}
    else:
        ref = getattr(analytic, name)
        fns = {"analytic": lambda: ref(*args)}
    truth = fns["analytic"]()
    oracle = getattr(level, name)
    wait = _jax_wait() if lib == "jax" else (lambda out: out)

    def timed(values: list[Any], native: bool) -> Callable[[], Any]:
        if native:
            return lambda: wait(oracle(*values))
        return lambda: oracle(*values)

    start = time.perf_counter()
    oracle(*args)  # the first call traces and, for JAX, compiles
    first = time.perf_counter() - start
    for kind, values in inputs.items():
        fns[kind] = timed(values[:count], kind == "native")
        error = np.max(np.abs(nestopt.to_numpy(fns[kind]()) - truth))
        assert error < 1e-10 * (1 + np.max(np.abs(truth))), (lib, name, kind, error)
    t = per_call(fns, calls, repeats)
    row = {"first_call_ms": 1e3 * first}
    row.update({f"{kind}_us": 1e6 * t[kind] for kind in fns})
    row["overhead_us"] = 1e6 * t["numpy-native"]
    row["overhead_pct"] = 100 * t["numpy-native"] / t["native"]
    if "torch" in fns:
        row["torch_overhead_us"] = 1e6 * t["torch-native"]
    return row


def _jax_wait() -> Callable[[Any], Any]:
    import jax

    return jax.block_until_ready


def conversion_costs(args: Any) -> list[dict[str, Any]]:
    """Each conversion alone, for one array of ``n`` float64 (microseconds).

    ``numpy_into_jit`` is the extra time of a jitted call given a NumPy
    argument instead of a JAX array (JAX copies it in); ``torch_into_jit``
    the same from a CPU tensor (a NumPy view by DLPack, then that copy).
    """
    return [conversion_row(n, args.repeats) for n in (9, 300, 90_000)]


def conversion_row(n: int, repeats: int) -> dict[str, Any]:
    def alone(fn: Callable[[], Any]) -> float:
        return 1e6 * per_call({"f": fn}, 2000, 3)["f"]

    x = np.random.default_rng(0).standard_normal(n)
    row: dict[str, Any] = {"floats": n}
    have_torch = importlib.util.find_spec("torch") is not None
    if have_torch:
        import torch

        t = torch.from_numpy(x.copy())
    if importlib.util.find_spec("jax") is not None:
        import jax

        add = jax.jit(lambda a: a + 1.0)
        j = jax.device_put(x, jax.devices("cpu")[0])
        out = add(j)
        fns = {
            "native": lambda: add(j).block_until_ready(),
            "numpy": lambda: add(x).block_until_ready(),
        }
        if have_torch:
            fns["torch"] = lambda: add(np.from_dlpack(t)).block_until_ready()
        times = per_call(fns, 200, repeats)
        row["numpy_into_jit"] = 1e6 * times["numpy-native"]
        row["jax_to_numpy"] = alone(lambda: np.asarray(out))
        if have_torch:
            row["torch_into_jit"] = 1e6 * times["torch-native"]
            row["jax_to_torch"] = alone(lambda: torch.from_dlpack(out))
    if have_torch:
        row["numpy_to_torch"] = alone(lambda: torch.from_dlpack(x))
        row["torch_to_numpy"] = alone(lambda: t.detach().numpy())
    return row


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=200, help="calls per timed loop (small D)")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--library", choices=["jax", "torch"], action="append", help="default: both")
    args = p.parse_args()
    if args.quick:
        args.calls, args.repeats = 50, 3
    limit_threads(args.threads)
    info = machine_info()
    print_machine(info)
    wanted = args.library or ["jax", "torch"]
    libs = [lib for lib in wanted if importlib.util.find_spec(lib) is not None]
    if not libs:
        print("neither JAX nor torch is installed: nothing to measure")
        return
    if "jax" in libs:
        import jax

        # Before any JAX array exists: constants made earlier would stay float32.
        jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    rows = [row for lib in libs for d in (3, 100) for row in cases(lib, d, args)]
    columns = ["library", "D", "oracle", "first_call_ms", "analytic_us", "native_us", "numpy_us"]
    columns += ["overhead_us", "overhead_pct"]
    columns += ["torch_us", "torch_overhead_us"] if any("torch_us" in r for r in rows) else []
    print_table(
        rows,
        columns,
        "microseconds per call, fastest loop (overhead: numpy - native)",
    )
    singles = conversion_costs(args)
    print_table(
        singles,
        list(dict.fromkeys(key for row in singles for key in row)),
        "one conversion alone, microseconds per array",
    )
    print(f"\n{time.perf_counter() - start:.0f} s")
    write_results("autodiff_overhead", {"machine": info, "oracles": rows, "single": singles})


if __name__ == "__main__":
    main()
