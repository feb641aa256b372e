"""The fields of :class:`RunConfig` (the ``[run]`` keys and their flags) and how one value is checked.

Re-exported by :mod:`prorlbench.settings.runconfig` (import from there). List keys take lists or comma
strings (``"random,pop"``); ``seeds`` and ``ks`` take ranges (``"0-2"``); ``methods = "all"`` is
every registered method and ``sets`` (``--set``) overrides or sweeps plugin keys
(:mod:`prorlbench.settings.sweeps`).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from ..config import _coerce, check_bounds, field_bounds, opt
from ..errors import ConfigError, did_you_mean

PLUGIN_TABLES = ("datasets", "simulators", "methods")
"""Tables of tables: ``[KIND.NAME]`` configures plugin NAME of that kind."""
TOP_TABLES = ("run",) + PLUGIN_TABLES + ("cases", "variants", "display")

MAX_K = 100
"""The largest K of ``ks``: every method generates ``max(ks)`` candidate paths per test case."""
PROFILES = ("quick", "paper", "official")
"""Plugin config profiles (``--profile``)."""
STYLES = ("default", "paper")
"""Report styles (``--style``)."""
LOG_LEVELS = ("debug", "info", "warning", "error")
"""Console log levels (``--log-level``)."""
SELECT_ON = ("none", "valid")
"""``--select-on``: no selection, or the best variant of each method on the validation cases."""


@dataclass
class RunConfig:
    """Everything ``prorlbench run`` needs; the ``[run]`` table of a config file holds these keys."""

    methods: list[str] = opt([], "Methods to run (names from `prorlbench list methods`).", flag={"metavar": "A,B"})
    datasets: list[str] = opt(["synthetic"], "Datasets to run on (`prorlbench list datasets`).",
                              flag={"metavar": "A,B"})
    seeds: list[int] = opt([0], "Method seeds; each (method, dataset, seed) is one cell. Data "
                                "splits and simulators do not depend on them.", flag={"metavar": "0,1,2"})
    simulator: str = opt("sasrec", "The training simulator: methods may query it for rewards.",
                         flag={"metavar": "NAME"})
    eval_simulators: list[str] = opt([], "Simulators that score the paths; empty means the "
                                         "training simulator. E.g. sasrec,oracle.",
                                  flag={"name": "--eval-simulator", "metavar": "NAME[,NAME]"})
    profile: str = opt("quick", "Plugin config profile: 'quick' (minutes on a laptop), 'paper', or "
                                "'official' (the released ProRL code's RL values; sized for GPUs).",
                       flag={"choices": PROFILES})
    ks: list[int] = opt([1, 5, 10], "K values of the @K metrics (best of the first K candidates).",
                        flag={"metavar": "1,5,10"})
    metrics: list[str] = opt([], "Metrics to compute; empty means every registered metric.",
                             flag={"metavar": "A,B"})
    simulator_seed: int = opt(0, "Seed of simulator training (fixed per run, not per cell).",
                              flag={"metavar": "N"})
    device: str = opt("auto", "Torch device: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.",
                      flag={"metavar": "auto|cpu|cuda"})
    name: str = opt("", "Run name; the default output folder is results/<name>. Empty: "
                        "<methods>_<datasets>.")
    out: str = opt("", "Output folder (default results/<name>). Re-using it resumes the run.",
                   flag={"metavar": "DIR"})
    data_dir: str = opt("", "Folder with raw data files for datasets that need them (movielens, csv, "
                            "prorl-json).", flag={"metavar": "DIR"})
    cache_dir: str = opt("", "Cache of trained simulators/backbones. Empty: "
                             "$PRORLBENCH_CACHE_DIR or ~/.cache/prorlbench.", flag={"metavar": "DIR"})
    plugins_dirs: list[str] = opt([], "Extra folders of *.py plugin files (the flag is repeatable "
                                      "and adds to the config file's).",
                                  flag={"name": "--plugins-dir", "metavar": "DIR"})
    executor: str = opt("local", "How cells run: 'local' (this process, in order), 'ray' (parallel "
                                 "tasks; pip install 'prorlbench[ray]') or one a plugin registers.",
                        flag={"metavar": "NAME"})
    ray_address: str = opt("", "Ray cluster for executor 'ray' ('auto', 'HOST:PORT', "
                               "'ray://HOST:10001'); empty starts a local Ray instance.",
                         flag={"metavar": "ADDR"})
    style: str = opt("default", "Report style: 'default' or 'paper'.", flag={"choices": STYLES})
    latex_width: str = opt("single", "LaTeX tables fit one column ('single') or the page ('full').",
                           flag={"choices": ("single", "full")})
    eval_batch_size: int = opt(1024, "Paths scored per simulator forward pass during evaluation.",
                               flag={"metavar": "N"}, ge=1)
    cell_timeout: float = opt(0.0, "Seconds a cell may run (fit, generate, score); past it the cell "
                                    "fails and the grid goes on. 0: no limit.",
                              flag={"metavar": "SECONDS"}, ge=0)
    wait: bool = opt(False, "When another run holds the output folder's lock, wait for it instead "
                            "of exiting with an error.")
    threads: int = opt(0, "torch CPU threads. 0: one per core (local executor); with Ray, the "
                          "cores divided by the tasks running at once. On a busy machine 1 is often "
                          "far faster.", flag={"metavar": "N"}, ge=0)
    workers: int = opt(1, "Cells computed at once, each in a worker process (a crash, hang or global "
                          "change fails only its cell). 0: in this process, for a debugger.",
                       flag={"metavar": "N"}, ge=0)
    allow_weak_simulator: bool = opt(False, "Use a simulator or backbone below popularity; rows marked.")
    force: bool = opt(False, "Recompute cells that are already done.")
    progress: bool = opt(True, "Progress bars (plain periodic lines when stderr is not a terminal); "
                               "--no-progress turns them off, info messages stay.",
                         flag={"name": "--no-progress"})
    quiet: bool = opt(False, "Console shows warnings and errors only, no progress (run.log keeps "
                             "everything).")
    log_level: str = opt("info", "Console messages from this level up: debug, info, warning or error.",
                         flag={"choices": LOG_LEVELS})
    tensorboard: str = opt("", "Also write every training scalar as TensorBoard events, one run per "
                               "cell, under DIR (pip install 'prorlbench[tensorboard]').",
                           flag={"metavar": "DIR"})
    sets: list[str] = opt([], "KIND.NAME.KEY=VALUE sets a plugin key (methods.pop.length=3; also "
                              "datasets., simulators., cases.KEY); several comma-separated values sweep a "
                              "method key: one variant per combination (repeatable).",
                          flag={"name": "--set", "metavar": "KEY=V[,V]"})
    select_on: str = opt("none", "'valid': per method and dataset, the report also picks the best of its "
                                 "variants on the validation cases (never test); every variant keeps its test rows.",
                         flag={"choices": SELECT_ON})
    select_metric: str = opt("", "METRIC@K that --select-on valid ranks by. Empty: the first headline "
                                 "metric at the smallest K.", flag={"metavar": "METRIC@K"})

    plugin_tables: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {k: {} for k in PLUGIN_TABLES},
        metadata={"help": "Raw [datasets.NAME] / [simulators.NAME] / [methods.NAME] tables."})
    cases: dict[str, Any] = field(default_factory=dict,
                                  metadata={"help": "Raw [cases] table (CaseConfig)."})
    variants: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={"help": "[variants.NAME] tables (prorlbench.settings.variants)."})
    display: dict[str, str] = field(default_factory=dict,
                                    metadata={"help": "[display] table: NAME = \"shown name\" for "
                                              "methods, metrics and datasets."})
    source: str = field(default="", metadata={"help": "The config file this came from."})

    def __post_init__(self) -> None:
        """A comma string or a single value where a list belongs (``methods="random,pop"``,
        ``seeds="0-2"``, ``seeds=3``) becomes the list the command line would give."""
        for key in _LIST_KEYS:
            value = getattr(self, key)
            if not isinstance(value, list) or any(isinstance(v, str) and "-" in v for v in value):
                setattr(self, key, coerce_run_value(key, value, "RunConfig"))

    def table(self, kind: str, name: str) -> dict[str, Any]:
        """The raw ``[KIND.NAME]`` table (empty when absent)."""
        return dict(self.plugin_tables.get(kind, {}).get(name, {}))

    def where(self, table: str) -> str:
        """How errors name a table: ``"run.toml [methods.prorl]"``."""
        return f"{self.source} [{table}]" if self.source else f"[{table}]"


RUN_KEYS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(RunConfig)
    if f.name not in ("plugin_tables", "cases", "source", "variants", "display"))
NOT_WRITTEN = ("force", "progress", "quiet", "log_level", "tensorboard", "out", "cache_dir", "ray_address", "wait",
               "sets")
"""Run keys that describe this invocation or this machine, not the experiment (``sets``: the
written config holds what they expanded to)."""
_LIST_KEYS = ("methods", "datasets", "seeds", "eval_simulators", "ks", "metrics", "plugins_dirs", "sets")
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def split_list(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [p.strip() for p in value.split(",") if p.strip()]


def int_list(values: Any, key: str = "seeds", where: str = "command line") -> list[int]:
    """Integers from a list or comma string whose items may be ranges: ``"0-2,5"`` -> ``[0, 1, 2, 5]``."""
    out: list[int] = []
    for v in split_list(values) if isinstance(values, str) else values if isinstance(values, list) else [values]:
        m = _RANGE.match(v) if isinstance(v, str) else None
        if m and int(m.group(1)) > int(m.group(2)):
            raise ConfigError(f"{where} key '{key}': range {v.strip()!r} is empty (write low-high)")
        try:
            out += list(range(int(m.group(1)), int(m.group(2)) + 1)) if m else [int(v) if isinstance(v, str) else v]
        except ValueError:
            raise ConfigError(f"{where} key '{key}': expected integers or ranges like 0-2, got {v!r}") from None
    return out


def coerce_run_value(key: str, value: Any, where: str) -> Any:
    """Check and convert one ``[run]`` value (comma strings are accepted for list keys)."""
    if key not in RUN_KEYS:
        raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, list(RUN_KEYS))}; "
                          f"valid keys: {', '.join(RUN_KEYS)}")
    if key in ("seeds", "ks") and not isinstance(value, bool):
        value = int_list(value, key, where)
    elif key in _LIST_KEYS and isinstance(value, str):
        value = [value] if key == "sets" else split_list(value)
    hint = typing.get_type_hints(RunConfig)[key]
    value = _coerce(value, hint, f"{where} key '{key}'")
    if key in ("seeds", "ks") and any(v < 0 for v in value):
        raise ConfigError(f"{where} key '{key}': values must be >= 0, got {value!r}")
    if key == "ks" and (not value or any(v < 1 for v in value)):
        raise ConfigError(f"{where} key 'ks': need at least one K >= 1, got {value!r}")
    if key == "ks" and any(v > MAX_K for v in value):
        raise ConfigError(f"{where} key 'ks': K is the number of candidate paths a method generates "
                          f"per case; at most {MAX_K}, got {max(value)}")
    allowed = {"log_level": LOG_LEVELS, "select_on": SELECT_ON}.get(key)
    if allowed and value not in allowed:
        raise ConfigError(f"{where} key '{key}': expected one of {', '.join(allowed)}, got {value!r}")
    check_bounds(value, field_bounds(RunConfig, key), f"{where} key '{key}'")
    return value
