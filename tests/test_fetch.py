"""``prorlbench fetch``: offline, against a local HTTP server serving small fixtures.

The server (``http.server`` in a thread) honours ``Range`` and can cut a transfer short, so the
tests cover: a zip unpacked into the layout the movielens plugin reads, a checksum mismatch, an
interrupted download retried (continuing with ``Range``), a killed download continued by a
re-run, a folder already present, a member that would leave the folder, a file without a
recorded checksum, and the one-line error when the host cannot be reached. The real registry is
checked against the shared data where it is there.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from prorlbench.commands import datasources
from prorlbench.cli import main
from prorlbench.commands.datasources import Remote, Source
from prorlbench.errors import UserError
from prorlbench.commands.fetch import MARKER, fetch

U_DATA = "".join(f"{u}\t{i}\t{1 + (u * i) % 5}\t{1000 + 10 * i + u}\n" for u in range(1, 5) for i in range(1, 9))
U_ITEM = "".join(f"{i}|Movie {i} (1995)|01-Jan-1995||http://x|0|{i % 2}|{(i + 1) % 2}" + "|0" * 16 + "\n"
                 for i in range(1, 9))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


class Server:
    """Serves ``files`` (path -> bytes); ``cut[path] = n`` ends the next transfer of path after n bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Range", "")))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                body = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                n = outer.cut.pop(self.path, None)
                if n is not None:
                    self.wfile.write(body[:n])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def ml_source(server: Server, **remote) -> Source:
    """A MovieLens-100K-like zip (one top folder, as GroupLens's) with its real checksums."""
    data = make_zip({"ml-100k/u.data": U_DATA, "ml-100k/u.item": U_ITEM, "ml-100k/README": "fixture\n"})
    server.files["/ml-100k.zip"] = data
    kw = {"sha256": sha(data), "md5": hashlib.md5(data).hexdigest(), "unpack": True, **remote}
    return Source(name="ml-100k", folder="ml-100k", summary="fixture", files=(Remote(server.url("/ml-100k.zip"), **kw),),
                  use="--datasets movielens --data-dir {dir}", members={"u.data": sha(U_DATA.encode())})


def test_a_zip_is_unpacked_into_the_layout_the_movielens_plugin_reads(server, tmp_path, monkeypatch):
    folder, note = fetch(ml_source(server), tmp_path, wait=0)
    assert folder == tmp_path / "ml-100k" and note.startswith("fetched")
    assert (folder / "u.data").read_text() == U_DATA and (folder / MARKER).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["ml-100k"]  # no staging folder or .part left
    monkeypatch.setenv("PRORLBENCH_PLUGINS", "movielens")
    from prorlbench.config import build_config
    from prorlbench.plugins import load_registry

    spec = load_registry().dataset("movielens")
    data = spec.load(build_config(spec.config_cls, {"min_seq_len": 3}), folder)
    assert data.n_items == 8 and sum(len(v) for v in data.sequences.values()) == 4


def test_a_checksum_mismatch_stops_and_keeps_nothing(server, tmp_path):
    src = ml_source(server, sha256="0" * 64)
    with pytest.raises(UserError, match="SHA-256 mismatch .* the download was deleted"):
        fetch(src, tmp_path, wait=0)
    assert not (tmp_path / "ml-100k").exists()
    assert not list(tmp_path.rglob("*.part"))
    src = ml_source(server, md5="0" * 32)  # the publisher's MD5 is checked too
    with pytest.raises(UserError, match="MD5 mismatch"):
        fetch(src, tmp_path, wait=0)
    bad_member = Source(**{**ml_source(server).__dict__, "members": {"u.data": "1" * 64}})
    with pytest.raises(UserError, match="u.data does not match its SHA-256"):
        fetch(bad_member, tmp_path, wait=0)
    assert not (tmp_path / "ml-100k").exists()


def test_an_interrupted_download_is_retried_where_it_stopped(server, tmp_path):
    src = ml_source(server)
    server.cut["/ml-100k.zip"] = 100
    folder, _ = fetch(src, tmp_path, retries=2, wait=0)
    assert (folder / "u.data").read_text() == U_DATA
    assert server.requests == [("/ml-100k.zip", ""), ("/ml-100k.zip", "bytes=100-")]


