"""``--select-on valid``: the best variant of each method, chosen on the validation cases, never on test.

With ``select_on = "valid"`` every cell, after its test paths are generated and scored, also
generates ``max(ks)`` paths for the dataset's *validation* cases and scores them against the
training simulator (:func:`valid_scores`); the means (``{"ioi@1": ...}``) go into the cell's
status (``CellStatus.valid``). Test rows are computed for every variant as usual.

:func:`select` groups the grid's methods by base method (a variant's ``method``; a plain method
is its own base), averages each member's validation figure of ``select_metric`` (``METRIC@K``;
default: the first headline metric at the smallest K) over its seeds, and picks, per base method
and dataset, the best member (the metric's direction; ties: the first in the grid). It reads the
run folder only (``config.toml``, ``metadata.json``, the cell statuses, ``cases.csv.gz``), so
``prorlbench report`` can redo it; :func:`write_selection` writes ``selection.csv`` and
``selection.md`` beside the summary, with the chosen variant's test figure next to its
validation figure. The validation figure is what was used to choose; the test column is only shown.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError

log = logging.getLogger("prorlbench")

COLUMNS = ["method", "dataset", "selected", "metric", "valid", "test", "simulator", "variants", "seeds"]


def parse_metric(text: str, where: str = "select_metric") -> tuple[str, int]:
    """``"ioi@1"`` -> ``("ioi", 1)``; a malformed one is a one-line ConfigError."""
    name, sep, k = text.partition("@")
    if not sep or not name or not k.strip().isdigit():
        raise ConfigError(f"{where}: expected METRIC@K (e.g. ioi@1), got {text!r}")
    return name.strip(), int(k)


def selection_metric(cfg: Any, metrics: list[str], headline: list[str]) -> tuple[str, int]:
    """The metric and K a run selects on (``cfg.select_metric`` checked against the run's metrics
    and ks), or the default: the first headline metric (else the first metric) at ``min(ks)``."""
    if cfg.select_metric:
        name, k = parse_metric(cfg.select_metric)
        if name not in metrics:
            raise ConfigError(f"select_metric: '{name}' is not a metric of this run ({', '.join(metrics)})")
        if k not in cfg.ks:
            raise ConfigError(f"select_metric: K = {k} is not one of the run's ks ({', '.join(map(str, cfg.ks))})")
        return name, k
    return (headline or metrics)[0], min(cfg.ks)


def check(res: Any) -> None:
    """At resolve time: a bad ``select_metric`` fails before anything trains."""
    if res.cfg.select_on != "none" or res.cfg.select_metric:
        names = [m.name for m in res.metrics]
        selection_metric(res.cfg, names, [m.name for m in res.metrics if m.headline])


def valid_scores(res: Any, dctx: Any, job: Any, method: Any, cases: Any) -> dict[str, float]:
    """Generate ``max(ks)`` paths for the validation ``cases`` with the fitted ``method`` and score
    them against the training simulator: ``{"METRIC@K": mean over the cases}``."""
    from ..seq import evaluate
    from .pathrules import check_paths

    if not cases:
        return {}
    candidates = check_paths(job.method, cases, method.generate(cases, res.k_max), n_items=dctx.data.n_items,
                             max_path_len=dctx.max_path_len, k_max=res.k_max)
    metrics = [res.registry.metric(n) for n in dctx.metrics]
    df = evaluate.evaluate_paths(dctx.simulator, cases, [c[: res.k_max] for c in candidates], metrics,
                                 ks=tuple(res.cfg.ks), item_attributes=dctx.data.item_attributes,
                                 batch_size=res.cfg.eval_batch_size, device=res.device, cache_dir=dctx.cache_dir,
                                 simulator_key=dctx.checks.get("simulator", ""))
    means = df.groupby(["metric", "k"], sort=False)["value"].mean()
    return {f"{m}@{int(k)}": float(v) for (m, k), v in means.items()}


def select(folder: str | Path) -> "Any":
    """The selection table of a run folder (a pandas DataFrame with :data:`COLUMNS`); empty when
    the run did not select (``select_on`` is not ``valid``)."""
    import pandas as pd

    from ..folder.results import RunFolder, read_cases
    from ..settings.runconfig import read_config_file

    root = Path(folder)
    cfg = read_config_file(root / "config.toml", trusted=True)
    if cfg.select_on != "valid":
        return pd.DataFrame(columns=COLUMNS)
    meta = json.loads((root / "metadata.json").read_text(encoding="utf-8")).get("metrics", {})
    name, k = selection_metric(cfg, list(meta), [m for m, d in meta.items() if d.get("headline")])
    higher = meta.get(name, {}).get("higher_is_better")
    key = f"{name}@{k}"
    run = RunFolder(root)
    cases = read_cases(run.cases) if run.cases.exists() else None
    eval_sim = (cfg.eval_simulators or [cfg.simulator])[0]
    rows = []
    for dataset in cfg.datasets:
        groups: dict[str, list[str]] = {}
        for m in cfg.methods:
            groups.setdefault(cfg.variants.get(m, {}).get("method", m), []).append(m)
        for base, members in groups.items():
            scores = {}
            for m in members:
                vals = [st.valid[key] for s in cfg.seeds
                        if (st := run.read_status(_cell(m, dataset, s))) is not None and st.ok and key in st.valid]
                if vals:
                    scores[m] = (sum(vals) / len(vals), len(vals))
            if not scores:
                continue
            sign = -1.0 if higher is False else 1.0
            best = max(scores, key=lambda m: sign * scores[m][0])  # the first of equals, in grid order
            test = None
            if cases is not None:
                sel = cases[(cases.method == best) & (cases.dataset == dataset) & (cases.simulator == eval_sim)
                            & (cases.metric == name) & (cases.k == k)]
                test = float(sel.groupby("seed")["value"].mean().mean()) if len(sel) else None
            rows.append({"method": base, "dataset": dataset, "selected": best, "metric": key,
                         "valid": scores[best][0], "test": test, "simulator": eval_sim,
                         "variants": len(members), "seeds": scores[best][1]})
    return pd.DataFrame(rows, columns=COLUMNS)


def _cell(method: str, dataset: str, seed: int) -> str:
    from ..folder.files import cell_name

    return cell_name(method, dataset, seed)


def selection_markdown(table: Any, training_simulator: str = "") -> str:
    """The selection as a Markdown table with one sentence saying how it was chosen."""
    if table is None or not len(table):
        return ""
    metric = table["metric"].iloc[0]
    by = f" scored by {training_simulator}" if training_simulator else ""
    lines = [f"Best variant per method and dataset, selected on the validation cases ({metric}{by}, "
             "mean over seeds; never on test). The test column (scored by the run's first evaluating "
             "simulator) is shown, not used; every variant keeps its own rows in the summary.", "",
             "| method | dataset | selected | valid | test | variants |", "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        test = "" if r.test is None or r.test != r.test else f"{r.test:.4g}"
        lines.append(f"| {r.method} | {r.dataset} | `{r.selected}` | {r.valid:.4g} | {test} | {r.variants} |")
    return "\n".join(lines) + "\n"


def write_selection(folder: str | Path) -> str:
    """Write ``selection.csv`` and ``selection.md`` (when the run selects); returns the Markdown."""
    from ..folder.files import atomic_write_frame, atomic_write_text
    from ..settings.runconfig import read_config_file

    root = Path(folder)
    table = select(root)
    if not len(table):
        return ""
    cfg = read_config_file(root / "config.toml", trusted=True)
    text = selection_markdown(table, cfg.simulator)
    atomic_write_frame(root / "selection.csv", table)
    atomic_write_text(root / "selection.md", text)
    return text
