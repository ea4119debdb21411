"""A matrix-free bilevel problem with up to 10^6 follower variables: nestopt against one bare CG.

`nestopt.problems.group_ridge(p)`: per-group ridge weights (10) of a sparse
regression with ``p`` features. At a point where the follower is solved,
nestopt's ``hypergradient`` (its Newton-CG convergence test, then one CG
solve of the adjoint system and one product with the cross block) is timed
against the floor: one bare ``scipy.sparse.linalg.cg`` solve of the same
adjoint system ``(X^T X / n + diag(e)) y = grad_theta f_1`` to the same
relative residual, with the same Hessian-vector products, plus ``B^T y``.
Both sides' Hessian-vector products are counted: nestopt's convergence test
is a Newton-CG step on the follower to a relative residual of 0.5 (it checks
that the point is solved rather than trusting it), and its adjoint solve checks
its true residual with one more product; the two products of the symmetry
probe of ``hvp``, made once per level object, are left out of the count (a
warm-up call makes them) but are in the timings' first round only.
Also the cold hypergradient (the follower solved from zero first) and the
peak resident memory of the process (which holds no ``p x p`` matrix).

Where jax and jaxopt are importable, jaxopt's implicit differentiation runs in
the same process on the same data: ``jaxopt.implicit_diff.custom_root`` on the
follower's optimality condition ``grad_theta f_2 = 0`` with
``jaxopt.linear_solve.solve_cg`` to the same relative residual, the follower's
solution given (jaxopt checks nothing about it), the data as
``jax.experimental.sparse.BCOO``, float64, ``jax.jit`` of ``jax.grad``:
``jaxopt_cold_s`` includes the compile, ``jaxopt_warm_s`` is the median of
the calls after it. Otherwise those columns are skipped with the reason printed.

    python benchmarks/large_levels.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import replace
from typing import Any

import numpy as np
from _common import limit_threads, machine_info, parser, print_machine, print_table, write_json

import nestopt
from nestopt.problems import group_ridge

LAMBDA = -6.0


def bare_hypergradient(problem: Any, lam: Any, theta: Any, rtol: float) -> tuple[Any, int]:
    """One scipy CG on the follower's Hessian (theta block), then the cross product."""
    import scipy.sparse.linalg as sl

    learner = problem.levels[1]
    G = lam.shape[0]
    p = theta.shape[0]
    zeros = np.zeros(G)

    def matvec(v: Any) -> Any:
        return learner.hvp(lam, theta, np.concatenate([zeros, v]))[G:]

    _, g_theta = problem.levels[0].grad(lam, theta)
    count = [0]

    def callback(_: Any) -> None:
        count[0] += 1

    operator = sl.LinearOperator((p, p), matvec=matvec, dtype=float)
    y, _ = sl.cg(operator, g_theta, rtol=rtol, maxiter=10_000, callback=callback)
    # G^T y = -B^T y with B = d grad_theta f_2 / d lam: the lam rows of hvp((0, y)).
    cross = learner.hvp(lam, theta, np.concatenate([zeros, y]))[:G]
    return -cross, count[0]


def jaxopt_hypergradient(problem: Any, theta: Any, rtol: float) -> Any:
    """``jit(grad(F_1))`` by jaxopt's ``custom_root`` + CG, at the follower's given solution.

    The data are arguments of the jitted function, not constants folded into it.
    """
    import functools

    import jax
    import jax.numpy as jnp
    import jaxopt
    from jax.experimental import sparse as jsparse

    jax.config.update("jax_enable_x64", True)
    source = problem.data
    data = {
        "X": jsparse.BCOO.from_scipy_sparse(source["X_train"]),
        "X_val": jsparse.BCOO.from_scipy_sparse(source["X_val"]),
        "y": jnp.asarray(source["y_train"]),
        "y_val": jnp.asarray(source["y_val"]),
        "groups": jnp.asarray(source["groups"]),
        "solved": jnp.asarray(theta),
    }
    n, n_val = source["X_train"].shape[0], source["X_val"].shape[0]

    def optimality(th: Any, lam: Any, d: dict) -> Any:  # grad_theta f_2
        return d["X"].T @ (d["X"] @ th - d["y"]) / n + jnp.exp(lam)[d["groups"]] * th

    solve = functools.partial(jaxopt.linear_solve.solve_cg, tol=rtol, maxiter=10_000)

    @jaxopt.implicit_diff.custom_root(optimality, solve=solve)
    def follower(init: Any, lam: Any, d: dict) -> Any:
        return init  # started at its solution: the solver's work is not timed

    def leader(lam: Any, d: dict) -> Any:
        r = d["X_val"] @ follower(d["solved"], lam, d) - d["y_val"]
        return r @ r / (2 * n_val)

    grad = jax.jit(jax.grad(leader))
    return lambda lam: grad(jnp.asarray(lam), data)


