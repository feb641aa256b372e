"""Writing files safely, and naming them: the one atomic writer, the one safe-name rule, the
lock one cache entry is built under (:func:`entry_lock`), and the checks that keep a run's writes
and reads where they belong (:func:`refuse_link`, :func:`regular_file`).

Every file prorlbench writes (run folder, simulator cache, SFT cache) goes to a temporary name in
the same folder and is moved into place with :func:`os.replace`, so a killed process leaves either
the old file or the new one, never half of one; the temporary file is removed when writing fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def safe_name(text: str, limit: int | None = None, default: str = "") -> str:
    """``text`` usable in a file name: characters other than ``A-Za-z0-9_.+-`` become ``-``;
    cut to ``limit`` characters; ``default`` when nothing is left.

    This is the one rule by which a name from a config (method, dataset, variant) becomes part
    of a file name. It keeps a safe name as it is (so the cell files of existing folders keep
    their names) and is not one-to-one (``rp x`` and ``rp-x`` both give ``rp-x``): a run calls
    :func:`check_file_names` on its names first, so two of them never share a file."""
    name = _UNSAFE.sub("-", str(text))
    if limit is not None:
        name = name[:limit]
    return name or default


def check_file_names(kind: str, names: Any) -> None:
    """Refuse two ``names`` that give one file name under :func:`safe_name`, or names that differ
    only in case (one file on macOS' and Windows' file systems): one line naming both. A name
    holding a path separator (``../../x``, ``/abs/x``) is refused too: names also become folder
    names of the model cache, and a name is never a path."""
    seen: dict[str, str] = {}
    for name in names:
        sep = next((c for c in ("/", "\\", "\x00") if c in name), None)
        if sep is not None:  # a name is never a path: '../../x' would lead out of the cache folder
            raise UserError(f"{kind}: {name!r} holds {sep!r}; a name may not hold a path separator, rename it")
        for key, where in ((safe_name(name), ""), (safe_name(name).casefold(), " on a case-insensitive file system")):
            other = seen.setdefault(("=" if not where else "~") + key, name)
            if other != name:
                shown = f"'{key}'" if not where else f"('{key}')"
                raise UserError(f"{kind} '{other}' and '{name}' give the same file name{where} {shown}; rename one")


def cell_name(method: str, dataset: str, seed: int) -> str:
    """``<method>__<dataset>__s<seed>``, the stem of a cell's files (:func:`safe_name` of each
    name; :func:`check_grid_names` keeps two cells from sharing one)."""
    return f"{safe_name(method)}__{safe_name(dataset)}__s{int(seed)}"


def check_grid_names(methods: Any, datasets: Any, cells: Any) -> None:
    """Refuse, before anything runs, a grid in which two names give one file: two methods or two
    datasets (:func:`check_file_names`), or two cells (each with ``method``, ``dataset``,
    ``seed``) whose names join into one (``a__b`` on ``c`` and ``a`` on ``b__c``)."""
    check_file_names("methods", methods)
    check_file_names("datasets", datasets)
    seen: dict[str, Any] = {}
    for c in cells:
        name = cell_name(c.method, c.dataset, c.seed)
        other = seen.setdefault(name.casefold(), c)
        if other is not c:
            raise UserError(f"cells {other.method} / {other.dataset} / seed {other.seed} and {c.method} / "
                            f"{c.dataset} / seed {c.seed} share the file name '{name}'; rename a method or a dataset")


def refuse_link(path: Path) -> None:
    """A :class:`UserError` when ``path`` is a symbolic link (dangling or not): a run writes no
    file through a link it did not make (``<out>/cells``, ``.lock``, ``run.log``)."""
    if os.path.islink(path):
        raise UserError(f"{path}: is a symbolic link; prorlbench writes no file through a link it did not "
                        "make (remove it, or choose another --out)")


_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def regular_file(path: str | Path, *, folder_ok: bool = False) -> os.stat_result:
    """``os.stat(path)`` of a regular file (or folder, with ``folder_ok``); anything else (a
    device such as ``/dev/zero``, a FIFO, a socket) is a :class:`~prorlbench.errors.DataError`:
    reading one would never end, or block forever. ``stat`` itself never blocks."""
    from ..errors import DataError

    st = os.stat(path)
    if stat.S_ISREG(st.st_mode) or (folder_ok and stat.S_ISDIR(st.st_mode)):
        return st
    what = next((w for test, w in _KINDS if test(st.st_mode)), "a folder" if stat.S_ISDIR(st.st_mode) else "special")
    raise DataError(path, f"not a regular file ({what}); data paths must name regular files or folders")


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


def atomic_write_bytes(path: str | Path, write: Any) -> None:
    """Call ``write(binary file)`` on a temporary file, fsync it, and move it to ``path``."""
    atomic_write(path, write, "wb")


def atomic_write_frame(path: str | Path, df: Any) -> None:
    """Write a CSV (gzip when the name ends in ``.gz``, with a fixed header time and no file name
    in the header, so equal tables give equal bytes) atomically."""
    data = df.to_csv(index=False).encode("utf-8")
    if str(path).endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    atomic_write(path, lambda fh: fh.write(data), "wb")
