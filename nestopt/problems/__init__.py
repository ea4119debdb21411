"""Problem families with known answers, for tests, benchmarks and examples.

Each function returns a `KnownProblem`: a ready `nestopt.Problem` with
analytic derivatives, a suggested start ``x0`` and, where known, the
``solution``.

- `quad`, `quad_reference`: n quadratic levels with closed-form responses.
- `softplus_levels`: quadratics plus softplus terms (nonlinear responses).
- `gkv_quadratic`: the trilevel quadratic of Giovannelli, Kent & Vicente, as
  in their code (GdKent/TSG), with its closed-form optimum.
- `gkv_quartic`: their scalar trilevel problem whose quartic lowest level has
  two minimizers; optimum ``x* = -6/11`` on the branch ``z = x + y``.
- `stackelberg_market`: leader, follower and sub-follower quantity game.
- `data_poisoning`: ridge hyperparameter learning against a poisoning attacker
  on scikit-learn's diabetes data (trilevel, or bilevel without the attacker).
- `bolib`, `bolib_names`: published constrained bilevel test problems (BOLIB,
  BASBLib) whose follower is strongly convex with active constraints (bounds,
  coupled linear and nonlinear inequalities), with refined, verified solutions.
- `constrained_trilevel`: two quadratic trilevel problems with bounds, a
  coupled inequality and an equality active below the top, solved in closed form.
- `group_ridge`: per-group ridge weights of a sparse regression with up to
  millions of features, a matrix-free follower (Hessian-vector products only).
- `svm_dual`: an SVM's ``C`` against the SVM dual (box, leader-dependent upper
  bound, equality row) on scikit-learn data, with a validation loss above;
  `svm_dual_kkt_residual` checks a dual point by its KKT conditions, without a solver.
- `box_qp`: a box-constrained QP follower whose matrix the leader sets.
- `nnls`: a nonnegative least-squares follower on sparse data with up to 10^5 and
  more variables, its Hessian as products, a sparse matrix or dense blocks.
"""

from ._base import KnownProblem
from ._bolib import bolib, bolib_names
from ._box_qp import box_qp
from ._ctrilevel import constrained_trilevel
from ._gkv import gkv_quadratic, gkv_quartic
from ._group_ridge import group_ridge
from ._market import stackelberg_market
from ._nnls import nnls
from ._poisoning import data_poisoning
from ._quad import quad, quad_reference
from ._softplus import softplus_levels
from ._svm import svm_dual, svm_dual_kkt_residual

__all__ = [
    "KnownProblem",
    "bolib",
    "bolib_names",
    "box_qp",
    "constrained_trilevel",
    "data_poisoning",
    "gkv_quadratic",
    "gkv_quartic",
    "group_ridge",
    "nnls",
    "quad",
    "quad_reference",
    "softplus_levels",
    "stackelberg_market",
    "svm_dual",
    "svm_dual_kkt_residual",
]