def test_a_killed_download_is_continued_by_a_re_run(server, tmp_path):
    src = ml_source(server)
    server.cut["/ml-100k.zip"] = 150
    with pytest.raises(UserError, match="download interrupted .* re-run to continue"):
        fetch(src, tmp_path, retries=0, wait=0)
    assert not (tmp_path / "ml-100k").exists()
    assert (tmp_path / ".fetch-ml-100k" / "ml-100k.zip.part").stat().st_size == 150
    folder, note = fetch(src, tmp_path, retries=0, wait=0)
    assert note.startswith("fetched") and (folder / "u.item").read_text() == U_ITEM
    assert server.requests[-1] == ("/ml-100k.zip", "bytes=150-")


def test_already_present_downloads_nothing_and_a_foreign_folder_is_refused(server, tmp_path):
    src = ml_source(server)
    fetch(src, tmp_path, wait=0)
    n = len(server.requests)
    folder, note = fetch(src, tmp_path, wait=0)
    assert note.startswith("already present") and len(server.requests) == n
    (folder / "u.data").write_text("edited\n")
    with pytest.raises(UserError, match="exists and is not a complete copy"):
        fetch(src, tmp_path, wait=0)
    assert (folder / "u.data").read_text() == "edited\n"  # never overwritten


def test_a_member_that_would_leave_the_folder_is_refused(server, tmp_path):
    data = make_zip({"ml-100k/u.data": U_DATA, "../evil.txt": "x"})
    server.files["/evil.zip"] = data
    src = Source(name="evil", folder="evil", summary="", use="", files=(Remote(server.url("/evil.zip"), sha256=sha(data),
                                                                               unpack=True),))
    with pytest.raises(UserError, match="would leave the folder"):
        fetch(src, tmp_path / "to", wait=0)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "to" / "evil").exists()


def test_a_file_without_a_recorded_checksum_needs_no_verify(server, tmp_path, capsys):
    server.files["/x.test"] = b"[]"
    src = Source(name="x", folder="x", summary="", use="", files=(Remote(server.url("/x.test")),))
    with pytest.raises(UserError, match=f"no checksum is recorded .*{sha(b'[]')}.* --no-verify"):
        fetch(src, tmp_path, wait=0)
    notes = []
    folder, _ = fetch(src, tmp_path, no_verify=True, wait=0, say=notes.append)
    assert (folder / "x.test").read_bytes() == b"[]" and any(sha(b"[]") in n for n in notes)


def test_offline_is_one_line(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = Source(name="ml-100k", folder="ml-100k", summary="", use="",
                 files=(Remote(f"http://127.0.0.1:{port}/ml-100k.zip", sha256="0" * 64, unpack=True),))
    monkeypatch.setattr(datasources, "SOURCES", (src,))
    assert main(["fetch", "ml-100k", "--to", str(tmp_path), "--retries", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 2  # the URL being fetched, then the error
    last = err.splitlines()[-1]
    assert last.startswith("prorlbench: error: fetch: cannot reach 127.0.0.1") and "offline" in last
    assert not (tmp_path / "ml-100k").exists()
    assert main(["fetch", "nope", "--to", str(tmp_path)]) == 2
    assert "unknown data set 'nope'" in capsys.readouterr().err


def test_the_cli_fetches_and_says_how_to_use_it(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasources, "SOURCES", (ml_source(server),))
    assert main(["fetch", "ml-100k", "--to", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"fetched into {tmp_path / 'ml-100k'}" in out
    assert f"prorlbench run --datasets movielens --data-dir {tmp_path / 'ml-100k'}" in out
    assert main(["fetch"]) == 0 and "ml-100k" in capsys.readouterr().out


def test_the_registry_matches_the_shared_copies(shared_data):
    """The recorded SHA-256 of the ProRL splits and of ML-100K's u.data and u.user are those of
    the copies under ../shared/data (its u.item had its accents removed, so it is not compared)."""
    by_name = {s.name: s for s in datasources.SOURCES}
    for remote in by_name["prorl-ml-1m"].files:
        assert remote.sha256 == sha((shared_data / "prorl-ml-1m" / remote.filename).read_bytes()), remote.url
        assert datasources.PRORL_COMMIT in remote.url
    for name in ("u.data", "u.user"):
        assert by_name["ml-100k"].members[name] == sha((shared_data / "ml-100k" / name).read_bytes())
    for s in datasources.SOURCES:
        assert all(r.url.startswith("https://") for r in s.files)
        assert all(r.sha256 or r.md5 for r in s.files), f"{s.name}: a file with no checksum"
