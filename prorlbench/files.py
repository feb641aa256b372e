"""Writing files safely, and naming them: the one atomic writer and the one safe-name rule.

Every file prorlbench writes (run folder, simulator cache, SFT cache) goes to a temporary name in
the same folder and is moved into place with :func:`os.replace`, so a killed process leaves either
the old file or the new one, never half of one; the temporary file is removed when writing fails.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def safe_name(text: str, limit: int | None = None, default: str = "") -> str:
    """``text`` usable in a file name: characters other than ``A-Za-z0-9_.+-`` become ``-``;
    cut to ``limit`` characters; ``default`` when nothing is left."""
    name = _UNSAFE.sub("-", str(text))
    if limit is not None:
        name = name[:limit]
    return name or default


def atomic_write(path: str | Path, write: Callable[[IO[Any]], None], mode: str = "wb", *,
                 fsync: bool = False) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kw: dict[str, Any] = {} if "b" in mode else {"encoding": "utf-8"}
        with os.fdopen(fd, mode, **kw) as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (flushed to disk before the move)."""
    atomic_write(path, lambda fh: fh.write(text), "w", fsync=True)
