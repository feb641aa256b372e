"""How a run's metrics and methods are shown: the ``metadata.json`` the runner stores.

The runner writes ``<run>/metadata.json`` from the metric and method specs (``MetricSpec.display``,
``decimals``, ``headline``, ``higher_is_better``; ``MethodSpec.display``), so the report needs no
plugin registry and a plugin metric is shown with its own name and precision. Metrics are listed
in their registration order, which is also the order of the table columns.

A folder without ``metadata.json`` (written before it existed, or made by hand) is shown with
:data:`LEGACY`: the built-in metrics as they were then (``tests/test_architecture.py`` checks it
still agrees with the built-in metric plugin); other metrics show their raw name, 3 decimals and no
direction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .colors import method_colors  # noqa: F401  (the runner imports it from here)

log = logging.getLogger("prorlbench")

DEFAULT_DECIMALS = 3

@dataclass(frozen=True)
class MetricInfo:
    """What the report knows about one metric."""

    display: str
    decimals: int = DEFAULT_DECIMALS
    headline: bool = False
    higher_is_better: bool | None = None


@dataclass(frozen=True)
class Metadata:
    """Metric and method display information of a run (see the module docstring)."""

    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    """Display name per method."""
    datasets: dict[str, str] = field(default_factory=dict)
    """Display name per dataset (from ``[display]``; default: its name)."""
    colors: dict[str, str] = field(default_factory=dict)
    """Plot colour per method (``#rrggbb``) as the runner stored it: a record of
    :func:`.colors.method_colors`; the report computes colours from the names and the run's
    ``[display] colors`` again (older folders stored colours by grid position)."""

    def info(self, metric: str) -> MetricInfo:
        return self.metrics.get(metric) or MetricInfo(display=metric)

    def display(self, metric: str) -> str:
        return self.info(metric).display

    def decimals(self, metric: str) -> int:
        return self.info(metric).decimals

    def method(self, name: str) -> str:
        return self.methods.get(name) or name

    def dataset(self, name: str) -> str:
        return self.datasets.get(name) or name

    def order(self, names: Iterable[str]) -> list[str]:
        """Known metrics in their registration order, then the others alphabetically."""
        names = set(names)
        return [m for m in self.metrics if m in names] + sorted(names - set(self.metrics))

    def headline(self) -> list[str]:
        return [m for m, i in self.metrics.items() if i.headline]


LEGACY = Metadata(metrics={
    "ioi": MetricInfo("IoI", 3, True, True), "ior": MetricInfo("IoR", 1, True, True),
    "ctr": MetricInfo("CTR", 3, True, True), "coherence": MetricInfo("Coherence", 3, False, True),
    "sr10": MetricInfo("SR@10", 3, True, True), "len": MetricInfo("Len", 2, False, None),
    "invalid": MetricInfo("Invalid", 3, False, False)})
"""The built-in metrics, for run folders without ``metadata.json``."""


def read_metadata(run_dir: Path) -> Metadata:
    """``<run_dir>/metadata.json``, or :data:`LEGACY` when absent or unreadable (warned)."""
    path = Path(run_dir) / "metadata.json"
    if not path.exists():
        return LEGACY
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        metrics = {str(n): MetricInfo(display=str(d.get("display") or n),
                                      decimals=int(d.get("decimals", DEFAULT_DECIMALS)),
                                      headline=bool(d.get("headline", False)),
                                      higher_is_better=d.get("higher_is_better"))
                   for n, d in doc.get("metrics", {}).items()}
        methods = {str(n): str(d.get("display") or n) for n, d in doc.get("methods", {}).items()}
        datasets = {str(n): str(d.get("display") or n) for n, d in doc.get("datasets", {}).items()}
        colors = {str(n): str(d["color"]) for n, d in doc.get("methods", {}).items() if d.get("color")}
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        log.warning("report: ignoring unreadable %s (%s); using the built-in metric metadata", path, exc)
        return LEGACY
    return Metadata(metrics=metrics, methods=methods, datasets=datasets, colors=colors)


def metric_directions(metrics: list[str], registry: Any | None = None,
                      meta: Metadata = LEGACY) -> dict[str, bool | None]:
    """``higher_is_better`` per metric: from ``registry`` when one is given and knows the metric
    (an override for callers holding one; the report never loads it), else from ``meta``, else
    ``None`` (no best marked)."""
    out: dict[str, bool | None] = {}
    for m in metrics:
        direction = meta.info(m).higher_is_better
        if registry:
            try:
                direction = registry.metric(m).higher_is_better
            except Exception:  # noqa: BLE001 - unknown metric: a plugin no longer installed
                pass
        out[m] = direction
    return out
