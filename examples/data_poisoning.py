"""Does learning the ridge weight against a poisoning attacker make the model robust to noise?

Sato et al.'s trilevel model (leader: ridge weight on validation data;
attacker: perturbs the training features; learner: ridge fit) against the
bilevel model without the attacker, on scikit-learn's diabetes data. Each model
is solved with ``nestopt.solve`` on several random splits; its learned weights
are then scored on test features carrying Gaussian noise of growing size. The
table explains its columns; ``--out PATH`` also saves a plot of it.

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
    parser.add_argument("--out", metavar="PATH", help="save a plot of the table there (PNG)")
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

    n = args.seeds
    print(
        f"diabetes data: {n} random train/validation/test splits, attacker penalty {args.penalty}"
    )
    for name, what in (("bilevel", "no attacker"), ("trilevel", "with attacker")):
        label = f"{name} ({what})"
        print(
            f"  {label:25s} learned ridge weight exp(lam): "
            f"median {np.median(np.exp(lams[name])):.3g} over the splits"
        )
    print(
        "\nTest MSE on the standardized target when N(0, sigma^2) noise is added to the"
        "\nstandardized test features. Model columns: mean ± standard deviation over the"
        f" {n}\nsplits. 'trilevel - bilevel': the same for the difference of the two errors on"
        "\neach split (same split, same noise; negative when the trilevel model errs less)."
        "\n'trilevel better': on how many splits that difference is negative."
    )
    print(
        f"\n{'sigma':>6}  {'bilevel test MSE':>17}  {'trilevel test MSE':>17}"
        f"  {'trilevel - bilevel':>18}  trilevel better"
    )
    table = {name: np.array(values) for name, values in mse.items()}
    disagree = {"worse": [], "better": []}
    for i, sigma in enumerate(SIGMAS):
        b, t = table["bilevel"][:, i], table["trilevel"][:, i]
        diff = t - b  # paired: same split and same noise for both models
        better = int(np.sum(diff < 0))
        print(
            f"{sigma:6.2f}  {b.mean():7.4f} ± {b.std():6.4f}  {t.mean():7.4f} ± {t.std():6.4f}"
            f"  {diff.mean():+8.4f} ± {diff.std():6.4f}  {better}/{n} splits"
        )
        if 2 * better > n and diff.mean() > 0:
            disagree["worse"].append(f"{sigma:.2f}")
        elif 2 * better < n and diff.mean() < 0:
            disagree["better"].append(f"{sigma:.2f}")
    for on_average, sigmas in disagree.items():
        if sigmas:
            most = "better" if on_average == "worse" else "worse"
            print(
                f"\nat sigma = {', '.join(sigmas)} the trilevel model is {most} on most splits but"
                f" {on_average} on average:\n  it is {on_average} on the other splits by more than"
                f" it is {most} on these."
            )
    final = table["trilevel"][:, -1] - table["bilevel"][:, -1]
    verdict = "more" if final.mean() < 0 else "not more"
    print(
        f"\nat sigma = {SIGMAS[-1]} the trilevel model is {verdict} stable: mean test MSE "
        f"{table['trilevel'][:, -1].mean():.4f} vs {table['bilevel'][:, -1].mean():.4f},"
        f"\n  lower on {int(np.sum(final < 0))} of the {n} splits"
    )
    print(f"time {elapsed:.1f} s")
    if args.out is None:
        print("(pass --out PATH to save a plot of the table)")
        return

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, marker in (("bilevel", "o"), ("trilevel", "s")):
        values = table[name]
        ax.errorbar(
            SIGMAS,
            values.mean(axis=0),
            yerr=values.std(axis=0),  # the ± of the table
            marker=marker,
            capsize=3,
            label=name,
        )
    ax.set_xlabel("noise on test features (sigma, standardized units)")
    ax.set_ylabel(f"test MSE, mean ± std over {n} splits")
    ax.set_title("Ridge weight learned with and without an attacker")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
