"""``prorlbench fetch NAME --to DIR``: download a data set, check its checksums, unpack it.

The sources and their checksums are in :mod:`prorlbench.commands.datasources`. For each file: download
to ``DIR/.fetch-<folder>/<file>.part`` (an interrupted transfer is retried, continuing where it
stopped when the server honours ``Range``, up to ``retries`` times; a re-run continues a
``.part`` left by a killed one), check its size against ``Content-Length``, its SHA-256 and MD5
against the registry (a mismatch deletes the download and stops), unpack a zip (no member may
leave the folder), check the unpacked files' SHA-256, write ``.prorlbench-fetch.json`` (what was
fetched, with every file's SHA-256) and move the folder into place as ``DIR/<folder>`` in one
rename, so a folder is there complete or not at all. A folder already there whose files match
its record (or the registry's member checksums) is left as it is ("already present"); a
different one is refused, never overwritten. Errors are one line (offline, HTTP status,
checksum) and leave no folder behind.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from ..errors import UserError
from .datasources import SOURCES, Remote, Source, source

MARKER = ".prorlbench-fetch.json"
CHUNK = 1 << 16

FETCH_EPILOG = """\
examples:
  prorlbench fetch                                 list what can be fetched
  prorlbench fetch ml-100k --to data               -> data/ml-100k (u.data, u.item, ...)
  prorlbench fetch ml-100k prorl-ml-1m --to data
  prorlbench run --methods pop,random --datasets movielens --data-dir data/ml-100k
