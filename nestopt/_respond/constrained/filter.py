"""The filter of the line search: pairs ``(theta, phi)`` that no trial point may be worse than.

A trial point is acceptable to the filter when, against every stored pair,
it has a smaller constraint violation ``theta`` or a smaller barrier
objective ``phi`` (Fletcher & Leyffer; Wachter & Biegler 2006, section 2.3).
The acceptance tests of one step (switching condition, Armijo, sufficient
decrease of either measure) live here too, with IPOPT's constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Filter", "StepTest"]

GAMMA_THETA, GAMMA_PHI = 1e-5, 1e-8
DELTA, S_THETA, S_PHI, ETA_PHI = 1.0, 1.1, 2.3, 1e-8
GAMMA_ALPHA = 0.05


@dataclass
class Filter:
    pairs: list[tuple[float, float]] = field(default_factory=list)

    def acceptable(self, theta: float, phi: float) -> bool:
        return all(theta < t or phi < p for t, p in self.pairs)

    def add(self, theta: float, phi: float) -> None:
        """Store the margin around ``(theta, phi)``, dropping pairs it dominates."""
        pair = ((1.0 - GAMMA_THETA) * theta, phi - GAMMA_PHI * theta)
        self.pairs = [(t, p) for t, p in self.pairs if t < pair[0] or p < pair[1]]
        self.pairs.append(pair)

    def reset(self) -> None:
        self.pairs.clear()


@dataclass(frozen=True)
class StepTest:
    """The tests for one search direction at ``(theta, phi)`` with slope ``grad phi . d``."""

    theta: float
    phi: float
    slope: float
    theta_min: float
    theta_max: float

    def switching(self, alpha: float) -> bool:
        """The step is of "objective" type: descent large against the violation."""
        return self.slope < 0 and alpha * (-self.slope) ** S_PHI > DELTA * self.theta**S_THETA

    def armijo(self, alpha: float, phi_trial: float) -> bool:
        return phi_trial <= self.phi + ETA_PHI * alpha * self.slope

    def accept(self, alpha: float, theta_t: float, phi_t: float, flt: Filter) -> tuple[bool, bool]:
        """``(accepted, f_type)``: whether the trial is taken and whether it was an
        objective-type step (which does not augment the filter)."""
        if not (phi_t < float("inf")) or theta_t > self.theta_max:
            return False, False
        if not flt.acceptable(theta_t, phi_t):
            return False, False
        if self.theta <= self.theta_min and self.switching(alpha):
            return self.armijo(alpha, phi_t), True
        ok = (
            theta_t <= (1.0 - GAMMA_THETA) * self.theta
            or phi_t <= self.phi - GAMMA_PHI * self.theta
        )
        return ok, False

    def alpha_min(self) -> float:
        """Below this step the search gives up and restores feasibility."""
        if self.slope < 0:
            return GAMMA_ALPHA * float(
                min(
                    GAMMA_THETA,
                    GAMMA_PHI * self.theta / (-self.slope),
                    DELTA * self.theta**S_THETA / (-self.slope) ** S_PHI,
                )
            )
        return GAMMA_ALPHA * GAMMA_THETA
