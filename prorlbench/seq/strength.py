"""Refusing simulators and backbones that did not learn (issue 25).

A learned simulator scores every path of its dataset and builds its cases; a method's backbone
(``ctx.make_backbone``) proposes its paths. One whose validation HR@10 is below that of
recommending the most popular training items has not learned the data, and every number made
with it is noise that looks like a result (the committed study once scored its seed-2 ipg,
rec2inf and irn rows on ML-100K with a SASRec backbone at HR@10 0.043 < popularity's 0.053). So:

* a training or eval simulator below popularity raises :class:`WeakSimulator` from
  :func:`prorlbench.engine.prepare.prepare_dataset`, and the runner fails that dataset's cells with the
  one-line reason (the other datasets go on);
* a backbone below popularity raises it from ``make_backbone``: its cell fails;
* a simulator loaded from the cache is judged by the figures its metadata holds (``hr10``,
  ``popularity_hr10``), exactly as a freshly trained one.

The run key ``allow_weak_simulator = true`` (``--allow-weak-simulator``) turns the error into a
warning; the cells then record the reasons in their status (``weak_simulator``) and the report
marks their rows. Ground-truth simulators (``oracle``) are exact and never judged. A model is
judged by the validation HR@10 its plugin reports (``SimulatorInfo.hr10``; the harness adds
popularity's when the plugin leaves it out); one that reports none (a plugin simulator without
figures, or a dataset without a validation split) cannot be judged and passes.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..api import SimulatorInfo

log = logging.getLogger("prorlbench")

ALLOW_KEY = "allow_weak_simulator"
"""The run key (``[run]``, ``--allow-weak-simulator``) that lets weak models score anyway."""


class WeakSimulator(RuntimeError):
    """A learned simulator or backbone is below popularity on validation HR@10.

    Not a :class:`~prorlbench.errors.UserError` on purpose: the runner turns any other exception
    from preparing a dataset into failed cells of that dataset, so one weak simulator does not
    abort a grid over several datasets."""


def weak_reason(role: str, dataset: str, info: SimulatorInfo) -> str | None:
    """``"<role> on <dataset>: valid HR@10 a < popularity's b"`` when ``info`` is below popularity,
    else ``None`` (also when either figure is missing or not finite)."""
    hr, pop = info.hr10, info.popularity_hr10
    if not _finite(hr) or not _finite(pop) or not float(hr) < float(pop):  # type: ignore[arg-type]
        return None
    return f"{role} on {dataset}: valid HR@10 {float(hr):.4f} < popularity's {float(pop):.4f}"  # type: ignore[arg-type]


def check_strength(role: str, dataset: str, info: SimulatorInfo, allow: bool) -> str | None:
    """Raise :class:`WeakSimulator` when ``info`` is below popularity, unless ``allow``; then log a
    warning and return the reason (to record with the cells). ``None`` when it is not weak."""
    reason = weak_reason(role, dataset, info)
    if reason is None:
        return None
    if not allow:
        raise WeakSimulator(f"{reason}: it did not learn, and every number made with it would be "
                            f"noise; train it longer (its epochs, patience or min_steps keys) or set "
                            f"{ALLOW_KEY} = true to use it anyway (the report marks its rows)")
    log.warning("%s; used anyway (%s = true): the report marks its rows", reason, ALLOW_KEY)
    return reason


def with_popularity(data: Any, info: SimulatorInfo) -> SimulatorInfo:
    """``info`` with the popularity HR@10 of ``data``'s validation users filled in where a simulator
    plugin reported its own HR@10 but not popularity's (the built-in ones report both)."""
    import dataclasses

    from .seqdata import popularity_hr

    valid = data.sequences.get("valid", [])
    if not valid or not _finite(info.hr10) or _finite(info.popularity_hr10):
        return info
    return dataclasses.replace(info, popularity_hr10=popularity_hr(data, valid)["hr10"])


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
