"""The ``rescore`` and ``paths`` commands of the ``prorlbench`` CLI (see :mod:`prorlbench.engine.rescore`)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Callable

PROG = "prorlbench"

RESCORE_EPILOG = """\
examples:
  prorlbench rescore results/random+pop_synthetic                 same scores, tables rebuilt
  prorlbench rescore results/paper --eval-simulator sasrec,gru4rec
  prorlbench rescore results/paper --metrics ioi,ctr --ks 1,5
"""

PATHS_EPILOG = """\
examples:
  prorlbench paths results/paper --method prorl
  prorlbench paths results/paper --method prorl --case 3 --k 2
"""


def add_rescore_parsers(sub: Any, *, names: Callable[[str], list[str]], ints: Callable[[str], list[int]],
                        plugins_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``rescore`` and ``paths`` subcommands to the CLI's subparsers."""
    rs = sub.add_parser("rescore", help="score a finished run's stored paths again (no retraining)",
                        description="Score the candidate paths stored in every cell of DIR again, with "
                        "other eval simulators, metrics or ks, and rewrite its tables. No method is "
                        "fitted; the eval simulators come from the cache. DIR is data: plugins come "
                        "from --plugins-dir and the cache from --cache-dir or $PRORLBENCH_CACHE_DIR, "
                        "never from DIR/config.toml.",
                        epilog=RESCORE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rs.add_argument("dir", metavar="DIR", help="a run folder (holds config.toml and cells/)")
    rs.add_argument("--eval-simulator", dest="eval_simulators", type=names, metavar="NAME[,NAME]",
                    help="simulators that score the paths (default: those of the run)")
    rs.add_argument("--metrics", type=names, metavar="A,B", help="metrics (default: those of the run)")
    rs.add_argument("--ks", type=ints, metavar="1,5,10", help="K values; at most the stored candidates")
    rs.add_argument("--cache-dir", metavar="DIR", help="trained-model cache (default: $PRORLBENCH_CACHE_DIR "
                    "or ~/.cache/prorlbench, as for run; never the folder's cache_dir)")
    rs.add_argument("--data-dir", metavar="DIR", help="raw data folder, when it moved since the run")
    rs.add_argument("--device", metavar="auto|cpu|cuda", help="torch device (default: auto)")
    rs.add_argument("--wait", action="store_true", default=None, help="wait for a run holding DIR")
    rs.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                    help="no progress bars or info messages on the console")
    plugins_arg(rs)

    pa = sub.add_parser("paths", help="print a case's history, target and candidate paths",
                        description="Print one case of a cell of DIR: history, target, reference "
                        "path and the stored candidate paths, with item titles where the dataset "
                        "has them, and the case's metric values. DIR is data: a dataset plugin "
                        "comes from --plugins-dir, never from DIR/config.toml.",
                        epilog=PATHS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    pa.add_argument("dir", metavar="DIR", help="a run folder")
    pa.add_argument("--method", required=True, help="the method whose paths to show")
    pa.add_argument("--dataset", help="dataset (default: the run's first)")
    pa.add_argument("--seed", type=int, help="seed (default: the run's first)")
    pa.add_argument("--case", metavar="N|ID", help="case index or case id (default: 0)")
    pa.add_argument("--k", type=int, metavar="K", help="show the first K candidates (default: all)")
    pa.add_argument("--data-dir", metavar="DIR", help="raw data folder, for item titles")
    plugins_arg(pa)


def cmd_rescore(args: argparse.Namespace, console_logging: Callable[[bool], tuple[logging.Handler, int]]) -> int:
    """``prorlbench rescore``: exit 0, or 1 when a cell or the report failed."""
    from ..engine.rescore import plugins_note, rescore

    note = plugins_note(args.dir, args.plugins_dirs)
    if note:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    handler, old_level = console_logging(args.progress is not False)
    try:
        result = rescore(args.dir, eval_simulators=args.eval_simulators, metrics=args.metrics, ks=args.ks,
                         cache_dir=args.cache_dir, data_dir=args.data_dir, device=args.device,
                         progress=args.progress, wait=args.wait,
                         plugins_dirs=list(args.plugins_dirs) if args.plugins_dirs else None)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; re-run the same command to finish re-scoring {args.dir}", file=sys.stderr)
        return 130
    finally:
        logging.getLogger("prorlbench").removeHandler(handler)
        logging.getLogger("prorlbench").setLevel(old_level)
    if result.summary:
        print(result.summary.rstrip("\n"))
        print()
    from .run import print_selection

    print_selection(result.out)  # --select-on valid: its test column follows the new scores
    print(f"{len(result.cells)} cells re-scored from their stored paths ({len(result.skipped)} unchanged). "
          f"Results: {result.out}")
    if result.failed or result.report_error:
        first = result.failed[0].error if result.failed else result.report_error
        print(f"{PROG}: {len(result.failed)} cells failed (first: {first}); see run.log", file=sys.stderr)
        return 1
    return 0


def cmd_paths(args: argparse.Namespace) -> int:
    """``prorlbench paths``: print one case of a cell."""
    from ..engine.rescore import plugins_note, show_paths

    note = plugins_note(args.dir, args.plugins_dirs)
    if note:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    print(show_paths(args.dir, args.method, dataset=args.dataset, seed=args.seed, case=args.case, k=args.k,
                     data_dir=args.data_dir, plugins_dirs=args.plugins_dirs).rstrip("\n"))
    return 0
