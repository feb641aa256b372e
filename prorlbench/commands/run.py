"""``prorlbench run`` and ``prorlbench report``: what the commands do once their flags are parsed
(:mod:`prorlbench.cli` builds the parser and maps errors to exit codes)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError, one_line
from ..settings.runconfig import RUN_KEYS, RunConfig, apply_overrides, out_dir, read_config_file

PROG = "prorlbench"


def console_level(cfg: RunConfig) -> int:
    """The console's log level: ``--quiet`` means warnings and up, else ``--log-level``."""
    if cfg.quiet:
        return logging.WARNING
    return getattr(logging, cfg.log_level.upper(), logging.INFO)


def console_logging(level: int) -> tuple[logging.Handler, int]:
    from tqdm.auto import tqdm

    from ..console.logs import LOGGER_NAME, OneLineFormatter

    class _TqdmHandler(logging.StreamHandler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                tqdm.write(self.format(record), file=sys.stderr)
            except Exception:  # pragma: no cover - console closed
                self.handleError(record)

    h = _TqdmHandler()
    h.setLevel(level)
    h.setFormatter(OneLineFormatter())
    lg = logging.getLogger(LOGGER_NAME)
    old = lg.level
    lg.addHandler(h)
    if lg.level == logging.NOTSET or lg.level > h.level:
        lg.setLevel(h.level)
    return h, old


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig of ``--config`` (or the defaults) with the command's flags applied."""
    cfg = read_config_file(args.config) if args.config else RunConfig()
    overrides: dict[str, Any] = {}
    for key in RUN_KEYS:
        val = getattr(args, key, None)
        if val is not None and key not in ("plugins_dirs", "sets"):
            overrides[key] = val
    for key in ("plugins_dirs", "sets"):  # repeatable flags add to the config file's list
        if getattr(args, key, None):
            overrides[key] = list(getattr(cfg, key)) + list(getattr(args, key))
    return apply_overrides(cfg, overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from ..plugins import load_registry
    from ..engine.runner import run

    cfg = config_from_args(args)
    handler, old_level = console_logging(console_level(cfg))
    try:
        registry = load_registry(cfg.plugins_dirs)
        for failure in registry.failures:  # a broken plugin file warns even when none of its names is used
            logging.getLogger("prorlbench").warning("plugin %s failed to load: %s", failure.plugin,
                                                    failure.error)
        if args.dry_run:
            from .dryrun import dry_run

            print(dry_run(cfg, registry).rstrip("\n"))
    except BaseException:
        args.dry_run = True
        raise
    finally:
        if args.dry_run:
            logging.getLogger("prorlbench").removeHandler(handler)
            logging.getLogger("prorlbench").setLevel(old_level)
    if args.dry_run:
        return 0
    out = out_dir(cfg)
    try:
        result = run(cfg, registry, progress=cfg.progress and not cfg.quiet)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished cells are kept in {out}. Re-run the same command "
              f"(same --out) to resume.", file=sys.stderr)
        return 130
    finally:
        logging.getLogger("prorlbench").removeHandler(handler)
        logging.getLogger("prorlbench").setLevel(old_level)
    if result.summary:
        print(result.summary.rstrip("\n"))
        print()
    print_selection(result.out)
    n = len(result.cells)
    rescored = f"{len(result.rescored)} re-scored from stored paths, " if result.rescored else ""
    print(f"{n} cells ({len(result.computed) - len(result.rescored)} computed, {rescored}"
          f"{len(result.skipped)} already done, "
          f"{len(result.failed)} failed). Results: {result.out}")
    code = 0
    if result.report_error:
        print(f"{PROG}: error: report: {result.report_error}", file=sys.stderr)
        code = 1
    if result.failed:
        names = ", ".join(f"{c.method}/{c.dataset}/s{c.seed}" for c in result.failed)
        first = result.failed[0].error or "unknown error"
        print(f"{PROG}: {len(result.failed)} of {n} cells failed: {names} (first: {first}); "
              f"see {Path(result.out) / 'cells.csv'} and run.log", file=sys.stderr)
        code = 1
    return code


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report

    d = Path(args.dir)
    if not d.is_dir():
        raise UserError(f"{d}: not a folder")
    if not (d / "cases.csv.gz").exists() and not (d / "summary.csv").exists() \
            and not (args.all_cells and (d / "cells").is_dir()):
        raise UserError(f"{d}: no cases.csv.gz here; is this a run folder (prorlbench run --out DIR)?")
    if args.all_cells:
        from ..engine.guards import run_lock
        from ..report.gridcheck import merge_all_cells
        from ..folder.results import RunFolder

        with run_lock(d):  # checksums and grid fingerprints checked before anything is written
            cells, notes = merge_all_cells(RunFolder(d))
        for note in notes:
            print(f"{PROG}: note: {note}", file=sys.stderr)
        print(f"merged {sum(c.ok for c in cells)} finished cell(s) of {d / 'cells'}")
    try:
        text = write_report(d, style=args.style, metrics=args.metrics, ks=args.ks, latex_width=args.latex_width,
                            latex_label=args.latex_label, plots=args.plots)
    except OSError as exc:  # e.g. a read-only folder: the tables cannot be written
        raise UserError(f"report {d}: {os_error(exc)}") from None
    print(text.rstrip("\n"))
    print()
    print_selection(d)
    print(f"Tables and plots written to {d}")
    return 0


def print_selection(folder: str | Path) -> None:
    """``--select-on valid``: the chosen variant per method (selection.md), after the summary."""
    from ..engine.selection import write_selection

    try:
        text = write_selection(folder)
    except (OSError, ValueError, KeyError) as exc:  # an older or partial folder: the summary stands
        print(f"{PROG}: note: no variant selection ({one_line(exc)})", file=sys.stderr)
        return
    if text:
        print(text.rstrip("\n"))
        print()


def os_error(exc: OSError) -> str:
    """``PATH: reason`` of a file-system error (the path cut to 200 characters)."""
    reason = exc.strerror or one_line(exc)
    name = str(exc.filename) if exc.filename is not None else ""
    return f"{name if len(name) <= 200 else name[:199] + '…'}: {reason}" if name else reason
