"""Writing files safely, and naming them: the one atomic writer, the one safe-name rule, and the
lock one cache entry is built under (:func:`entry_lock`).

Every file prorlbench writes (run folder, simulator cache, SFT cache) goes to a temporary name in
the same folder and is moved into place with :func:`os.replace`, so a killed process leaves either
the old file or the new one, never half of one; the temporary file is removed when writing fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from .errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def safe_name(text: str, limit: int | None = None, default: str = "") -> str:
    """``text`` usable in a file name: characters other than ``A-Za-z0-9_.+-`` become ``-``;
    cut to ``limit`` characters; ``default`` when nothing is left."""
    name = _UNSAFE.sub("-", str(text))
    if limit is not None:
        name = name[:limit]
    return name or default


class OutputError(UserError):
    """A file could not be written (read-only folder, full disk, ...): one line, exit code 2."""


def _output_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"{path}: cannot write ({exc.strerror or exc}); what was finished is kept, "
                       "re-run the same command to resume")


def file_mode() -> int:
    """The mode a newly created file gets under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _WriteErrors:
    """A file that remembers the first ``OSError`` a write raised: a library may turn it into its
    own error (torch's zip writer raises ``RuntimeError: unexpected pos`` on a full disk), and the
    user should read "No space left on device", not that."""

    def __init__(self, fh: IO[Any]):
        self._fh, self.error = fh, None

    def write(self, data: Any) -> Any:
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def atomic_write(path: str | Path, write: Callable[[IO[Any]], None], mode: str = "wb", *,
                 fsync: bool = True) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, flush it to disk, then move it
    into place. The file gets the umask's mode (``mkstemp`` alone gives 0600); a failing write
    (read-only folder, full disk) is an :class:`OutputError` naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from None
    try:
        os.fchmod(fd, file_mode())
        kw: dict[str, Any] = {} if "b" in mode else {"encoding": "utf-8"}
        with os.fdopen(fd, mode, **kw) as fh:
            watched = _WriteErrors(fh)
            try:
                write(watched)  # type: ignore[arg-type]
            except Exception:
                if watched.error is not None:
                    raise watched.error from None
                raise
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _output_error(path, exc) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (flushed to disk before the move)."""
    atomic_write(path, lambda fh: fh.write(text), "w", fsync=True)


@contextlib.contextmanager
def entry_lock(lock_path: Path | None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (a no-op for ``None``): one process builds a
    cache entry while the others wait, then load what it wrote."""
    if lock_path is None:
        yield
        return
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OutputError(f"{lock_path}: cannot create the cache lock ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def cache_folder(cache_dir: str | Path) -> Path:
    """``cache_dir``, created; a path that is a file (or unwritable) is a one-line UserError."""
    folder = Path(cache_dir)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"cache dir {folder}: is a file, expected a folder (--cache-dir / cache_dir)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cache dir {folder}: cannot create it ({exc.strerror or exc})") from None
    return folder
