"""Where ``prorlbench fetch`` downloads data from, and the checksums it checks.

Every source names its official URL, the folder it becomes under ``--to DIR`` (the layout the
dataset plugins read: ``DIR/ml-100k`` holds ``u.data``, ``DIR/ml-1m`` holds ``ratings.dat``,
``DIR/prorl-ml-1m`` holds ``ml-1m.test``), and checksums:

* ``sha256``/``md5`` of each downloaded file (the archive, or the file itself). A checksum is
  recorded only where we could check it or the publisher published it; ``None`` means unknown,
  never guessed. A file with neither is refused unless ``--no-verify`` (which prints the SHA-256
  it got, for the record).
* ``members``: SHA-256 of files after unpacking, checked too.

Provenance of the recorded checksums (``Source.checked``):

* ML-100K: the zip's MD5 ``0e3384...`` is GroupLens's own (``ml-100k.zip.md5`` next to the zip);
  its SHA-256 and those of ``u.item`` and ``u.user`` are quoted identically by several public
  projects that download the official zip. ``u.data`` and ``u.user`` were also checked here
  against a copy of the published files (the ``u.item`` of that copy had its accents removed, so
  it could not confirm ``u.item``). We had no copy of the zip itself.
* ML-1M: only GroupLens's published MD5 of the zip (``ml-1m.zip.md5``) is known; its SHA-256 is
  not recorded (we found no copy to compute it from), so ``fetch ml-1m`` verifies the MD5 and
  prints the SHA-256 it computed.
* ProRL's released ML-1M splits: SHA-256 computed here from the authors' repository
  (github.com/hongruhou89/ProRL, commit ``5d5d802``, the URLs are pinned to it) and equal to the
  copy the project's tests use. The repository also holds ``ml-1m.train``, too large for the
  snapshot we could read: with no checksum to check it against it is not fetched (the
  ``prorl-json`` plugin carves a training split out of the validation cases without it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRORL_COMMIT = "5d5d80213120f67134f4703102c8e4e4dcb04b0a"
_PRORL = f"https://raw.githubusercontent.com/hongruhou89/ProRL/{PRORL_COMMIT}/datasets/ml-1m/"
_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class Remote:
    """One file to download."""

    url: str
    sha256: str | None = None
    md5: str | None = None
    unpack: bool = False
    """A zip archive: its files (under its single top folder, if it has one) become the folder."""

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Source:
    """A data set ``prorlbench fetch NAME`` can download."""

    name: str
    folder: str
    """The folder made under ``--to DIR``."""
    summary: str
    files: tuple[Remote, ...]
    use: str
    """How a run reads it (``{dir}`` is the folder)."""
    members: dict[str, str] = field(default_factory=dict)
    """SHA-256 of files after unpacking (relative to the folder)."""
    licence: str = ""
    checked: str = ""
    """Where the recorded checksums come from."""


SOURCES: tuple[Source, ...] = (
    Source(
        name="ml-100k", folder="ml-100k",
        summary="MovieLens 100K (GroupLens): 100,000 ratings, 943 users, 1,682 movies",
        files=(Remote(_GROUPLENS + "ml-100k.zip",
                      sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                      md5="0e33842e24a9c977be4e0107933c0723", unpack=True),),
        members={"u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                 "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
                 "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"},
        use="--datasets movielens --data-dir {dir}",
        licence="GroupLens: research use, no redistribution (see its README)",
        checked="zip MD5 published by GroupLens; zip and member SHA-256 as quoted by public projects; "
                "u.data and u.user also checked here"),
    Source(
        name="ml-1m", folder="ml-1m",
        summary="MovieLens 1M (GroupLens): 1,000,209 ratings, 6,040 users, 3,706 movies",
        files=(Remote(_GROUPLENS + "ml-1m.zip", md5="c4d9eecfca2ab87c1945afe126590906", unpack=True),),
        use="--datasets movielens --data-dir {dir}",
        licence="GroupLens: research use, no redistribution (see its README)",
        checked="zip MD5 published by GroupLens only; SHA-256 unknown (printed after the download)"),
    Source(
        name="prorl-ml-1m", folder="prorl-ml-1m",
        summary="ProRL's released ML-1M guidance cases (validation and test splits, maps, semantic IDs)",
        files=(Remote(_PRORL + "ml-1m.test", sha256="918f5362b9f491d3cd77212c4eb4e5c270c710483478864ef1f59990260c1611"),
               Remote(_PRORL + "ml-1m.val", sha256="010f67346c379e4aab9f273be6d6ff8db8a6c784bd2893a223f9d81c68b26e2e"),
               Remote(_PRORL + "ml-1m.datamaps",
                      sha256="75704eaf830f1015a41178e451856ae67a5a4a4f37775414c47de63396004872"),
               Remote(_PRORL + "qwen3-embedding-8b-pca.sem_ids",
                      sha256="6947a3a5cb60a80628f152bc6ffbccd040019320951a510117fd327a628acfd7")),
        use="--datasets prorl-json --data-dir {dir}",
        licence="as the ProRL repository (github.com/hongruhou89/ProRL); derived from MovieLens 1M",
        checked=f"SHA-256 computed here from the repository at commit {PRORL_COMMIT[:7]}"),
)
"""The sources, by name (``prorlbench fetch`` lists them)."""


def source(name: str) -> Source:
    from ..errors import UnknownNameError

    for s in SOURCES:
        if s.name == name:
            return s
    raise UnknownNameError("data set", name, [s.name for s in SOURCES])
