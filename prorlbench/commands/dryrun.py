"""``prorlbench run --dry-run``: the resolved grid and every plugin's configuration, computed
nothing (no folder is made, nothing is trained, nothing is written).

It also checks what would otherwise fail only once the run is under way, as a one-line
:class:`~prorlbench.errors.UserError` (exit 2):

* every data path: a dataset config's path keys (``path``, ``data_dir``, ``*_path``, ``*_dir``,
  ``*_file``) must name an existing folder (``*dir``) or regular file (the others: not a device
  or FIFO, which a loader would read forever or block on), and a dataset that needs a data
  folder without naming its own gets ``--data-dir``, which must be a folder;
* that each dataset loads from those paths (the loader reads and checks its files, as the run's
  first step would; seconds for the shipped datasets), and prints its size;
* simulator/dataset compatibility: a ground-truth simulator (``oracle``: ``learned = False``)
  exists only for datasets with a ground-truth world, so it is built on the loaded data (it
  trains nothing). As in a run, an eval simulator that does not fit a dataset is skipped with a
  note when other eval simulators remain.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Any

from ..engine.resolve import Resolved, expand_grid, resolve
from ..errors import UserError
from ..folder.fingerprint import is_path_key
from ..folder.tomlwriter import write_toml
from ..plugins import Registry
from ..settings.display import profile_note
from ..settings.runconfig import RunConfig

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file"))


def _kind(mode: int) -> str:
    return next((w for test, w in _KINDS if test(mode)), "a special file")


def check_path(path: Path, folder: bool, where: str) -> str:
    """``"folder"`` or ``"file, N bytes"`` for an existing folder / regular file; else a one-line
    UserError naming ``where`` (the dataset key or ``--data-dir``). ``stat`` never blocks."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UserError(f"{where} {path}: {'not found' if isinstance(exc, FileNotFoundError) else exc.strerror}"
                        "; the run would fail loading it") from None
    want = stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)
    if not want:
        raise UserError(f"{where} {path}: is {_kind(st.st_mode)}, expected "
                        f"{'a folder' if folder else 'a regular file'}")
    return "folder" if folder else f"file, {st.st_size} bytes"


def data_paths(res: Resolved) -> list[str]:
    """One line per data path of each dataset of the run, each checked (:func:`check_path`)."""
    run_dir = Path(res.cfg.data_dir).expanduser() if res.cfg.data_dir else None
    lines = []
    for name in res.cfg.datasets:
        spec, dcfg = res.registry.dataset(name), res.dataset_cfgs[name]
        own = {f.name: getattr(dcfg, f.name) for f in dataclasses.fields(dcfg)
               if is_path_key(f.name) and isinstance(getattr(dcfg, f.name), str) and getattr(dcfg, f.name)}
        for key, value in own.items():
            p = Path(value).expanduser()
            if not p.is_absolute() and not os.path.lexists(p) and run_dir is not None:
                p = run_dir / value  # loaders also look for a relative name in --data-dir
            folder = key.endswith("dir")
            lines.append(f"  {name}: {key} {p} ({check_path(p, folder, f'[datasets.{name}] {key}')})")
        if spec.needs_data_dir and not own:
            if run_dir is None:
                raise UserError(f"dataset '{name}' needs a data folder: pass --data-dir or set "
                                f"[datasets.{name}] data_dir")
            lines.append(f"  {name}: --data-dir {run_dir} ({check_path(run_dir, True, '--data-dir')})")
        if not spec.needs_data_dir and not own:
            lines.append(f"  {name}: no data files (generated)")
    return lines


def compatibility(res: Resolved, loaded: dict[str, Any] | None = None) -> list[str]:
    """Each dataset loaded (kept in ``loaded``), and the ground-truth simulators built on it (see
    the module docstring)."""
    reg = res.registry
    truth = [s for s in dict.fromkeys([res.cfg.simulator, *res.eval_simulators]) if not reg.simulator(s).learned]
    run_dir = Path(res.cfg.data_dir).expanduser() if res.cfg.data_dir else None
    lines = []
    for name in res.cfg.datasets:
        data = reg.dataset(name).load(res.dataset_cfgs[name], run_dir)
        if loaded is not None:
            loaded[name] = data
        users = ", ".join(f"{k} {len(v)}" for k, v in data.sequences.items())
        lines.append(f"  {name}: loads: {data.n_items} items; users {users}")
        for sim in truth:
            try:
                reg.simulator(sim).build(res.simulator_cfgs[sim], data, device="cpu", seed=res.cfg.simulator_seed,
                                         cache_dir=None, progress=False)
            except UserError as exc:
                others = [e for e in res.eval_simulators if e != sim]
                if sim == res.cfg.simulator or not others or all(e in truth for e in others):
                    raise UserError(f"simulator '{sim}' cannot run on dataset '{name}': {exc}") from None
                lines.append(f"  {name}: eval simulator {sim} would be skipped ({exc})")
                continue
            lines.append(f"  {name}: {sim} fits")
    return lines


def dry_run(cfg: RunConfig, registry: Registry) -> str:
    """What ``run`` would do with ``cfg``: the text printed by ``--dry-run``."""
    res = resolve(cfg, registry)
    cfg = res.cfg  # --set and methods = "all" expanded
    jobs = expand_grid(cfg.methods, cfg.datasets, cfg.seeds, cfg.variants)
    lines = [
        "dry run: nothing is computed, no folder is written",
        f"profile: {profile_note(cfg.profile)}",
        f"output folder: {res.out}",
        f"device: {res.device}; executor: {cfg.executor}",
        f"training simulator: {cfg.simulator}; evaluating simulators: {', '.join(res.eval_simulators)}",
        f"metrics: {', '.join(m.name for m in res.metrics)} at K = {', '.join(map(str, cfg.ks))}",
        f"grid: {len(jobs)} cells = {len(cfg.methods)} method(s) x {len(cfg.datasets)} dataset(s) "
        f"x {len(cfg.seeds)} seed(s)",
    ]
    lines += [f"  {j.name}" for j in jobs]
    lines += ["data paths (checked):", *data_paths(res)]
    loaded: dict[str, Any] = {}
    lines += ["datasets and ground-truth simulators (checked on the loaded data):", *compatibility(res, loaded)]
    lines += cost_lines(res, jobs, loaded)
    lines += ["", "# the configuration the run would use and write to config.toml (profile applied)",
              write_toml(res.config_document()).rstrip("\n")]
    return "\n".join(lines) + "\n"


def cost_lines(res: Resolved, jobs: list[Any], loaded: dict[str, Any]) -> list[str]:
    """The estimated cost per cell and in total (:mod:`prorlbench.commands.estimate`)."""
    from .estimate import duration, estimate

    costs, notes = estimate(res, jobs, loaded)
    width = max((len(c.name) for c in costs), default=0)
    lines = ["estimated cost (rough, x2-3 either way; simulator training and baselines' own fitting not "
             f"counted; {'; '.join(notes)}):"]
    lines += [f"  {c.name:{width}s}  ~{duration(c.seconds):>8s}  ({c.parts})" for c in costs]
    lines.append(f"  total: ~{duration(sum(c.seconds for c in costs))} for {len(costs)} cell(s) in sequence")
    return lines
