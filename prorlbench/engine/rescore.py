"""Re-scoring a finished run from its stored paths, and printing a case's paths.

``prorlbench rescore RUN_DIR`` reads ``RUN_DIR/config.toml``, applies ``--eval-simulator``,
``--metrics`` and ``--ks`` on top, and scores every cell's stored candidate paths again
(:func:`prorlbench.engine.runner.run` with ``rescore_only``): no method is built or fitted, and a cell
that cannot be re-scored (failed, no stored paths, another training configuration, fewer stored
candidates than the largest K) stops it with a one-line error before anything is written.
Evaluating simulators come from the cache (``--cache-dir``, as for ``run``); a simulator that is
not cached there is trained, since it is part of the evaluation, not of any method. A results
folder is data: plugins come from ``--plugins-dir`` and the entry points, the cache from
``--cache-dir`` or ``$PRORLBENCH_CACHE_DIR``, never from the folder's ``config.toml``
(:data:`FOLDER_IGNORED`; :func:`plugins_note` says which plugin folders it names).

``prorlbench paths RUN_DIR --method M`` prints one case of a cell: its history, target, reference
path and candidate paths with item titles where the dataset has them, and the case's metric
values, for qualitative inspection.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..errors import UserError
from ..folder.results import RunFolder, cell_name, read_cases
from ..plugins import load_registry
from ..settings.runconfig import RunConfig, apply_overrides, read_config_file


FOLDER_IGNORED = ("plugins_dirs", "cache_dir", "tensorboard", "ray_address")
"""``[run]`` keys a run folder's ``config.toml`` may hold but ``rescore`` and ``paths`` never take
from it: a results folder is data, so it names no code to import, no cache to write and no
machine to connect to. They come from the command line and the environment, as for ``run``."""


def run_config(run_dir: str | Path, overrides: dict[str, Any],
               plugins_dirs: Sequence[str | Path] | None = None) -> RunConfig:
    """The configuration stored in a run folder, with ``out`` set to it, :data:`FOLDER_IGNORED`
    reset (``plugins_dirs`` to the given ones) and ``overrides`` on top."""
    d = Path(run_dir)
    if not d.is_dir():
        raise UserError(f"{d}: not a folder")
    if not (d / "config.toml").is_file():
        raise UserError(f"{d}: no config.toml here; is this a run folder (prorlbench run --out DIR)?")
    cfg = read_config_file(d / "config.toml", trusted=True)
    cfg = dataclasses.replace(cfg, plugins_dirs=[str(p) for p in plugins_dirs or []], cache_dir="",
                              tensorboard="", ray_address="")
    return apply_overrides(cfg, {"out": str(d), **{k: v for k, v in overrides.items() if v is not None}})


def plugins_note(run_dir: str | Path, plugins_dirs: Sequence[str | Path] | None) -> str | None:
    """One line when the folder's ``config.toml`` names plugin folders that were not given (they
    are not imported: opening a results folder never runs its code), else ``None``."""
    try:
        named = read_config_file(Path(run_dir) / "config.toml", trusted=True).plugins_dirs
    except UserError:
        return None
    given = {str(Path(p).expanduser().resolve()) for p in plugins_dirs or []}
    missing = [str(p) for p in named if str(Path(p).expanduser().resolve()) not in given]
    if not missing:
        return None
    flags = " ".join(f"--plugins-dir {p}" for p in missing)
    return (f"this folder was made with plugins from {', '.join(missing)}; pass {flags} to load them "
            "(a results folder never loads code by itself)")


def rescore(run_dir: str | Path, *, eval_simulators: Sequence[str] | None = None,
            metrics: Sequence[str] | None = None, ks: Sequence[int] | None = None,
            report: bool = True, plugins_dirs: Sequence[str | Path] | None = None, **overrides: Any) -> Any:
    """Score the stored paths of every cell of ``run_dir`` again; returns the :class:`RunResult`.
    Plugins come from ``plugins_dirs`` (and the entry points), the cache from ``cache_dir`` or
    ``$PRORLBENCH_CACHE_DIR``: never from the folder (:data:`FOLDER_IGNORED`)."""
    from .runner import run

    cfg = run_config(run_dir, {"eval_simulators": list(eval_simulators) if eval_simulators else None,
                               "metrics": list(metrics) if metrics else None,
                               "ks": list(ks) if ks else None, **overrides}, plugins_dirs)
    registry = load_registry(cfg.plugins_dirs)
    return run(cfg, registry, report=report, rescore_only=True)


def _label(i: int, data: Any) -> str:
    raw = data.item_ids[i] if data is not None and len(data.item_ids) > i else None
    title = data.item_names[i] if data is not None and len(data.item_names) > i else ""
    out = str(i)
    if raw is not None and str(raw) != str(i):
        out += f" (id {raw})"
    if title:
        out += f" {title}"
    return out


def show_paths(run_dir: str | Path, method: str, *, dataset: str | None = None, seed: int | None = None,
               case: str | None = None, k: int | None = None, data_dir: str | None = None,
               plugins_dirs: Sequence[str | Path] | None = None) -> str:
    """The text ``prorlbench paths`` prints (see the module docstring); item titles come from
    the dataset plugin, loaded from ``plugins_dirs`` and the entry points, never from the folder."""
    from ..folder.store import read_paths

    overrides: dict[str, Any] = {"progress": False}
    if data_dir:
        overrides["data_dir"] = data_dir
    cfg = run_config(run_dir, overrides, plugins_dirs)
    if method not in cfg.methods:
        raise UserError(f"method '{method}' is not in this run; methods: {', '.join(cfg.methods)}")
    dataset = dataset or cfg.datasets[0]
    if dataset not in cfg.datasets:
        raise UserError(f"dataset '{dataset}' is not in this run; datasets: {', '.join(cfg.datasets)}")
    seed = cfg.seeds[0] if seed is None else int(seed)
    if seed not in cfg.seeds:
        raise UserError(f"seed {seed} is not in this run; seeds: {', '.join(map(str, cfg.seeds))}")
    folder = RunFolder(run_dir)
    name = cell_name(method, dataset, seed)
    cases, cands = read_paths(folder.cell_paths(name))
    if not cases:
        raise UserError(f"cell {name} has no test cases")
    if case is None:
        idx = 0
    elif case.isascii() and case.isdigit() and len(case) <= 18 and int(case) < len(cases):  # no huge ints
        idx = int(case)
    else:
        ids = [c.case_id for c in cases]
        if case not in ids:
            raise UserError(f"--case {case if len(case) <= 40 else case[:39] + '…'}: neither an index 0..{len(cases) - 1} nor a case id of "
                            f"cell {name} (e.g. {', '.join(ids[:3])})")
        idx = ids.index(case)
    c, paths = cases[idx], cands[idx]
    if k is not None:
        if k < 1:
            raise UserError(f"--k {k}: must be >= 1")
        paths = paths[:k]
    data = _load_data(cfg, dataset)
    lab = lambda items: ", ".join(_label(int(i), data) for i in items) or "(empty)"  # noqa: E731
    lines = [f"{method} / {dataset} / seed {seed}: case {idx} of {len(cases)} (id {c.case_id}"
             + (f", user {c.user})" if c.user else ")"),
             f"  history:   {lab(c.history)}",
             f"  target:    {_label(int(c.target), data)}"]
    if c.reference:
        lines.append(f"  reference: {lab(c.reference)}")
    for j, p in enumerate(paths, start=1):
        lines.append(f"  path {j} ({len(p)} items): {lab(p)}")
    table = folder.cell_cases(name)
    if table.exists():
        df = read_cases(table)
        df = df[df["case"] == str(c.case_id)]
        if len(df):
            pv = df.pivot_table(index="simulator", columns=["metric", "k"], values="value", aggfunc="first")
            pv.columns = [f"{m}@{kk}" for m, kk in pv.columns]
            lines.append("  metrics of this case:")
            lines.extend("    " + ln for ln in pv.to_string(float_format=lambda x: f"{x:.4f}").splitlines())
    if data is None:
        lines.append("  (item titles unavailable: the dataset could not be loaded; pass --data-dir)")
    return "\n".join(lines) + "\n"


def _load_data(cfg: RunConfig, dataset: str) -> Any:
    """The dataset, for item titles; ``None`` when it cannot be loaded here."""
    from ..config import build_config

    try:
        registry = load_registry(cfg.plugins_dirs)
        spec = registry.dataset(dataset)
        dcfg = build_config(spec.config_cls, cfg.table("datasets", dataset), where=cfg.where(f"datasets.{dataset}"),
                            profile=cfg.profile)
        return spec.load(dcfg, Path(cfg.data_dir).expanduser() if cfg.data_dir else None)
    except UserError:
        return None


def summary_frame(run_dir: str | Path) -> pd.DataFrame:
    """``summary.csv`` of a run folder (for comparisons in tests and scripts)."""
    return pd.read_csv(Path(run_dir) / "summary.csv")
