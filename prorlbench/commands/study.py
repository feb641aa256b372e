"""``prorlbench study CONFIG``: run (or merge) a study grid, then write its report, ``comparisons.md``,
the claims' plot and the findings page (:mod:`prorlbench.study.pipeline`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError

PROG = "prorlbench"

STUDY_EPILOG = """\
examples:
  prorlbench study experiments/prorl_study.toml
      run (or resume) the grid; then the report of every finished cell, comparisons.md and
      claims_dynamics.png in the study's folder
  prorlbench study experiments/prorl_study.toml --datasets prorl-json
      one block in this sitting (the tables hold every finished cell of the folder)
  prorlbench study experiments/prorl_study.toml --merge ../gpu/results/prorl-study NEW
      merge the cells of other sittings or machines (checked first), compute nothing
  prorlbench study experiments/prorl_study.toml --merge NEW --template docs/findings.template.md \\
      --findings docs/findings.md --readme README.md
      also the findings page and the README's headline table

Flags override the [run] table of CONFIG, as for `prorlbench run --config CONFIG`.
"""


def add_study_parser(sub: Any, add_run_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    s = sub.add_parser("study", help="run or merge a study grid, then its report, comparisons and findings page",
                       description="Run (or resume) the grid of CONFIG, or merge the finished cells of "
                       "other run folders into it, then write the report of every finished cell "
                       "(--style paper), comparisons.md (paired comparisons, Holm per dataset), "
                       "claims_dynamics.png and, with --template, the findings page.",
                       epilog=STUDY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("config", metavar="CONFIG.toml", help="the study's run config (e.g. experiments/prorl_study.toml)")
    s.add_argument("--merge", nargs="+", type=Path, metavar="RUN",
                   help="merge the finished cells of these run folders (other sittings or machines) instead "
                   "of computing: each cell's files must match their checksums, its data, simulator, "
                   "training and scoring fingerprints must be CONFIG's; a folder with tables only "
                   "(summary.csv, comparisons.md, no cells/) has its datasets' rows spliced in")
    s.add_argument("--template", type=Path, metavar="FILE.md",
                   help="also write the findings page: FILE.md with its [[...]] markers filled from "
                   "comparisons.md ([[include:PATH]] reads PATH from the current folder)")
    s.add_argument("--findings", type=Path, metavar="OUT.md",
                   help="where the findings page goes (default: findings.md in the study's folder)")
    s.add_argument("--readme", type=Path, metavar="README.md",
                   help="with --template: also refresh this file's headline table (the ML-1M block)")
    s.add_argument("--no-plot", action="store_true", help="leave out claims_dynamics.png")
    add_run_flags(s)


def cmd_study(args: argparse.Namespace) -> int:
    from ..plugins import load_registry
    from ..settings.runconfig import out_dir
    from ..study.pipeline import FindingsFiles, build, merge, refuse_tables_only
    from .run import cmd_run, config_from_args

    if not Path(args.config).is_file():
        raise UserError(f"study: {args.config}: no such config file")
    if args.template is not None and not args.template.is_file():
        raise UserError(f"study: --template {args.template}: no such file")
    if args.readme is not None and args.template is None:
        raise UserError("study: --readme needs --template (the README's table is written with the findings page)")
    code = 0
    spliced: list[Path] = []
    cfg = config_from_args(args)
    if args.merge:
        out, spliced = merge(cfg, load_registry(cfg.plugins_dirs), list(args.merge), args.config)
    else:
        refuse_tables_only(Path(out_dir(cfg)))
        args.dry_run = False
        code = cmd_run(args)
        if code not in (0, 1):
            return code
        out = out_dir(cfg)
    files = FindingsFiles(template=args.template, page=(args.findings or out / "findings.md") if args.template else None,
                          readme=args.readme, root=Path.cwd())
    written = build(Path(out), spliced, files, plot=not args.no_plot)
    for p in written:
        print(f"wrote {p}")
    if code:
        print(f"{PROG}: some cells failed; the tables hold the finished ones (re-run to retry)", file=sys.stderr)
    return code
