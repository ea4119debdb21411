"""The same trilevel solve on every array backend that is installed and usable.

The problem (`gkv_quartic`: a quartic lowest level, so the exact mode uses its
third derivatives) is built and solved once per backend by changing nothing
but the backend in force; the answers must agree with NumPy's and with the
known optimum x* = -6/11. Backends that are missing, or CuPy without a GPU,
are skipped with the reason.

    python examples/backend_switching.py
"""

import time

import numpy as np

import nestopt
from nestopt.problems import gkv_quartic, stackelberg_market


def solve_on(name):
    with nestopt.backend(name):
        answers = []
        started = time.perf_counter()
        for problem in (gkv_quartic(), stackelberg_market(products=20)):
            result = nestopt.solve(problem, problem.x0, options={"gtol": 1e-10})
            answers.append(np.concatenate([nestopt.to_numpy(x) for x in result.xs]))
        return answers, time.perf_counter() - started


if __name__ == "__main__":
    reference, elapsed = solve_on("numpy")
    known = -6 / 11
    print(f"numpy: x* = {reference[0][0]:.12f} (known {known:.12f}), {elapsed:.3f} s")
    agree = abs(reference[0][0] - known) <= 1e-8
    for name in nestopt.list_backends():
        if name == "numpy":
            continue
        try:
            nestopt.get_namespace(name)  # imports the library (CuPy: and finds a GPU)
            answers, elapsed = solve_on(name)
        except (ImportError, RuntimeError) as exc:
            print(f"{name}: skipped ({str(exc).splitlines()[0]})")
            continue
        gap = max(np.max(np.abs(a - r)) for a, r in zip(answers, reference))
        agree = agree and gap <= 1e-8
        print(f"{name}: max difference from numpy {gap:.1e}, {elapsed:.3f} s")
    print("all backends agree with numpy and the known optimum:", agree)