def jaxopt_columns(problem: Any, lam: Any, theta: Any, rtol: float, repeats: int, g: Any) -> dict:
    """jaxopt's cold (compile included) and warm times, or why they are missing."""
    try:
        import jax  # noqa: F401
        import jaxopt  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"jax/jaxopt not importable ({exc})"}
    tic = time.perf_counter()
    grad = jaxopt_hypergradient(problem, theta, rtol)
    out = grad(lam).block_until_ready()
    cold = time.perf_counter() - tic
    warm = []
    for _ in range(repeats):
        tic = time.perf_counter()
        grad(lam).block_until_ready()
        warm.append(time.perf_counter() - tic)
    ours = np.asarray(out)
    return {
        "jaxopt_cold_s": cold,
        "jaxopt_warm_s": float(np.median(warm)),
        "jaxopt_rel_diff": float(np.max(np.abs(ours - g)) / np.max(np.abs(g))),
    }


def _counting(problem: Any) -> tuple[Any, list[int]]:
    """The problem with its follower's Hessian-vector products counted."""
    calls = [0]
    learner = problem.levels[1]

    def hvp(*args: Any) -> Any:
        calls[0] += 1
        return learner.hvp(*args)

    levels = [problem.levels[0], replace(learner, hvp=hvp)]
    return nestopt.Problem(levels), calls


def case(p: int, samples: int, repeats: int) -> dict[str, Any]:
    problem = group_ridge(p, samples, 10, seed=0)
    lam = np.full(10, LAMBDA)
    tic = time.perf_counter()
    cold = nestopt.best_response(problem, [lam, np.zeros(p)])
    cold_s = time.perf_counter() - tic
    xs = cold.xs
    rtol = 0.01 * np.sqrt(np.finfo(float).eps)  # nestopt's default krylov_rtol
    ours, bare = [], []
    for _ in range(repeats):
        tic = time.perf_counter()
        g = nestopt.hypergradient(problem, xs)
        ours.append(time.perf_counter() - tic)
        tic = time.perf_counter()
        g_bare, iterations = bare_hypergradient(problem, xs[0], xs[1], rtol)
        bare.append(time.perf_counter() - tic)
    counted, calls = _counting(problem)
    nestopt.hypergradient(counted, xs)  # the once-per-level-object symmetry probe
    calls[0] = 0
    nestopt.hypergradient(counted, xs)
    hvp_nestopt = calls[0]
    calls[0] = 0
    bare_hypergradient(counted, xs[0], xs[1], rtol)
    hvp_bare = calls[0]
    ratio = float(np.median(np.array(ours) / np.array(bare)))
    row = {
        "p": p,
        "samples": samples,
        "cold_s": cold_s,
        "nestopt_s": float(np.median(ours)),
        "bare_cg_s": float(np.median(bare)),
        "ratio": ratio,
        "hvp_nestopt": hvp_nestopt,
        "hvp_bare": hvp_bare,
        "cg_iterations_bare": iterations,
        "rel_diff": float(np.max(np.abs(g - g_bare)) / np.max(np.abs(g_bare))),
        "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    jaxopt = jaxopt_columns(problem, lam, xs[1], rtol, repeats, g)  # after nestopt's peak
    if "skipped" in jaxopt:
        print(f"  jaxopt columns skipped: {jaxopt['skipped']}", flush=True)
    else:
        row.update(jaxopt)
        row["nestopt_over_jaxopt_warm"] = row["nestopt_s"] / jaxopt["jaxopt_warm_s"]
    print(f"  p={p}: nestopt {row['nestopt_s']:.3g} s, bare CG {row['bare_cg_s']:.3g} s, "
          f"ratio {ratio:.3g}", flush=True)  # fmt: skip
    return row


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    limit_threads(args.threads)
    if args.threads is not None:  # jax's CPU backend too (read when jax is first imported)
        os.environ.setdefault(
            "XLA_FLAGS",
            f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={args.threads}",
        )
    info = machine_info()
    print_machine(info)
    sizes = (
        ((10_000, 2_000), (100_000, 5_000))
        if args.quick
        else (
            (100_000, 5_000),
            (1_000_000, 20_000),
        )
    )
    rows = [case(p, n, 3 if args.quick else 5) for p, n in sizes]
    print_table(
        rows,
        list(rows[0]),
        f"group_ridge at lam = {LAMBDA}, follower solved: hypergradient against one bare "
        "scipy CG of its adjoint system (median seconds; ratio: median of per-round ratios)",
    )
    write_json("large_levels", {"machine": info, "rows": rows})


if __name__ == "__main__":
    main()
