"""The trilevel hypergradient of ``quad(3, 400)``: nestopt against hand-written JAX.

The JAX version is written the way a JAX user would write it without
nestopt: objectives as JAX functions, ``jax.hessian`` for their Hessians,
Newton loops (``lax.while_loop``) for the lower levels, implicit
differentiation with ``jnp.linalg.solve`` composed level by level, all under
one ``jax.jit``, float64. Both start the lower levels from ``problem.x0``
(a cold start: solves plus hypergradient). JAX's compile time is reported
apart from its run time. Skips (exit 0) when JAX is not installed.

    python benchmarks/jax_comparison.py [--quick] [--d D] [--threads N]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
from _common import (
    limit_threads,
    machine_info,
    measure,
    parser,
    print_machine,
    print_table,
    write_json,
)

import nestopt
from nestopt.problems import quad, quad_reference


def jax_hypergradient(jax: Any, Qs: Any, cs: Any, sizes: Any, tol: float, maxiter: int) -> Any:
    """A jitted ``(x1, x2_0, x3_0) -> hypergradient`` written directly in JAX."""
    jnp, lax = jax.numpy, jax.lax
    d1, d2, d3 = sizes
    s1, s2 = d1, d1 + d2
    Qs = [jnp.asarray(Q) for Q in Qs]
    cs = [jnp.asarray(c) for c in cs]

    def f(k: int, x: Any) -> Any:
        return 0.5 * x @ (Qs[k] @ x) + cs[k] @ x

    grad = [jax.grad(lambda x, k=k: f(k, x)) for k in range(3)]
    hess = [jax.hessian(lambda x, k=k: f(k, x)) for k in range(3)]

    def newton(step: Any, x0: Any) -> Any:
        """Newton iterations ``x <- x - step(x)`` until the gradient is below ``tol``."""

        def cond(state: Any) -> Any:
            _, gnorm, i = state
            return (gnorm > tol) & (i < maxiter)

        def body(state: Any) -> Any:
            x, _, i = state
            dx, gnorm = step(x)
            return x - dx, gnorm, i + 1

        x, _, _ = lax.while_loop(cond, body, (x0, jnp.asarray(jnp.inf), 0))
        return x

    def level3(x12: Any, x3: Any) -> tuple[Any, Any]:
        """Solve level 3 from ``x3``; return it and ``G3 = dx3*/dx_<3``."""

        def step(x3: Any) -> tuple[Any, Any]:
            x = jnp.concatenate([x12, x3])
            g = grad[2](x)[s2:]
            H = hess[2](x)
            return jnp.linalg.solve(H[s2:, s2:], g), jnp.max(jnp.abs(g))

        x3 = newton(step, x3)
        H = hess[2](jnp.concatenate([x12, x3]))
        return x3, -jnp.linalg.solve(H[s2:, s2:], H[s2:, :s2])

    def level2(x1: Any, x2: Any, x3: Any) -> tuple[Any, Any, Any]:
        """Solve level 2 (re-solving level 3 at every step); return both and ``dx_>1/dx1``."""

        def reduced(x2: Any, x3: Any) -> tuple[Any, Any, Any, Any]:
            x3, G3 = level3(jnp.concatenate([x1, x2]), x3)
            x = jnp.concatenate([x1, x2, x3])
            P = jnp.concatenate([jnp.eye(s2), G3])  # d x / d x_<=2
            g = P.T @ grad[1](x)
            H = P.T @ hess[1](x) @ P
            return x3, g, H, G3

        def step(state: Any) -> tuple[Any, Any]:
            x2, x3 = state[:d2], state[d2:]
            x3, g, H, _ = reduced(x2, x3)
            dx2 = jnp.linalg.solve(H[s1:, s1:], g[s1:])
            # x <- x - dx also moves x3 to its new solution: the next warm start.
            return jnp.concatenate([dx2, state[d2:] - x3]), jnp.max(jnp.abs(g[s1:]))

        state = newton(step, jnp.concatenate([x2, x3]))
        x2, x3 = state[:d2], state[d2:]
        x3, _, H, G3 = reduced(x2, x3)
        G2 = -jnp.linalg.solve(H[s1:, s1:], H[s1:, :s1])
        R = jnp.concatenate([G2, G3[:, :s1] + G3[:, s1:] @ G2])  # d x_>1 / d x1
        return x2, x3, R

    def hypergradient(x1: Any, x2: Any, x3: Any) -> Any:
        x2, x3, R = level2(x1, x2, x3)
        g = grad[0](jnp.concatenate([x1, x2, x3]))
        return g[:s1] + R.T @ g[s1:]

    return jax.jit(hypergradient)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--d", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads is not None:
        # XLA has its own thread pool; read once, when JAX starts.
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_cpu_multi_thread_eigen={'false' if args.threads == 1 else 'true'} "
            f"intra_op_parallelism_threads={args.threads}"
        ).strip()
    try:
        import jax
    except ImportError:
        print("skipped: JAX is not installed (pip install jax); nothing to compare against")
        return
    jax.config.update("jax_enable_x64", True)
    limit_threads(args.threads)
    d = args.d or (100 if args.quick else 400)
    info = machine_info(device=str(jax.devices()[0]))
    info["jax"] = f"{jax.__version__} ({jax.default_backend()})"
    info["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    print_machine(info)

    problem = quad(3, d, args.seed)
    Qs, cs, sizes = problem.data["Q"], problem.data["c"], problem.data["sizes"]
    rng = np.random.default_rng(args.seed)
    x1 = rng.standard_normal(d)
    xs = (x1, *problem.x0[1:])
    ref = quad_reference(Qs, cs, sizes)
    truth = ref["hessian"] @ x1 + ref["grad_at_zero"]
    tol = 0.01 * np.sqrt(np.finfo(np.float64).eps)  # nestopt's default lower-level tol

    start = time.perf_counter()
    fn = jax_hypergradient(jax, Qs, cs, sizes, tol, maxiter=50)
    args_jax = [jax.numpy.asarray(x) for x in xs]
    compiled = fn.lower(*args_jax).compile()
    compile_s = time.perf_counter() - start
    repeats = 5 if args.quick else 10
    jax_run = measure(lambda: compiled(*args_jax).block_until_ready(), repeats=repeats)
    ours = measure(lambda: nestopt.hypergradient(problem, xs), repeats=repeats)
    g_jax, g_ours = np.asarray(jax_run["value"]), np.asarray(ours["value"])

    def rel(a: Any, b: Any) -> float:
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    rows = [
        {
            "what": "nestopt.hypergradient (cold start)",
            "seconds": ours["median"],
            "rel_error": rel(g_ours, truth),
        },
        {"what": "JAX compile (trace + XLA)", "seconds": compile_s, "rel_error": None},
        {
            "what": "JAX run (compiled)",
            "seconds": jax_run["median"],
            "rel_error": rel(g_jax, truth),
        },
        {
            "what": "JAX compile + one run",
            "seconds": compile_s + jax_run["median"],
            "rel_error": None,
        },
    ]
    with_compile = (compile_s + jax_run["median"]) / ours["median"]
    without = jax_run["median"] / ours["median"]
    print_table(
        rows,
        ["what", "seconds", "rel_error"],
        f"quad(3, {d}): hypergradient at a random x1, lower levels from x0 "
        "(median seconds; error against the closed form)",
    )
    print(
        f"\nJAX / nestopt: {with_compile:.3g}x including compile, {without:.3g}x run only "
        f"(target nestopt >= 3x faster); |g_jax - g_nestopt| / |g| = {rel(g_jax, g_ours):.2e}"
    )
    write_json(
        "jax_comparison",
        {
            "machine": info,
            "args": vars(args),
            "d": d,
            "rows": rows,
            "ratio_with_compile": with_compile,
            "ratio_run_only": without,
            "agreement": rel(g_jax, g_ours),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
