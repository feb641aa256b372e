"""The run configuration: what to run, where, and how each plugin is configured.

A :class:`RunConfig` comes from (lowest to highest priority) the field defaults, a TOML file
(``--config FILE``) and flags. The file's tables: ``[run]`` (the fields below),
``[datasets.NAME]`` / ``[simulators.NAME]`` / ``[methods.NAME]`` (that plugin's config
dataclass; a ``[datasets.NAME]`` table with a ``plugin`` key is a dataset variant),
``[variants.NAME]`` (``method = "prorl"`` plus keys: a method made from another), ``[cases]``
(:class:`prorlbench.cases.CaseConfig`) and ``[display]`` (shown names); example: the README.

Unknown tables and keys, and values outside a key's range, are a ``ConfigError`` naming the file,
the table and the key; plugin tables are checked against their config class by
:func:`prorlbench.resolve.resolve`. Paths in a file resolve from its folder, and the paths a file
may write to or load code from stay inside it (:mod:`prorlbench.configpaths`,
docs/reliability.md). :func:`write_toml` writes ``<out>/config.toml``; :func:`read_config_file`
reads.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import _coerce, check_bounds, field_bounds, opt
from .configpaths import DATASET_PATH_KEYS, dataset_table_from_file, run_value_from_file
from .errors import ConfigError, did_you_mean
from .runnames import default_cache_dir, default_run_name, out_dir  # noqa: F401
from .tomlwriter import _value, write_toml  # noqa: F401  (re-exported: the run config writer)

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

    plugin_tables: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {k: {} for k in PLUGIN_TABLES},
        metadata={"help": "Raw [datasets.NAME] / [simulators.NAME] / [methods.NAME] tables."})
    cases: dict[str, Any] = field(default_factory=dict,
                                  metadata={"help": "Raw [cases] table (CaseConfig)."})
    variants: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={"help": "[variants.NAME] tables (prorlbench.variants)."})
    display: dict[str, str] = field(default_factory=dict,
                                    metadata={"help": "[display] table: NAME = \"shown name\" for "
                                              "methods, metrics and datasets."})
    source: str = field(default="", metadata={"help": "The config file this came from."})

    def table(self, kind: str, name: str) -> dict[str, Any]:
        """The raw ``[KIND.NAME]`` table (empty when absent)."""
        return dict(self.plugin_tables.get(kind, {}).get(name, {}))

    def where(self, table: str) -> str:
        """How errors name a table: ``"run.toml [methods.prorl]"``."""
        return f"{self.source} [{table}]" if self.source else f"[{table}]"


RUN_KEYS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(RunConfig)
    if f.name not in ("plugin_tables", "cases", "source", "variants", "display"))
NOT_WRITTEN = ("force", "progress", "quiet", "log_level", "tensorboard", "out", "cache_dir", "ray_address", "wait")
"""Run keys that describe this invocation or this machine, not the experiment."""
_LIST_KEYS = {"methods", "datasets", "seeds", "eval_simulators", "ks", "metrics", "plugins_dirs"}


def split_list(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [p.strip() for p in value.split(",") if p.strip()]


def coerce_run_value(key: str, value: Any, where: str) -> Any:
    """Check and convert one ``[run]`` value (comma strings are accepted for list keys)."""
    if key not in RUN_KEYS:
        raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, list(RUN_KEYS))}; "
                          f"valid keys: {', '.join(RUN_KEYS)}")
    if key in _LIST_KEYS and isinstance(value, str):
        value = split_list(value)
        if key in ("seeds", "ks"):
            try:
                value = [int(v) for v in value]
            except ValueError:
                raise ConfigError(f"{where} key '{key}': expected integers, got {value!r}") from None
    hint = typing.get_type_hints(RunConfig)[key]
    value = _coerce(value, hint, f"{where} key '{key}'")
    if key in ("seeds", "ks") and any(v < 0 for v in value):
        raise ConfigError(f"{where} key '{key}': values must be >= 0, got {value!r}")
    if key == "ks" and (not value or any(v < 1 for v in value)):
        raise ConfigError(f"{where} key 'ks': need at least one K >= 1, got {value!r}")
    if key == "ks" and any(v > MAX_K for v in value):
        raise ConfigError(f"{where} key 'ks': K is the number of candidate paths a method generates "
                          f"per case; at most {MAX_K}, got {max(value)}")
    if key == "log_level" and value not in LOG_LEVELS:
        raise ConfigError(f"{where} key 'log_level': expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    check_bounds(value, field_bounds(RunConfig, key), f"{where} key '{key}'")
    return value


def parse_config(doc: dict[str, Any], source: str = "", *, trusted: bool = False) -> RunConfig:
    """A :class:`RunConfig` from a parsed TOML document (structure and [run] types checked).

    ``trusted``: the document is a run folder's own ``config.toml`` (written by prorlbench), so
    the path rules for shared config files do not apply."""
    cfg = RunConfig(source=source)
    label = source or "config"
    if not isinstance(doc, dict):
        raise ConfigError(f"{label}: expected a TOML document")
    for key in doc:
        if key not in TOP_TABLES:
            raise ConfigError(f"{label}: unknown table [{key}]{did_you_mean(str(key), list(TOP_TABLES))}; "
                              f"valid tables: {', '.join('[' + t + ']' for t in TOP_TABLES)}")
    run = doc.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{label}: 'run' must be a table ([run])")
    base = Path(source).parent if source else Path(".")
    for key, value in run.items():
        value = coerce_run_value(key, value, cfg.where("run"))
        if not trusted:
            value = run_value_from_file(key, value, base, f"{cfg.where('run')} key '{key}'")
        setattr(cfg, key, value)
    for kind in PLUGIN_TABLES:
        tables = doc.get(kind, {})
        if not isinstance(tables, dict):
            raise ConfigError(f"{label}: '{kind}' must hold tables like [{kind}.NAME]")
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{label}: '{kind}.{name}' must be a table ([{kind}.{name}]), "
                                  f"got {type(table).__name__}")
            table = dict(table)
            if kind == "datasets" and not trusted:
                table = dataset_table_from_file(table, base)
            cfg.plugin_tables[kind][str(name)] = table
    cases = doc.get("cases", {})
    if not isinstance(cases, dict):
        raise ConfigError(f"{label}: 'cases' must be a table ([cases])")
    cfg.cases = dict(cases)
    from .variants import parse_variants

    cfg.variants = parse_variants(doc.get("variants", {}), label)

    from .display import parse_display

    cfg.display = parse_display(doc.get("display", {}), cfg.where("display"), label)
    return cfg


def read_config_file(path: str | Path, *, trusted: bool = False) -> RunConfig:
    """Read a run config TOML file; every problem is a :class:`ConfigError` naming the file."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a .toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    return parse_config_text(text, str(p), trusted=trusted)


def parse_config_text(text: str, source: str = "config", *, trusted: bool = False) -> RunConfig:
    if text.startswith("\ufeff"):  # a byte-order mark, as the data loaders accept
        text = text[1:]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. embedded NUL or absurd nesting
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return parse_config(doc, source, trusted=trusted)


def apply_overrides(cfg: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """A copy of ``cfg`` with command-line values (already typed) replacing file values."""
    new = dataclasses.replace(cfg, plugin_tables={k: dict(v) for k, v in cfg.plugin_tables.items()},
                              cases=dict(cfg.cases), variants={k: dict(v) for k, v in cfg.variants.items()},
                              display=dict(cfg.display))
    for key, value in overrides.items():
        if value is None:
            continue
        setattr(new, key, coerce_run_value(key, value, "command line"))
    return new