"""


def add_fetch_parser(sub: Any) -> None:
    f = sub.add_parser("fetch", help="download a data set (checksums checked) into the layout the datasets read",
                       description="Download NAME from its official source, check its SHA-256 (or the "
                       "publisher's MD5), unpack it into DIR/<folder> and print how a run uses it. "
                       "Without NAME: list the data sets.", epilog=FETCH_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("names", nargs="*", metavar="NAME", help="data sets to fetch (see `prorlbench fetch`)")
    f.add_argument("--to", default="data", metavar="DIR", help="folder to put them in (default: data)")
    f.add_argument("--no-verify", action="store_true",
                   help="accept a file whose checksum is not recorded (its SHA-256 is printed); a "
                   "recorded checksum that does not match is never accepted")
    f.add_argument("--retries", type=int, default=3, metavar="N",
                   help="retries of an interrupted download (default: 3)")


def cmd_fetch(args: argparse.Namespace) -> int:
    if not args.names:
        for s in SOURCES:
            print(f"{s.name:14s} {s.summary}\n{'':14s} -> DIR/{s.folder}; checksums: {s.checked}")
        return 0
    if args.retries < 0:
        raise UserError("--retries: must be >= 0")
    for name in args.names:
        folder, note = fetch(source(name), Path(args.to), no_verify=args.no_verify, retries=args.retries,
                             say=lambda m: print(m, file=sys.stderr))
        print(f"{name}: {note} {folder}")
        print(f"  use it: prorlbench run {source(name).use.format(dir=folder)}")
    return 0


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _offline(url: str, exc: BaseException) -> UserError:
    reason = getattr(exc, "reason", exc)
    host = url.split("/")[2] if "//" in url else url
    return UserError(f"fetch: cannot reach {host} ({reason}); are you offline? Download {url} by hand, or "
                     "re-run when the network is back (a partial download is continued)")


def download(url: str, part: Path, *, retries: int = 3, wait: float = 1.0, timeout: float = 60.0,
             opener: Callable[..., Any] = urllib.request.urlopen, say: Callable[[str], None] = lambda m: None) -> None:
    """Download ``url`` into ``part``, continuing what is there (HTTP ``Range``), retrying an
    interrupted transfer ``retries`` times; the file is complete when this returns."""
    attempt = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with opener(req, timeout=timeout) as resp:
                status = getattr(resp, "status", 200)
                if have and status != 206:  # the server sent everything again
                    have = 0
                length = resp.headers.get("Content-Length")
                expected = have + int(length) if length is not None else None
                with open(part, "ab" if have else "wb") as out:
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        out.write(block)
            size = part.stat().st_size
            if expected is not None and size < expected:
                raise ConnectionError(f"transfer ended after {size} of {expected} bytes")
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing left to send: the .part is complete or stale
                part.unlink()
                continue
            raise UserError(f"fetch: {url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, socket.gaierror) or attempt >= retries:
                raise _offline(url, exc) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:  # reset, timeout, short read
            if attempt >= retries:
                raise UserError(f"fetch: {url}: download interrupted ({exc}) after {attempt + 1} tries; "
                                "re-run to continue it") from None
            say(f"fetch: {url}: interrupted ({exc}); retrying")
        attempt += 1
        time.sleep(wait * attempt)


def _check(path: Path, remote: Remote, no_verify: bool) -> str:
    """Check a downloaded file; returns its SHA-256. A mismatch deletes it."""
    got = _digest(path, "sha256")
    checks = [("SHA-256", remote.sha256, got)]
    if remote.md5:
        checks.append(("MD5", remote.md5, _digest(path, "md5")))
    for algo, want, have in checks:
        if want and want != have:
            path.unlink()
            raise UserError(f"fetch: {remote.url}: {algo} mismatch (expected {want}, got {have}); the download "
                            "was deleted. Re-run to download it again; if it persists, the file changed at its source")
    if not remote.sha256 and not remote.md5 and not no_verify:
        path.unlink()
        raise UserError(f"fetch: {remote.url}: no checksum is recorded for this file (SHA-256 of this download: "
                        f"{got}); pass --no-verify to accept it")
    return got


def _unpack(archive: Path, into: Path) -> None:
    """Unpack a zip into ``into``, dropping a single top folder; no member may leave ``into``."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = [i for i in z.infolist() if not i.is_dir()]
            for info in names:
                p = PurePosixPath(info.filename)
                if p.is_absolute() or ".." in p.parts or (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UserError(f"fetch: {archive.name}: member {info.filename!r} would leave the folder; refused")
            tops = {PurePosixPath(i.filename).parts[0] for i in names}
            strip = len(tops) == 1 and all(len(PurePosixPath(i.filename).parts) > 1 for i in names)
            for info in names:
                parts = PurePosixPath(info.filename).parts[1 if strip else 0:]
                dest = into.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as exc:
        raise UserError(f"fetch: {archive.name}: not a valid zip ({exc})") from None


def _present(target: Path, src: Source) -> bool:
    """Is ``target`` a complete copy of ``src``? (its record, else the registry's member checksums)"""
    marker = target / MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        files = record["files"] if record.get("source") == src.name else None
    except (OSError, ValueError, KeyError, TypeError):
        files = None
    wanted = {**(files or {}), **src.members}
    if not wanted:
        return False
    for rel, digest in wanted.items():
        p = target / rel
        if not p.is_file() or _digest(p, "sha256") != digest:
            return False
    return True


def fetch(src: Source, to: Path, *, no_verify: bool = False, retries: int = 3, wait: float = 1.0,
          opener: Callable[..., Any] = urllib.request.urlopen, say: Callable[[str], None] = lambda m: None
          ) -> tuple[Path, str]:
    """Fetch ``src`` into ``to/<folder>``; returns the folder and ``"fetched"`` or ``"already present"``."""
    target = to / src.folder
    if target.exists():
        if _present(target, src):
            return target, "already present (checksums match):"
        raise UserError(f"fetch {src.name}: {target} exists and is not a complete copy of it (its files do not "
                        "match the recorded checksums); move it away or choose another --to")
    stage = to / f".fetch-{src.folder}"
    unpacked = stage / "unpacked"
    try:
        stage.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"fetch: --to {to}: cannot create it ({exc.strerror or exc})") from None
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir()
    sums: dict[str, str] = {}
    for remote in src.files:
        part = stage / (remote.filename + ".part")
        say(f"fetch: {remote.url}")
        download(remote.url, part, retries=retries, wait=wait, opener=opener, say=say)
        got = _check(part, remote, no_verify)
        if not (remote.sha256 or remote.md5):
            say(f"fetch: {remote.filename}: not verified (--no-verify); its SHA-256 is {got}")
        elif not remote.sha256:
            say(f"fetch: {remote.filename}: MD5 matches the publisher's; SHA-256 {got} (not recorded)")
        if remote.unpack:
            _unpack(part, unpacked)
            part.unlink()
        else:
            os.replace(part, unpacked / remote.filename)
    files = {str(p.relative_to(unpacked)): _digest(p, "sha256") for p in sorted(unpacked.rglob("*")) if p.is_file()}
    for rel, digest in src.members.items():
        if files.get(rel) != digest:
            shutil.rmtree(stage, ignore_errors=True)
            raise UserError(f"fetch {src.name}: unpacked file {rel} "
                            f"{'is missing' if rel not in files else 'does not match its SHA-256'}; nothing was kept")
    sums.update(files)
    (unpacked / MARKER).write_text(json.dumps({"source": src.name, "files": sums}, indent=1) + "\n")
    os.replace(unpacked, target)
    shutil.rmtree(stage, ignore_errors=True)
    return target, "fetched into"
