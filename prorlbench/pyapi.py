"""The Python API: ``prorlbench.run(...)`` and ``prorlbench.load(folder)``, for notebooks and scripts.

    import prorlbench

    res = prorlbench.run(methods="random,pop", seeds="0-1", out="results/nb")
    res.summary                  # pandas DataFrame: the rows of summary.csv
    res.cases, res.cells, res.train_log, res.selection
    res.paths(method="pop")      # stored candidate paths, one row per candidate (read on request)
    prorlbench.load("results/nb").summary

:func:`run` takes the keys of ``prorlbench run`` (the ``[run]`` keys, docs/api.md): a
:class:`~prorlbench.settings.runconfig.RunConfig`, a config file, or a parsed TOML document as its first
argument, then keys that override it, as the command-line flags override a ``--config`` file. A
list is accepted wherever the command line takes a comma list (``methods=["random", "pop"]`` or
``methods="random,pop"``), ``seeds`` takes ranges (``"0-2"``), and ``set`` takes the ``--set``
items as strings or as a dict (``{"methods.prorl.lr": [1e-4, 5e-4], "methods.pop.length": 3}``:
a list sweeps, a single value sets). The run is the one the command would make (same cells,
fingerprints, folder and ``summary.csv``); it does not print. Bad input raises
:class:`~prorlbench.errors.UserError` with the command line's one-line message.

:class:`Results` reads a run folder; its tables are read once, on first use.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from .errors import UserError
from .settings.runconfig import RUN_KEYS, RunConfig, apply_overrides, parse_config, read_config_file

ALIASES = {"eval_simulator": "eval_simulators", "plugins_dir": "plugins_dirs", "set": "sets"}
"""Keys spelled as their command-line flag (``--eval-simulator``, ``--plugins-dir``, ``--set``)."""


class Results:
    """A finished (or partly finished) run folder as pandas DataFrames.

    ``summary`` (``summary.csv``: method, dataset, simulator, metric, k, mean, std, n_seeds,
    n_cases), ``cases`` (``cases.csv.gz``: one row per case, metric and K), ``cells``
    (``cells.csv``), ``train_log`` (``train_log.csv``), ``selection`` (``--select-on valid``: the
    chosen variant per method and dataset; empty otherwise); :meth:`paths` reads stored paths."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / "config.toml").is_file():
            raise UserError(f"{self.folder}: no config.toml here; is this a run folder (prorlbench run --out DIR)?")

    def __repr__(self) -> str:
        return f"Results({str(self.folder)!r}: {len(self.cells)} cells, {len(self.failed)} failed)"

    def _repr_markdown_(self) -> str:
        return self.table()

    @functools.cached_property
    def config(self) -> RunConfig:
        """The run's resolved configuration (its ``config.toml``)."""
        return read_config_file(self.folder / "config.toml", trusted=True)

    def _csv(self, name: str, **kw: Any) -> Any:
        import pandas as pd

        p = self.folder / name
        if not p.is_file():
            raise UserError(f"{p}: not found (the run has not finished a report; `prorlbench report "
                            f"{self.folder}` rebuilds it)")
        return pd.read_csv(p, **kw)

    @functools.cached_property
    def summary(self) -> Any:
        return self._csv("summary.csv")

    @functools.cached_property
    def cases(self) -> Any:
        from .folder.results import read_cases

        if not (self.folder / "cases.csv.gz").is_file():
            return self._csv("cases.csv.gz")  # the one-line error
        return read_cases(self.folder / "cases.csv.gz")

    @functools.cached_property
    def cells(self) -> Any:
        return self._csv("cells.csv", dtype={"method": str, "dataset": str, "error": str})

    @functools.cached_property
    def train_log(self) -> Any:
        return self._csv("train_log.csv", dtype={"method": str, "dataset": str, "metric": str})

    @functools.cached_property
    def selection(self) -> Any:
        from .engine.selection import select

        return select(self.folder)

    @property
    def failed(self) -> list[str]:
        """``method/dataset/s<seed>`` of every failed cell."""
        bad = self.cells[self.cells["status"] != "ok"]
        return [f"{r.method}/{r.dataset}/s{r.seed}" for r in bad.itertuples()]

    def table(self) -> str:
        """The Markdown summary table (``summary.md``)."""
        p = self.folder / "summary.md"
        return p.read_text(encoding="utf-8") if p.is_file() else ""

    def paths(self, method: str | None = None, dataset: str | None = None, seed: int | None = None) -> Any:
        """The stored candidate paths of the finished cells that match: one row per candidate
        (method, dataset, seed, case, history, target, rank, path; item ids as tuples)."""
        import pandas as pd

        from .folder.files import cell_name
        from .folder.results import RunFolder
        from .folder.store import read_paths

        rows = []
        for st in RunFolder(self.folder).finished_cells():
            wanted = (method is None or st.method == method) and (dataset is None or st.dataset == dataset) \
                and (seed is None or st.seed == seed)
            if not st.ok or not wanted:
                continue
            p = self.folder / "cells" / f"{cell_name(st.method, st.dataset, st.seed)}.paths.json.gz"
            if not p.is_file():
                continue
            cases, candidates = read_paths(p)
            for case, cands in zip(cases, candidates):
                for rank, path in enumerate(cands, start=1):
                    rows.append({"method": st.method, "dataset": st.dataset, "seed": st.seed, "case": case.case_id,
                                 "history": tuple(case.history), "target": int(case.target), "rank": rank,
                                 "path": tuple(int(i) for i in path)})
        return pd.DataFrame(rows, columns=["method", "dataset", "seed", "case", "history", "target", "rank", "path"])


