"""The ``prorlbench`` command: ``run``, ``report``, ``rescore``, ``paths`` and ``list``.

Exit codes: 0 success; 1 some cells failed (or the report could not be built); 2 bad input or
output: a UserError, or a file-system error on a path the user gave (a name too long, a
read-only folder, a full disk), as one line ``prorlbench: error: ...`` on stderr, no traceback;
130 interrupted (finished cells are kept; re-running the same command resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from .cli_rescore import add_rescore_parsers, cmd_paths, cmd_rescore
from . import __version__
from .cliparse import Parser, subparser, unknown_flags_message
from .errors import UserError, one_line
from .plugins import load_registry
from .runconfig import (PROFILES, RUN_KEYS, STYLES, RunConfig, apply_overrides, out_dir, read_config_file,
                        split_list)

PROG = "prorlbench"

MAIN_EPILOG = """\
examples:
  prorlbench run --methods random,pop          the default run (synthetic data, SASRec simulator)
  prorlbench report results/random+pop_synthetic
  prorlbench list methods

Run `prorlbench COMMAND --help` for a command's options. Writing plugins: docs/plugins.md.
Exit codes: 0 ok, 1 some cells failed, 2 bad input, 130 interrupted (re-run to resume).
"""

RUN_EPILOG = """\
examples:
  prorlbench run --methods random,pop
  prorlbench run --methods prorl,naive-pg --seeds 0,1,2
  prorlbench run --methods prorl,sft,rec2inf --eval-simulator sasrec,oracle
  prorlbench run --config my_run.toml --profile paper --device cuda
  prorlbench run --methods my-method --plugins-dir ./my_plugins
  prorlbench run --methods random,pop --dry-run   show the grid and configs, compute nothing

Flags override the [run] table of --config. Re-running the same command (same --out) resumes:
cells already done are skipped; --force recomputes them.
"""

REPORT_EPILOG = """\
examples:
  prorlbench report results/random+pop_synthetic
  prorlbench report results/paper --style paper --metrics ioi,ctr --ks 1,10
"""

LIST_EPILOG = """\
examples:
  prorlbench list                  everything, then plugins that failed to load
  prorlbench list methods --details
  prorlbench list methods prorl --details --profile paper
  prorlbench list --plugins-dir ./my_plugins
  prorlbench list methods --config experiments/rl_protocol.toml   (with its [variants])
"""


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in split_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    names = split_list(text)
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Benchmark proactive recommenders: every method, dataset and "
                "seed of a grid, scored against user simulators.",
                epilog=MAIN_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    r = sub.add_parser("run", help="run (or resume) a grid of methods x datasets x seeds",
                       description="Run every (method, dataset, seed) cell, store per-case results "
                       "in the output folder, and print the summary table.",
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--config", metavar="FILE.toml", help="TOML file with [run], [datasets.NAME], "
                   "[simulators.NAME], [methods.NAME] and [cases] tables")
    add_run_flags(r)
    r.add_argument("--dry-run", action="store_true", help="print the resolved grid and every "
                   "plugin's configuration (profile applied), check every data path, load each dataset "
                   "and build ground-truth simulators on it, then exit without training or writing")

    rp = sub.add_parser("report", help="rebuild tables and plots of a finished run folder",
                        description="Rebuild summary.csv, summary.md, summary.tex and plots from "
                        "the stored per-case results of DIR; print the Markdown table.",
                        epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("dir", metavar="DIR", help="a run folder (holds cases.csv.gz)")
    rp.add_argument("--style", choices=STYLES, default="default", help="table style")
    rp.add_argument("--metrics", type=_names, metavar="A,B", help="metric columns (default: all)")
    rp.add_argument("--ks", type=_ints, metavar="1,5,10", help="K values shown (default: all stored)")
    rp.add_argument("--latex-width", choices=("single", "full"), default="single",
                    help="LaTeX tables fit one column of a two-column paper (single) or the page (full)")
    rp.add_argument("--all-cells", action="store_true",
                    help="first merge every finished cell under DIR/cells (grids run in several "
                    "commands, e.g. one dataset at a time, or cells copied together from several runs into a "
                    "folder with its own config.toml), not only the last command's grid; refuses cells whose "
                    "files do not match their status's checksums, and a dataset whose cells were made with "
                    "other data, simulator config or scoring")

    add_rescore_parsers(sub, names=_names, ints=_ints, plugins_arg=_plugins_arg)

    ls = sub.add_parser("list", help="list registered plugins (and plugins that failed to load)",
                        description="Show every registered dataset, simulator, method, metric, "
                        "estimator and executor with a one-line summary and the plugin providing it.",
                        epilog=LIST_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ls.add_argument("kind", nargs="?", metavar="KIND",
                    help="methods, datasets, simulators, metrics, estimators or executors (default: all)")
    ls.add_argument("name", nargs="?", metavar="NAME", help="show only this plugin (e.g. prorl)")
    ls.add_argument("--details", action="store_true", help="also show each plugin's config keys "
                    "with the values the chosen profile uses")
    ls.add_argument("--profile", choices=PROFILES, default="quick",
                    help="profile whose values --details shows (default: quick)")
    ls.add_argument("--config", metavar="FILE.toml", help="also apply this run config's "
                    "[KIND.NAME] tables to the values --details shows")
    _plugins_arg(ls)
    return p


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`RunConfig` field, with the field's help (declared once, there):
    ``--NAME`` (underscores as dashes) unless the field's ``flag`` metadata names it; lists are
    comma-separated; a boolean that defaults to true gets a ``--no-...`` flag."""
    hints = typing.get_type_hints(RunConfig)
    for f in dataclasses.fields(RunConfig):
        if f.name not in RUN_KEYS:
            continue
        flag = dict(f.metadata.get("flag", {}))
        name = flag.pop("name", "--" + f.name.replace("_", "-"))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f.metadata.get("help", "")
        if hints[f.name] is bool:
            action = "store_false" if default else "store_true"
            p.add_argument(name, dest=f.name, action=action, default=None, help=help_text)
            continue
        if default not in ("", [], None):
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            help_text += f" (default: {shown})"
        kind = {list[int]: _ints, list[str]: _names, int: int, float: float}.get(hints[f.name], str)
        kw: dict[str, Any] = {"action": "append"} if f.name == "plugins_dirs" else {"type": kind}
        p.add_argument(name, dest=f.name, help=help_text.replace("%", "%%"), **kw, **flag)


