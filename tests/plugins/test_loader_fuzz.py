"""Property-based tests: whatever a data file holds, a loader returns data or raises a UserError.

Random and mutated file contents for the csv, movielens (u.data / ratings.dat) and prorl-json
loaders. Any other exception (a traceback for the user) fails the test.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from prorlbench.api import Interactions
from prorlbench.errors import UserError
from prorlbench_plugins.datasets import csv_data, movielens, prorl_json

# PRORLBENCH_FUZZ_EXAMPLES raises the example count for a longer local hunt.
FUZZ = settings(max_examples=int(os.environ.get("PRORLBENCH_FUZZ_EXAMPLES", "200")), deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)

# ----------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw, base: bytes):
    """``base`` with a few random byte-level edits (insert, delete, replace, duplicate, truncate)."""
    data = bytearray(base)
    pieces = [b",", b"\t", b"::", b"|", b"\n", b"\r\n", b'"', b"[", b"]", b"{", b"}", b"-1", b"1e999",
              b"NaN", b"\xff", b"\xc3", b"\x00", b"x", b"9" * 30, b" ", b"", b'"inters"', b'"proc_path"',
              b'"target"', b"null", b"0"]
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "dup_line", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data))))
        if op == "insert":
            data[pos:pos] = draw(st.sampled_from(pieces) | st.binary(max_size=6))
        elif op == "delete" and data:
            data[pos : pos + draw(st.integers(1, 20))] = b""
        elif op == "replace" and data:
            data[pos : pos + 1] = draw(st.sampled_from(pieces))
        elif op == "dup_line":
            lines = bytes(data).split(b"\n")
            k = draw(st.integers(0, len(lines) - 1))
            lines.insert(k, lines[k])
            data = bytearray(b"\n".join(lines))
        elif op == "truncate":
            data = data[:pos]
    return bytes(data)


def check(load, *args) -> None:
    try:
        out = load(*args)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        event(f"rejected: {type(exc).__name__}")
        return
    event("loaded")
    assert isinstance(out, Interactions)
    assert out.n_items > 0
    for seqs in out.sequences.values():
        for s in seqs:
            assert all(0 <= i < out.n_items for i in s)


# ----------------------------------------------------------------------------- csv


def _csv_base() -> bytes:
    rows = ["user,item,timestamp,attributes"]
    for u in range(4):
        for k in range(5):
            rows.append(f"u{u},{(u + k) % 7},{k * 10 + u},g{k % 2}|h")
    return ("\n".join(rows) + "\n").encode()


CSV_BASE = _csv_base()
CSV_TEXT = st.lists(
    st.lists(st.sampled_from(["user", "item", "timestamp", "attributes", "1", "2", "x", "", "1.5", "a|b",
                              '"q,"', "nan", "-3", "é"]) | st.text(max_size=5), min_size=0, max_size=5),
    max_size=8,
).map(lambda rows: "\n".join(",".join(r) for r in rows).encode("utf-8", "surrogatepass"))


def _load_csv(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "data.csv"
        p.write_bytes(content)
        check(csv_data.load, csv_data.CsvConfig(path=str(p), min_seq_len=2), None)


@FUZZ
@given(mutated(CSV_BASE))
def test_csv_mutated(content):
    _load_csv(content)


@FUZZ
@given(CSV_TEXT | st.binary(max_size=200))
def test_csv_random(content):
    _load_csv(content)


# ----------------------------------------------------------------------------- movielens


def _ml_base(sep: str) -> bytes:
    rows = [sep.join([str(u), str((u * 3 + k) % 9 + 1), str(k % 5 + 1), str(100 + k)])
            for u in range(1, 5) for k in range(5)]
    return ("\n".join(rows) + "\n").encode()


U_ITEM = "".join(f"{i}|Film {i}|01-Jan-1995||http://x|" + "|".join("1" if (i + g) % 5 == 0 else "0"
                                                                       for g in range(19)) + "\n"
                 for i in range(1, 10)).encode("latin-1")


def _load_ml(ratings: bytes, name: str, items: bytes | None) -> None:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / name).write_bytes(ratings)
        if items is not None:
            (Path(d) / ("u.item" if name == "u.data" else "movies.dat")).write_bytes(items)
        check(movielens.load, movielens.MovieLensConfig(min_seq_len=2), Path(d))


@FUZZ
@given(mutated(_ml_base("\t")), st.booleans())
def test_movielens_100k_mutated(content, with_items):
    _load_ml(content, "u.data", U_ITEM if with_items else None)


@FUZZ
@given(mutated(_ml_base("::")), mutated(b"".join(b"%d::Film %d (1990)::Drama|Comedy\n" % (i, i) for i in range(1, 10))))
def test_movielens_1m_mutated(content, movies):
    _load_ml(content, "ratings.dat", movies)


@FUZZ
@given(st.binary(max_size=120) | st.text(alphabet="0123456789\t:\n.-xe ", max_size=120).map(str.encode),
       st.one_of(st.none(), mutated(U_ITEM)))
def test_movielens_random(content, items):
    _load_ml(content, "u.data", items)


# ----------------------------------------------------------------------------- prorl-json

ITEMS = [str(i) for i in range(1, 13)]
DATAMAPS = json.dumps({"raw_item_id2attribute": {i: [int(i) % 3] for i in ITEMS},
                       "item2id": {i: k + 1 for k, i in enumerate(ITEMS)},
                       "itemid2title": {str(k + 1): f"T{i}" for k, i in enumerate(ITEMS)}}).encode()
CASES = json.dumps([{"inters": ["1", "2", "3"], "target": "5", "proc_path": ["4", "5"], "user": "a"},
                    {"inters": ["6", "7", "8"], "proc_path": ["9", "10", "11"], "user": "b"}]).encode()

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 20) | st.floats(allow_nan=True) | st.sampled_from(ITEMS + ["99", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["inters", "proc_path", "target", "user", "x"]), inner, max_size=4),
    max_leaves=12,
)


def _load_prorl(datamaps: bytes, val: bytes, test: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "toy.datamaps").write_bytes(datamaps)
        (Path(d) / "toy.val").write_bytes(val)
        (Path(d) / "toy.test").write_bytes(test)
        check(prorl_json.load, prorl_json.ProrlJsonConfig(), Path(d))


@FUZZ
@given(mutated(CASES), st.booleans())
def test_prorl_json_mutated_cases(content, in_val):
    _load_prorl(DATAMAPS, content if in_val else CASES, CASES if in_val else content)


@FUZZ
@given(mutated(DATAMAPS))
def test_prorl_json_mutated_datamaps(datamaps):
    _load_prorl(datamaps, CASES, CASES)


@FUZZ
@given(JSON_VALUES, JSON_VALUES)
def test_prorl_json_random_structures(cases, datamaps_extra):
    dm = json.loads(DATAMAPS)
    if isinstance(datamaps_extra, dict):
        dm.update({"raw_item_id2attribute": datamaps_extra} if datamaps_extra else {})
    _load_prorl(json.dumps(dm).encode(), CASES, json.dumps(cases).encode())
