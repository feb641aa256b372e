"""``prorlbench run --dry-run``: the resolved grid and every plugin's configuration, computed
nothing (no folder is made, no data is loaded)."""

from __future__ import annotations

from .plugins import Registry
from .resolve import expand_grid, resolve
from .display import profile_note
from .runconfig import RunConfig
from .tomlwriter import write_toml

def dry_run(cfg: RunConfig, registry: Registry) -> str:
    """What ``run`` would do with ``cfg``: the text printed by ``--dry-run``."""
    res = resolve(cfg, registry)
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
    lines += ["", "# the configuration the run would use and write to config.toml (profile applied)",
              write_toml(res.config_document()).rstrip("\n")]
    return "\n".join(lines) + "\n"