def load(folder: str | Path) -> Results:
    """The results of a run folder (nothing is computed)."""
    return Results(folder)


def _set_items(value: Any) -> list[str]:
    """``set=`` as ``--set`` strings: a string, a list of strings, or ``{KEY: value or [values]}``."""
    from .folder.tomlwriter import _value

    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        out = []
        for key, v in value.items():
            vals = v if isinstance(v, (list, tuple)) else [v]
            out.append(f"{key}=" + ",".join(_value(x) for x in vals))
        return out
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise UserError(f"set: expected 'KEY=VALUE' strings or a dict {{KEY: value}}, got {value!r}")


def config_from(config: Any = None, **keys: Any) -> RunConfig:
    """The RunConfig :func:`run` would use: ``config`` (a RunConfig, a TOML file path or a parsed
    TOML document) with ``keys`` (``[run]`` keys or their flag spellings) applied."""
    if config is None:
        cfg = RunConfig()
    elif isinstance(config, RunConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = parse_config(config, "config")
    elif isinstance(config, (str, Path)):
        cfg = read_config_file(config)
    else:
        raise UserError(f"config: expected a RunConfig, a .toml path or a dict, got {type(config).__name__}")
    over: dict[str, Any] = {}
    for key, value in keys.items():
        name = ALIASES.get(key, key)
        if name not in RUN_KEYS:
            from .errors import did_you_mean

            raise UserError(f"unknown key '{key}'{did_you_mean(key, [*RUN_KEYS, *ALIASES])}; the keys are "
                            "those of `prorlbench run` (docs/api.md)")
        over[name] = _set_items(value) if name == "sets" else value
    if "sets" in over:  # like the repeatable flag: adds to the config's own
        over["sets"] = list(cfg.sets) + over["sets"]
    return apply_overrides(dataclasses.replace(cfg), over)


def run(config: Any = None, /, *, registry: Any = None, **keys: Any) -> Results:
    """Run (or resume) a grid and return its :class:`Results` (see the module docstring).

    Failed cells do not raise: ``Results.failed`` names them and ``Results.cells`` has the
    errors. A ``KeyboardInterrupt`` keeps the finished cells; calling again resumes."""
    from .plugins import load_registry
    from .engine.runner import run as run_grid
    from .engine.selection import write_selection

    cfg = config_from(config, **keys)
    result = run_grid(cfg, registry if registry is not None else load_registry(cfg.plugins_dirs))
    if result.report_error:
        raise UserError(f"report: {result.report_error}")
    write_selection(result.out)
    return Results(result.out)
