"""Choose an SVM's regularization C by bilevel optimization, and certify the kink it ends on.

The follower is the dual of a soft-margin linear SVM on 60 training points of
scikit-learn's breast cancer data (box ``0 <= a_i <= C`` and the equality
``y^T a = 0``); the leader picks ``t = log C`` to minimize a squared
validation loss on 40 held-out points (`nestopt.problems.svm_dual`).

As C moves, support vectors enter and leave the box's faces, so the
validation loss is piecewise smooth in ``t``, and its minimum here sits on
a kink: one bound of the dual is weakly active (at its face with a zero
multiplier). nestopt examines the kink's pieces (one small LP each) and
certifies a strict local minimum, or steps along a descending piece and
goes on. The answer is checked independently: the value function, each
point solved from scratch, is not lower at nearby C on either side.

    python examples/svm_hyperparameter.py [--data breast_cancer] [--start-C 0.01]
"""

import argparse
import time
import warnings

import numpy as np

import nestopt
from nestopt.problems import svm_dual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="breast_cancer", choices=["breast_cancer", "wine"])
    parser.add_argument("--start-C", type=float, default=0.01)
    args = parser.parse_args()

    problem = svm_dual(args.data, backend="numpy")
    n = problem.data["y"].size
    start = [np.array([np.log(args.start_C)]), np.zeros(n)]
    tic = time.perf_counter()
    with warnings.catch_warnings():
        # The final point is a kink: its weakly active bound is reported as a
        # DegeneracyWarning on the way; the result says what was decided about it.
        warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
        result = nestopt.solve(problem, start)
    seconds = time.perf_counter() - tic

    C = float(np.exp(result.x[0]))
    print(f"data: {args.data}, started at C = {args.start_C:g}")
    print(f"status: {result.status.name} after {result.nit} iterations, {seconds:.2f} s")
    print(f"message: {result.message}")
    print(f"C* = {C:.6g}  (log C* = {float(result.x[0]):.6f})")
    print(f"validation loss: {result.fun:.10f}")
    print(f"weakly active rows of the SVM dual: {', '.join(result.weakly_active[2]) or 'none'}")
    support = int(np.sum(np.asarray(result.xs[1]) > 1e-12 * C))
    print(f"support vectors: {support} of {n}")

    # Independent check: the value function, every point solved cold.
    def loss(log_c: float) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nestopt.DegeneracyWarning)
            r = nestopt.best_response(problem, [np.array([log_c]), np.zeros(n)])
        return float(r.fun)

    steps = (-1e-2, -1e-3, 1e-3, 1e-2)
    lowest = min(loss(float(result.x[0]) + s) - result.fun for s in steps)
    print(f"value function at log C* +- 1e-3, 1e-2, minus the loss at C*: {lowest:.3e} (lowest)")


if __name__ == "__main__":
    main()
