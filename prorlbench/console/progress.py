"""Progress on the console: a tqdm bar in a terminal, plain periodic lines otherwise.

:func:`tqdm` takes tqdm's arguments (``iterable``, ``total``, ``desc``, ``disable``, ...). When
stderr is a terminal it returns a real ``tqdm`` bar. When it is not (a batch job, a pipe, a log
file) it returns a :class:`PlainProgress`, which writes one line such as
``cells: 3/10 (30%) 1m05s elapsed, random/synthetic/s0 ok`` at most every
:data:`PLAIN_INTERVAL` seconds (``$PRORLBENCH_PROGRESS_INTERVAL`` overrides it) and when it ends,
so a batch log shows progress without carriage-return noise. ``disable=True`` shows nothing.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator

from tqdm.auto import tqdm as _tqdm

PLAIN_INTERVAL = 30.0
"""Seconds between two plain progress lines."""


def _interval() -> float:
    try:
        return float(os.environ.get("PRORLBENCH_PROGRESS_INTERVAL", PLAIN_INTERVAL))
    except ValueError:
        return PLAIN_INTERVAL


def _fmt_time(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class PlainProgress:
    """The subset of tqdm's interface the harness uses, printing plain lines to stderr."""

    def __init__(self, iterable: Iterable[Any] | None = None, total: int | None = None,
                 desc: str = "", disable: bool = False, **_: Any):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.desc = desc or "progress"
        self.disable = disable
        self.n = 0
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._interval = _interval()
        self._closed = False

    def _line(self) -> str:
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        post = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {count}{pct} {_fmt_time(time.monotonic() - self._start)} elapsed{post}"

    def _maybe_print(self, force: bool = False) -> None:
        if self.disable:
            return
        now = time.monotonic()
        if force or now - self._last >= self._interval:
            self._last = now
            sys.stderr.write(self._line() + "\n")
            sys.stderr.flush()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._maybe_print()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def close(self) -> None:
        if not self._closed and self.n:
            self._maybe_print(force=True)
        self._closed = True

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None, "PlainProgress without an iterable"
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def tqdm(iterable: Iterable[Any] | None = None, *args: Any, **kwargs: Any) -> Any:
    """A tqdm bar on a terminal, :class:`PlainProgress` otherwise (see the module docstring)."""
    if kwargs.get("disable") or is_terminal():
        return _tqdm(iterable, *args, **kwargs)
    return PlainProgress(iterable, *args, **kwargs)
