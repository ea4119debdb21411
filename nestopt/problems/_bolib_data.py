"""The problems of `bolib` by name: the registry over the data modules.

How each problem is written down (a function returning a `Spec`, its sources
and discrepancies in the docstring) is described in `._bolib_spec`.
"""

from __future__ import annotations

from collections.abc import Callable

from ._bolib_linear import muu_quy_2003_ex1, muu_quy_2003_ex2, shimizu_aiyoshi_1981_ex2
from ._bolib_nlp import (
    aiyoshi_shimizu_1984_ex2,
    floudas_etal_2013,
    lampariello_sagratella_2017_ex23,
    outrata_1990_ex1a,
    outrata_1990_ex2d,
    outrata_1990_ex2e,
)
from ._bolib_qp import (
    bard_1998_02,
    bard_1998_05,
    clark_westerberg_1990a,
    colson_2002_bipa3,
    colson_2002_bipa5,
)
from ._bolib_spec import Spec
from ._bolib_special import de_silva_1978, outrata_1993_ex31, outrata_1994_ex31, yezza_1996_ex41

__all__ = ["PROBLEMS", "Spec"]

PROBLEMS: dict[str, Callable[[], Spec]] = {
    "ClarkWesterberg1990a": clark_westerberg_1990a,
    "Colson2002BIPA3": colson_2002_bipa3,
    "Colson2002BIPA5": colson_2002_bipa5,
    "b_1998_05": bard_1998_05,
    "b_1998_02": bard_1998_02,
    "ShimizuAiyoshi1981Ex2": shimizu_aiyoshi_1981_ex2,
    "MuuQuy2003Ex1": muu_quy_2003_ex1,
    "MuuQuy2003Ex2": muu_quy_2003_ex2,
    "Outrata1990Ex1a": outrata_1990_ex1a,
    "Outrata1990Ex2d": outrata_1990_ex2d,
    "Outrata1990Ex2e": outrata_1990_ex2e,
    "AiyoshiShimizu1984Ex2": aiyoshi_shimizu_1984_ex2,
    "FloudasEtal2013": floudas_etal_2013,
    "LamparielloSagratella2017Ex23": lampariello_sagratella_2017_ex23,
    "Yezza1996Ex41": yezza_1996_ex41,
    "Outrata1993Ex31": outrata_1993_ex31,
    "Outrata1994Ex31": outrata_1994_ex31,
    "DeSilva1978": de_silva_1978,
}
