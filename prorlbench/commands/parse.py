"""The argument parser of the ``prorlbench`` command: one-line errors, no abbreviations, and
"did you mean" for mistyped flags.

argparse's own error prints a usage block of many lines; :class:`Parser` prints one line,
``prorlbench: error: ...``, and exits 2. Abbreviated flags are refused (``allow_abbrev=False``), so
``--dev`` is not silently taken for ``--device``; an unknown flag names the closest valid one.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import NoReturn

PROG = "prorlbench"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (exit 2) and that allows no abbreviations."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = f" (see `{self.prog} --help`)"
        sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}{hint}\n")
        sys.exit(2)


def option_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every ``--flag`` a parser accepts."""
    return sorted(s for s in parser._option_string_actions if s.startswith("--"))


def unknown_flags_message(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """``unrecognized argument --devcie (did you mean '--device'?)`` for the first unknown flag,
    else a plain list of the unrecognised arguments."""
    valid = option_names(parser)
    for arg in extras:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, valid, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return f"unrecognized argument {flag}{hint}"
    return f"unrecognized arguments: {' '.join(extras)}"


def subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The parser of sub-command ``command`` (``parser`` itself when there is none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser
