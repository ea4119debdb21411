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
its true residual with the product that also gives ``B^T y``; the two products
of the symmetry probe of ``hvp``, made once per level object, are left out
(a counted warm-up call makes them before the timed rounds).
Also the cold hypergradient (the follower solved from zero first) and the
peak resident memory of the process (which holds no ``p x p`` matrix).

Where jax and jaxopt are importable, jaxopt's implicit differentiation runs in
the same process on the same data: ``jaxopt.implicit_diff.custom_root`` on the
follower's optimality condition ``grad_theta f_2 = 0`` with
``jaxopt.linear_solve.solve_cg`` to the same relative residual, the follower's
solution given (jaxopt checks nothing about it), the data as
``jax.experimental.sparse.BCOO``, float64, ``jax.jit`` of ``jax.grad``:
``jaxopt_cold_s`` includes the compile, ``jaxopt_warm_s`` is the median of
the calls after it, timed in turns with nestopt and the bare CG (round after
round, the order rotating, so that the machine's load hits all three alike). Otherwise those
columns are skipped with the reason printed.

A second table (issue 24) times a *box-constrained* large follower,
`nestopt.problems.nnls(p)` (nonnegative least squares on sparse data, about
half of its bounds active): nestopt's cold hypergradient (the follower solved
from zero by projected Newton-CG on its free variables, then one adjoint CG on
them), with the Hessian as products (``hvp``) and as a ``scipy.sparse``
matrix, against SciPy's L-BFGS-B on the follower plus one
``scipy.sparse.linalg.cg`` solve of the adjoint system on its free variables
(the peer a user would write). Peak traced memory (``tracemalloc``, NumPy's
allocations included) of each, in a separate untimed call.

    python benchmarks/large_levels.py [--quick] [--threads N] [--parts ridge,nnls]
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc
from dataclasses import replace
from typing import Any

import numpy as np
from _common import limit_threads, machine_info, parser, print_machine, print_table, write_json

import nestopt
from nestopt.problems import group_ridge, nnls

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


def jaxopt_build(problem: Any, lam: Any, theta: Any, rtol: float) -> tuple[Any, float] | str:
    """jaxopt's hypergradient function and its cold time (compile included), or why not."""
    try:
        import jax  # noqa: F401
        import jaxopt  # noqa: F401
    except ImportError as exc:
        return f"jax/jaxopt not importable ({exc})"
    tic = time.perf_counter()
    grad = jaxopt_hypergradient(problem, theta, rtol)
    grad(lam).block_until_ready()
    return grad, time.perf_counter() - tic


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
    counted, calls = _counting(problem)
    nestopt.hypergradient(counted, xs)  # the once-per-level-object symmetry probe
    calls[0] = 0
    g = nestopt.hypergradient(counted, xs)
    hvp_nestopt = calls[0]
    calls[0] = 0
    g_bare, iterations = bare_hypergradient(counted, xs[0], xs[1], rtol)
    hvp_bare = calls[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before jax is loaded
    built = jaxopt_build(problem, lam, xs[1], rtol)
    fns = {
        "nestopt": lambda: nestopt.hypergradient(problem, xs),
        "bare": lambda: bare_hypergradient(problem, xs[0], xs[1], rtol),
    }
    if isinstance(built, str):
        print(f"  jaxopt columns skipped: {built}", flush=True)
    else:
        jaxopt_grad = built[0]
        fns["jaxopt"] = lambda: jaxopt_grad(lam).block_until_ready()
    # In turns, round after round: a drift in the machine's load hits every side alike. The
    # order rotates from round to round, so that no side always runs right after jax's
    # (whose worker threads may still be busy when its call returns).
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            tic = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - tic)
    ours, bare = np.array(times["nestopt"]), np.array(times["bare"])
    row = {
        "p": p,
        "samples": samples,
        "cold_s": cold_s,
        "nestopt_s": float(np.median(ours)),
        "bare_cg_s": float(np.median(bare)),
        "ratio": float(np.median(ours / bare)),
        "hvp_nestopt": hvp_nestopt,
        "hvp_bare": hvp_bare,
        "cg_iterations_bare": iterations,
        "rel_diff": float(np.max(np.abs(g - g_bare)) / np.max(np.abs(g_bare))),
        "peak_rss_MB": peak,
    }
    if not isinstance(built, str):
        warm = np.array(times["jaxopt"])
        out = np.asarray(jaxopt_grad(lam))
        row.update(
            jaxopt_cold_s=built[1],
            jaxopt_warm_s=float(np.median(warm)),
            jaxopt_rel_diff=float(np.max(np.abs(out - g)) / np.max(np.abs(g))),
            nestopt_over_jaxopt_warm=float(np.median(ours / warm)),
            bare_over_jaxopt_warm=float(np.median(bare / warm)),
        )
    print(f"  p={p}: nestopt {row['nestopt_s']:.3g} s, bare CG {row['bare_cg_s']:.3g} s, "
          f"ratio {row['ratio']:.3g}", flush=True)  # fmt: skip
    return row


