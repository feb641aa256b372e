"""Errors a user can act on. The CLI prints them as one line and exits 2; no traceback."""

from __future__ import annotations

import difflib
from pathlib import Path


class UserError(Exception):
    """Bad input (a file, a line, an option, a config key): shown as one line, exit code 2."""

    exit_code = 2


class DataError(UserError):
    """A data file is missing or malformed."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(UserError):
    """A bad option or config key."""


class UnknownNameError(UserError):
    """A plugin name that is not registered."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        hint = difflib.get_close_matches(name, valid, n=1)
        tip = f" (did you mean '{hint[0]}'?)" if hint else ""
        super().__init__(f"unknown {kind} '{name}'{tip}; valid: {', '.join(sorted(valid))}")


def did_you_mean(word: str, options: list[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    hint = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def one_line(error: BaseException | str, limit: int | None = None) -> str:
    """An error as one line: ``Type: message`` for an exception (``Type`` alone when it has no
    message), the text itself for a string; whitespace squashed, cut to ``limit`` characters."""
    text = " ".join(str(error).split())
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"
