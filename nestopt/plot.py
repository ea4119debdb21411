"""Plots of nestopt results (matplotlib is imported on first use)."""

from __future__ import annotations

from typing import Any

from ._extras import require as _require

__all__ = ["convergence"]


def convergence(result: Any, ax: Any = None, *, label: str | None = None) -> Any:
    """Plot the projected hypergradient norm of a `solve` run per iteration.

    Parameters
    ----------
    result : SolveResult
        What `nestopt.solve` returned; its ``history`` is plotted.
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure's axes).
    label : str, optional
        Legend label (default: the optimizer and method).

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = _require("matplotlib.pyplot", "nestopt.plot")
    history = result["history"]
    if ax is None:
        _, ax = plt.subplots()
    norms = history["grad_norm"]
    iterations = range(len(norms))
    if label is None:
        label = f"{result.get('optimizer', '')} ({result.get('method', '')})".strip()
    ax.semilogy(iterations, [max(g, 1e-300) for g in norms], marker=".", label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("projected hypergradient norm")
    ax.set_title("nestopt.solve convergence")
    ax.grid(True, which="both", alpha=0.3)
    if label:
        ax.legend()
    return ax