def scipy_nnls_hypergradient(problem: Any, x: Any) -> tuple[Any, Any]:
    """L-BFGS-B on the nnls follower, then one CG on its free block: ``(y, grad F)``."""
    import scipy.sparse.linalg as sl
    from scipy.optimize import minimize

    d = problem.data
    M, C, rho = d["M"], d["C"], d["ridge"]
    MT = M.T.tocsr()
    b = d["b0"] + C @ x
    p = M.shape[1]

    def fun(y: Any) -> tuple[float, Any]:
        r = M @ y - b
        return 0.5 * float(r @ r) + 0.5 * rho * float(y @ y), MT @ r + rho * y

    res = minimize(
        fun, np.zeros(p), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * p,
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 100_000, "maxfun": 100_000},
    )  # fmt: skip
    y = res.x
    mask = (~((y <= 0.0) & (fun(y)[1] > 0.0))).astype(float)

    def free_block(v: Any) -> Any:
        v = mask * v
        return mask * (MT @ (M @ v) + rho * v)

    A = sl.LinearOperator((p, p), matvec=free_block)
    w, _ = sl.cg(A, mask * (y - d["y_target"]), rtol=0.01 * np.sqrt(np.finfo(float).eps))
    return y, d["mu"] * x + C.T @ (M @ w)


def _peak_MB(fn: Any) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def nnls_case(p: int, repeats: int) -> dict[str, Any]:
    x = np.linspace(-0.5, 0.5, 5)
    problems = {h: nnls(p, hessian=h) for h in ("hvp", "sparse")}
    fns = {
        h: (lambda pr=pr: nestopt.hypergradient(pr, [x, np.zeros(p)])) for h, pr in problems.items()
    }
    fns["scipy"] = lambda: scipy_nnls_hypergradient(problems["hvp"], x)
    times: dict[str, list[float]] = {name: [] for name in fns}
    values: dict[str, Any] = {}
    for _ in range(repeats):  # in turns: load drifts hit every side alike
        for name, fn in fns.items():
            tic = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - tic)
    y_ref, g_ref = values["scipy"]
    response = nestopt.best_response(problems["hvp"], [x, np.zeros(p)])
    follower = problems["hvp"].levels[1]

    def kkt(y: Any) -> float:  # the natural residual |y - max(y - grad_y f, 0)|, no solver
        g_y = follower.grad(x, y)[1]
        return float(np.max(np.abs(y - np.maximum(y - g_y, 0.0))))

    y = np.asarray(response.xs[1])
    row: dict[str, Any] = {
        "p": p,
        "active": int(np.sum(y == 0.0)),
        "newton_its": response.level_nit[1],
        "y_diff": float(np.max(np.abs(y - y_ref))),
        "kkt_nestopt": kkt(y),
        "kkt_scipy": kkt(y_ref),
    }
    scipy_s = float(np.median(times["scipy"]))
    for h in ("hvp", "sparse"):
        g = np.asarray(values[h])
        row[f"{h}_s"] = float(np.median(times[h]))
        row[f"{h}_ratio"] = float(np.median(np.array(times[h]) / np.array(times["scipy"])))
        row[f"{h}_rel_diff"] = float(np.max(np.abs(g - g_ref)) / np.max(np.abs(g_ref)))
    row["scipy_s"] = scipy_s
    for name, fn in fns.items():
        row[f"{name}_MB"] = _peak_MB(fn)
    print(f"  nnls p={p}: hvp {row['hvp_s']:.3g} s, sparse {row['sparse_s']:.3g} s, "
          f"L-BFGS-B + CG {scipy_s:.3g} s", flush=True)  # fmt: skip
    return row


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--parts", default="ridge,nnls", help="which tables (default ridge,nnls)")
    args = p.parse_args()
    parts = set(args.parts.split(","))
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
    results: dict[str, Any] = {"machine": info}
    if "ridge" in parts:
        rows = [case(p, n, 3 if args.quick else 9) for p, n in sizes]
        print_table(
            rows,
            list(rows[0]),
            f"group_ridge at lam = {LAMBDA}, follower solved: hypergradient against one bare "
            "scipy CG of its adjoint system and jaxopt's warm call, timed in turns (median "
            "seconds; ratios: medians of per-round ratios; peak RSS before jax is loaded)",
        )
        results["rows"] = rows
    if "nnls" in parts:
        box = [nnls_case(p, 3) for p in ((10_000,) if args.quick else (10_000, 100_000))]
        print_table(
            box,
            list(box[0]),
            "nnls(p), box y >= 0 (issue 24): nestopt.hypergradient from y = 0 (hvp, sparse) "
            "against SciPy L-BFGS-B + one CG on the free block (median seconds in turns; "
            "ratio: median of per-round ratios to SciPy; rel_diff: hypergradient against "
            "SciPy's, relative to its largest entry; y_diff: max abs; kkt: natural residual "
            "of each follower solution; MB: peak traced memory)",
        )
        results["nnls"] = box
    write_json("large_levels", results)


if __name__ == "__main__":
    main()
