"""Does learning the ridge weight against a poisoning attacker make the model robust to noise?

Sato et al.'s trilevel model (leader: ridge weight on validation data;
attacker: perturbs the training features; learner: ridge fit) against the
bilevel model without the attacker, on scikit-learn's diabetes data. Each model
is solved with ``nestopt.solve`` on several random splits; its learned weights
are then scored on test features carrying Gaussian noise of growing size.

    python examples/data_poisoning.py [--seeds 5] [--penalty 0.03] [--out data_poisoning.png]
"""

import argparse
import time

import numpy as np

import nestopt
from nestopt.problems import data_poisoning

SIGMAS = (0.0, 0.1, 0.2, 0.5, 1.0)


def test_mse(problem, theta, sigma, seed):
    """Mean squared test error when standardized test features get N(0, sigma^2) noise."""
    X, y = problem.data["X_test"], problem.data["y_test"]
    noise = np.random.default_rng(1000 + seed).standard_normal(X.shape)
    return float(np.mean(((X + sigma * noise) @ theta - y) ** 2))


def fit(seed, penalty, attacker):
    problem = data_poisoning(seed=seed, penalty=penalty, attacker=attacker)
    result = nestopt.solve(problem, problem.x0)
    theta = nestopt.to_numpy(result.xs[-1])
    lam = float(nestopt.to_numpy(result.x)[0])
    errors = [test_mse(problem, theta, sigma, seed) for sigma in SIGMAS]
    return lam, errors, result.success


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of random splits")
    parser.add_argument("--penalty", type=float, default=0.03, help="attacker cost weight")
    parser.add_argument("--out", default="data_poisoning.png", help="where to save the plot")
    args = parser.parse_args()

    started = time.perf_counter()
    mse = {"bilevel": [], "trilevel": []}
    lams = {"bilevel": [], "trilevel": []}
    for seed in range(args.seeds):
        for name, attacker in (("bilevel", False), ("trilevel", True)):
            lam, errors, success = fit(seed, args.penalty, attacker)
            if not success:
                print(f"warning: {name} solve for seed {seed} did not converge")
            lams[name].append(lam)
            mse[name].append(errors)
    elapsed = time.perf_counter() - started

    print(f"diabetes data, {args.seeds} random splits, attacker penalty {args.penalty}")
    for name in mse:
        lam = np.array(lams[name])
        print(f"  {name:8s} learned ridge weight exp(lam): median {np.median(np.exp(lam)):.3g}")
    print(
        f"\n{'sigma':>6}  {'bilevel test MSE':>17}  {'trilevel test MSE':>17}"
        f"  {'trilevel - bilevel':>18}  trilevel better"
    )
    table = {name: np.array(values) for name, values in mse.items()}
    for i, sigma in enumerate(SIGMAS):
        b, t = table["bilevel"][:, i], table["trilevel"][:, i]
        diff = t - b  # paired: same split and same noise for both models
        print(
            f"{sigma:6.2f}  {b.mean():7.4f} ± {b.std():6.4f}  {t.mean():7.4f} ± {t.std():6.4f}"
            f"  {diff.mean():+8.4f} ± {diff.std():6.4f}  {int(np.sum(diff < 0))}/{len(b)} splits"
        )
    gap = table["bilevel"][:, -1].mean() - table["trilevel"][:, -1].mean()
    verdict = "more" if gap > 0 else "not more"
    print(
        f"\nat sigma = {SIGMAS[-1]} the trilevel model is {verdict} stable: mean test MSE "
        f"{table['trilevel'][:, -1].mean():.4f} vs {table['bilevel'][:, -1].mean():.4f}"
    )
    print(f"time {elapsed:.1f} s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, marker in (("bilevel", "o"), ("trilevel", "s")):
        values = table[name]
        ax.errorbar(
            SIGMAS,
            values.mean(axis=0),
            yerr=values.std(axis=0),
            marker=marker,
            capsize=3,
            label=name,
        )
    ax.set_xlabel("noise on test features (sigma, standardized units)")
    ax.set_ylabel("test MSE (standardized target)")
    ax.set_title("Ridge weight learned with and without an attacker")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
