"""The ``prorlbench`` command: ``run``, ``report``, ``rescore``, ``paths``, ``list``, ``fetch`` and ``study``.

Exit codes: 0 success; 1 some cells failed (or the report could not be built); 2 bad input or
output: a UserError, or a file-system error on a path the user gave (a name too long, a
read-only folder, a full disk), as one line ``prorlbench: error: ...`` on stderr, no traceback;
130 interrupted (finished cells are kept; re-running the same command resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from typing import Any, Sequence

from . import __version__
from .commands.fetch import add_fetch_parser
from .commands.parse import Parser, subparser, unknown_flags_message
from .commands.rescore import add_rescore_parsers, cmd_paths, cmd_rescore
from .commands.run import cmd_report, cmd_run, console_logging, os_error
from .commands.study import add_study_parser
from .errors import UserError
from .settings.runconfig import PROFILES, RUN_KEYS, STYLES, RunConfig, int_list, split_list

# Start-up: torch, pandas and the plugins are imported by the commands that use them, never here
# (`prorlbench --version` and `--help` stay well under a second; benchmarks/startup.py).

PROG = "prorlbench"

MAIN_EPILOG = """\
examples:
  prorlbench run --methods random,pop          the default run (synthetic data, SASRec simulator)
  prorlbench report results/random+pop_synthetic
  prorlbench list methods
  prorlbench fetch ml-100k --to data           download a data set (checksums checked)
  prorlbench study experiments/prorl_study.toml  a study grid, its comparisons and findings (docs/findings.md)

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
  prorlbench report results/paper --style paper --latex-label paper --plots none
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
        return int_list(text)
    except (ValueError, UserError):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers or ranges (0-2), got {text!r}") from None


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
    rp.add_argument("--latex-label", metavar="NAME", help="prefix of every table's \\label: tab:NAME-paper-1, ... "
                    "(default: the folder's name), so two runs' tables can share one paper")
    rp.add_argument("--plots", choices=("none", "summary", "all"), default="summary",
                    help="figures: none; summary (metrics.png and one training figure of at most 8 panels per "
                    "dataset; the default); all (also every logged training curve and train_dynamics)")
    rp.add_argument("--all-cells", action="store_true",
                    help="first merge every finished cell under DIR/cells (grids run in several "
                    "commands, e.g. one dataset at a time, or cells copied together from several runs into a "
                    "folder with its own config.toml), not only the last command's grid; refuses cells whose "
                    "files do not match their status's checksums, and a dataset whose cells were made with "
                    "other data, simulator config or scoring")

    add_rescore_parsers(sub, names=_names, ints=_ints, plugins_arg=_plugins_arg)
    add_fetch_parser(sub)
    add_study_parser(sub, add_run_flags)

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
        kw: dict[str, Any] = {"action": "append"} if f.name in ("plugins_dirs", "sets") else {"type": kind}
        p.add_argument(name, dest=f.name, help=help_text.replace("%", "%%"), **kw, **flag)


def _plugins_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugins-dir", dest="plugins_dirs", action="append", metavar="DIR",
                   help="load every *.py file in DIR as a plugin (repeatable)")


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
        if args.command == "fetch":
            from .commands.fetch import cmd_fetch

            return cmd_fetch(args)
        if args.command == "list":
            from .commands.listing import cmd_list

            return cmd_list(args)
        if args.command == "rescore":
            return cmd_rescore(args, console_logging)
        if args.command == "paths":
            return cmd_paths(args)
        if args.command == "study":
            from .commands.study import cmd_study

            return cmd_study(args)
    except UserError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the file system refused a path the user gave (too long, read-only, ...)
        print(f"{PROG}: error: {' '.join(os_error(exc).split())}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