def _plugins_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugins-dir", dest="plugins_dirs", action="append", metavar="DIR",
                   help="load every *.py file in DIR as a plugin (repeatable)")


# --------------------------------------------------------------------------------------------


def console_level(cfg: RunConfig) -> int:
    """The console's log level: ``--quiet`` means warnings and up, else ``--log-level``."""
    if cfg.quiet:
        return logging.WARNING
    return getattr(logging, cfg.log_level.upper(), logging.INFO)


def _console_logging(level: int) -> tuple[logging.Handler, int]:
    from .logs import LOGGER_NAME, OneLineFormatter

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


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run

    cfg = read_config_file(args.config) if args.config else RunConfig()
    overrides: dict[str, Any] = {}
    for key in RUN_KEYS:
        val = getattr(args, key, None)
        if val is not None and key != "plugins_dirs":
            overrides[key] = val
    if args.plugins_dirs:
        overrides["plugins_dirs"] = list(cfg.plugins_dirs) + list(args.plugins_dirs)
    cfg = apply_overrides(cfg, overrides)
    handler, old_level = _console_logging(console_level(cfg))
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
    from .report import write_report

    d = Path(args.dir)
    if not d.is_dir():
        raise UserError(f"{d}: not a folder")
    if not (d / "cases.csv.gz").exists() and not (d / "summary.csv").exists() \
            and not (args.all_cells and (d / "cells").is_dir()):
        raise UserError(f"{d}: no cases.csv.gz here; is this a run folder (prorlbench run --out DIR)?")
    if args.all_cells:
        from .guards import run_lock
        from .report.gridcheck import merge_all_cells
        from .results import RunFolder

        with run_lock(d):  # checksums and grid fingerprints checked before anything is written
            cells, notes = merge_all_cells(RunFolder(d))
        for note in notes:
            print(f"{PROG}: note: {note}", file=sys.stderr)
        print(f"merged {sum(c.ok for c in cells)} finished cell(s) of {d / 'cells'}")
    try:
        text = write_report(d, style=args.style, metrics=args.metrics, ks=args.ks, latex_width=args.latex_width)
    except OSError as exc:  # e.g. a read-only folder: the tables cannot be written
        raise UserError(f"report {d}: {_os_error(exc)}") from None
    print(text.rstrip("\n"))
    print()
    print(f"Tables and plots written to {d}")
    return 0


def _os_error(exc: OSError) -> str:
    """``PATH: reason`` of a file-system error (the path cut to 200 characters)."""
    reason = exc.strerror or one_line(exc)
    name = str(exc.filename) if exc.filename is not None else ""
    return f"{name if len(name) <= 200 else name[:199] + '…'}: {reason}" if name else reason


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(list(argv) if argv is not None else None)
    if extras:
        sub = subparser(parser, args.command)
        sub.error(unknown_flags_message(extras, sub))
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "list":
            from .listing import cmd_list

            return cmd_list(args)
        if args.command == "rescore":
            return cmd_rescore(args, _console_logging)
        if args.command == "paths":
            return cmd_paths(args)
    except UserError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the file system refused a path the user gave (too long, read-only, ...)
        print(f"{PROG}: error: {' '.join(_os_error(exc).split())}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
