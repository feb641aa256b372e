"""Dataset plugins: synthetic, movielens, csv, prorl-json (SPEC sections 4 and 7)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from prorlbench.errors import ConfigError, DataError, UserError
from prorlbench.plugins import load_registry
from prorlbench_plugins.datasets import csv_data, movielens, prorl_json, synthetic

SMALL = synthetic.SyntheticConfig(n_items=80, n_users=120, n_genres=5, dim=8, seq_len=20, seed=3)


def test_all_four_datasets_register():
    reg = load_registry(use_entry_points=False,
                        extra_plugins=[(m.__name__, m) for m in (synthetic, movielens, csv_data, prorl_json)])
    assert set(reg.names("datasets")) >= {"synthetic", "movielens", "csv", "prorl-json"}
    assert reg.dataset("synthetic").needs_data_dir is False
    assert reg.dataset("movielens").needs_data_dir is True


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_deterministic_by_seed():
    a, b = synthetic.load(SMALL), synthetic.load(SMALL)
    assert a.sequences == b.sequences and a.users == b.users
    assert torch.equal(a.world.item_vectors, b.world.item_vectors)
    c = synthetic.load(synthetic.SyntheticConfig(**{**SMALL.__dict__, "seed": 4}))
    assert c.sequences != a.sequences


def test_synthetic_shapes_and_splits():
    d = synthetic.load(SMALL)
    assert d.n_items == 80 and d.cases is None
    users = [u for s in ("train", "valid", "test") for u in d.users[s]]
    assert sorted(users, key=int) == [str(i) for i in range(120)]  # user-disjoint and complete
    assert (len(d.sequences["train"]), len(d.sequences["valid"]), len(d.sequences["test"])) == (96, 12, 12)
    for seqs in d.sequences.values():
        for s in seqs:
            assert len(s) == 20 and len(set(s)) == 20  # no repeat consumption
            assert all(0 <= i < 80 for i in s)
    w = d.world
    assert w.item_vectors.shape == (80, 8) and w.popularity.shape == (80,)
    assert torch.allclose(w.item_vectors.norm(dim=1), torch.ones(80), atol=1e-5)
    assert d.item_attributes == tuple(frozenset({g}) for g in w.item_genre)
    assert sorted(set(w.item_genre)) == list(range(5))


def test_synthetic_users_follow_genres():
    d = synthetic.load(SMALL)
    g = d.world.item_genre
    pairs = [(g[a], g[b]) for s in d.sequences["train"] for a, b in zip(s, s[1:])]
    same = sum(x == y for x, y in pairs) / len(pairs)
    assert same > 2.0 / 5  # far above the 1/n_genres of random consumption


def test_synthetic_default_generation_is_fast():
    t = time.perf_counter()
    d = synthetic.load(synthetic.SyntheticConfig())
    assert time.perf_counter() - t < 15
    assert d.n_items == 300 and sum(len(v) for v in d.sequences.values()) == 1000


def test_synthetic_config_checks():
    with pytest.raises(ConfigError):
        synthetic.SyntheticConfig(seq_len=500, n_items=100)
    with pytest.raises(ConfigError):
        synthetic.SyntheticConfig(gamma=1.5)


# ----------------------------------------------------------------------------- movielens


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def ml_rows(n_users=6, per_user=14, sep="\t"):
    lines = []
    for u in range(1, n_users + 1):
        for k in range(per_user):
            item = (u * 3 + k * 5) % 40 + 1
            lines.append(sep.join([str(u), str(item), str(1 + (k % 5)), str(1000 + 7 * k - u)]))
    return "\n".join(lines) + "\n"


def test_movielens_100k_real(shared_data):
    t = time.perf_counter()
    d = movielens.load(movielens.MovieLensConfig(), shared_data / "ml-100k")
    assert time.perf_counter() - t < 10
    assert d.name == "ml-100k" and d.n_items == 1682
    n_users = sum(len(v) for v in d.sequences.values())
    assert n_users == 943 and sum(len(s) for v in d.sequences.values() for s in v) == 100000
    assert len(d.sequences["test"]) == 94 and len(d.sequences["valid"]) == 94
    assert d.item_names[0] == "Toy Story (1995)"
    assert d.item_attributes[0] == frozenset({3, 4, 5})  # Animation, Children's, Comedy
    # user 1's sequence is sorted by time (ties in file order)
    rows = [ln.split("\t") for ln in (shared_data / "ml-100k" / "u.data").read_text().splitlines()]
    mine = [(int(r[3]), k, r[1]) for k, r in enumerate(rows) if r[0] == "1"]
    expected = [it for _, _, it in sorted(mine)]
    split = next(s for s in d.users if "1" in d.users[s])
    seq = d.sequences[split][d.users[split].index("1")]
    assert [d.item_ids[i] for i in seq] == expected
    liked = movielens.load(movielens.MovieLensConfig(min_rating=4), shared_data / "ml-100k")
    assert sum(len(s) for v in liked.sequences.values() for s in v) < 100000


def test_movielens_1m_format(tmp_path):
    write(tmp_path / "ratings.dat", ml_rows(sep="::"))
    movies = "\n".join(f"{i}::Movie {i} (1999)::{'Drama|Comedy' if i % 2 else 'Action'}" for i in range(1, 41))
    write(tmp_path / "movies.dat", movies.encode("latin-1") + "\n41::Caf\xe9 (2000)::Drama\n".encode("latin-1"))
    cfg = movielens.MovieLensConfig(min_seq_len=12, split=[0.5, 0.25, 0.25])
    d = movielens.load(cfg, tmp_path)
    assert d.name == "ml-1m" and sum(len(v) for v in d.sequences.values()) == 6
    assert all(len(s) == 14 for v in d.sequences.values() for s in v)
    assert d.item_attributes is not None and all(len(a) >= 1 for a in d.item_attributes)
    assert list(d.item_ids) == sorted(d.item_ids, key=int)
    # the config's data_dir works without the runner's argument
    cfg_dir = movielens.MovieLensConfig(data_dir=str(tmp_path), split=[0.5, 0.25, 0.25])
    assert movielens.load(cfg_dir, None).sequences == d.sequences
    # time order: user u's item at step k has timestamp 1000 + 7k - u, so the file order is kept
    u1 = d.sequences[next(s for s in d.users if "1" in d.users[s])][0]
    assert [int(d.item_ids[i]) for i in u1] == [(3 + k * 5) % 40 + 1 for k in range(14)]


def test_movielens_without_movie_file(tmp_path):
    write(tmp_path / "u.data", ml_rows())
    d = movielens.load(movielens.MovieLensConfig(), tmp_path)
    assert d.item_attributes is None
    assert any("no genres" in n for n in d.notes)


@pytest.mark.parametrize("content, message, line", [
    ("", "empty", None),
    ("1\t2\t3\n", "expected 4 fields", 1),
    ("1\t2\t3\t100\n1\t3\t4\tsoon\n", "non-numeric timestamp", 2),
    ("1\t2\tgood\t100\n", "non-numeric rating", 1),
    ("x\t2\t3\t100\n", "user id", 1),
    ("1\t2\t3\t100\n1\t2\t5\t100\n", "duplicate row", 2),
])
def test_movielens_errors(tmp_path, content, message, line):
    write(tmp_path / "u.data", content)
    with pytest.raises(DataError, match=message) as exc:
        movielens.load(movielens.MovieLensConfig(), tmp_path)
    assert exc.value.path.endswith("u.data") and exc.value.line == line
    assert "\n" not in str(exc.value)


def test_movielens_folder_errors(tmp_path):
    with pytest.raises(DataError, match="expected u.data"):
        movielens.load(movielens.MovieLensConfig(), tmp_path)
    with pytest.raises(DataError, match="not found"):
        movielens.load(movielens.MovieLensConfig(), tmp_path / "nope")
    with pytest.raises(UserError, match="--data-dir"):
        movielens.load(movielens.MovieLensConfig(), None)
    write(tmp_path / "u.data", b"1\t2\t3\t4\xff\n")
    with pytest.raises(DataError, match="not UTF-8") as exc:
        movielens.load(movielens.MovieLensConfig(), tmp_path)
    assert exc.value.line == 1


def test_movielens_unknown_item_and_too_short(tmp_path):
    write(tmp_path / "u.data", ml_rows())
    flags = "|".join(["0"] * 19)
    write(tmp_path / "u.item", "".join(f"{i}|M{i}|01-Jan-1995||http://x|{flags}\n" for i in range(1, 30)))
    with pytest.raises(DataError, match="not listed in u.item") as exc:
        movielens.load(movielens.MovieLensConfig(), tmp_path)
    assert exc.value.line is not None
    write(tmp_path / "u.item", "".join(f"{i}|M{i}|01-Jan-1995||http://x|{flags}\n" for i in range(1, 41)))
    with pytest.raises(DataError, match="at least 50"):
        movielens.load(movielens.MovieLensConfig(min_seq_len=50), tmp_path)


# ----------------------------------------------------------------------------- csv


def csv_text(n_users=5, per_user=13, attrs=True):
    head = "user,item,timestamp" + (",attributes" if attrs else "")
    lines = [head]
    for u in range(n_users):
        for k in range(per_user):
            item = f"i{(u + 2 * k) % 20}"
            row = f"user{u},{item},{10 * k + 0.5}"
            lines.append(row + (f",g{((u + 2 * k) % 20) % 3}|all" if attrs else ""))
    return "\n".join(lines) + "\n"


def test_csv_loads(tmp_path):
    p = write(tmp_path / "log.csv", csv_text())
    d = csv_data.load(csv_data.CsvConfig(path=str(p)), None)
    assert d.name == "csv" and d.n_items == 20
    assert sum(len(v) for v in d.sequences.values()) == 5
    assert d.item_attributes is not None and all(len(a) == 2 for a in d.item_attributes)
    # found as the only *.csv of the data folder too, and columns may come in any order
    assert csv_data.load(csv_data.CsvConfig(), tmp_path).sequences == d.sequences
    cols = "timestamp,item,user\n" + "".join(f"{k},{k % 20},{u}\n" for u in range(3) for k in range(12))
    d2 = csv_data.load(csv_data.CsvConfig(path=str(write(tmp_path / "b" / "x.csv", cols))), None)
    assert d2.item_attributes is None and d2.item_ids[:3] == ("0", "1", "2")


@pytest.mark.parametrize("content, message, line", [
    ("", "empty", None),
    ("user,item\n1,2\n", "missing column", 1),
    ("user,item,timestamp\n", "no data rows", None),
    ("user,item,timestamp\n1,2,3\n1,3,yesterday\n", "non-numeric timestamp", 3),
    ("user,item,timestamp\n1,2,3\n1,2,3\n", "duplicate row", 3),
    ("user,item,timestamp\n1,2\n", "expected 3 fields", 2),
    ("user,item,timestamp\n,2,3\n", "empty user", 2),
    ("user,item,timestamp\n1,2,nan\n", "finite", 2),
])
def test_csv_errors(tmp_path, content, message, line):
    p = write(tmp_path / "d.csv", content)
    with pytest.raises(DataError, match=message) as exc:
        csv_data.load(csv_data.CsvConfig(path=str(p)), None)
    assert exc.value.path == str(p) and exc.value.line == line


def test_csv_not_utf8_and_file_errors(tmp_path):
    p = write(tmp_path / "d.csv", b"user,item,timestamp\n1,2,3\n1,\xe9,4\n")
    with pytest.raises(DataError, match="not UTF-8") as exc:
        csv_data.load(csv_data.CsvConfig(path=str(p)), None)
    assert exc.value.line == 3
    with pytest.raises(DataError, match="file not found"):
        csv_data.load(csv_data.CsvConfig(path=str(tmp_path / "none.csv")), None)
    write(tmp_path / "e.csv", "user,item,timestamp\n")
    with pytest.raises(DataError, match="several"):
        csv_data.load(csv_data.CsvConfig(), tmp_path)


# ----------------------------------------------------------------------------- prorl-json


def test_prorl_json_real_ml1m(shared_data):
    t = time.perf_counter()
    d = prorl_json.load(prorl_json.ProrlJsonConfig(), shared_data / "prorl-ml-1m")
    assert time.perf_counter() - t < 10
    assert d.cases is not None
    assert len(d.cases["test"]) == 6928
    # the .val file has no targets: train and valid are passed on as sequences, for the case rule
    assert "train" not in d.cases and "valid" not in d.cases
    assert len(d.sequences["train"]) + len(d.sequences["valid"]) == 6771
    assert any("carry no target" in n and "train, valid" in n for n in d.notes)
    assert d.n_items == 3043 and len(d.item_attributes) == 3043
    raw_test = json.loads((shared_data / "prorl-ml-1m" / "ml-1m.test").read_text())
    for c, raw in zip(d.cases["test"][:50], raw_test):
        assert [d.item_ids[i] for i in c.history] == raw["inters"]
        assert [d.item_ids[i] for i in c.reference] == raw["proc_path"]
        assert d.item_ids[c.target] == raw["target"] and c.reference[-1] == c.target
    assert all(len(c.history) == 10 for c in d.cases["test"])
    # carved training split: user-disjoint from what remains in validation, and noted
    tr, va = set(d.users["train"]), set(d.users["valid"])
    assert tr and va and not (tr & va)
    assert any("no *.train" in n for n in d.notes)
    assert all(len(s) >= 12 for s in d.sequences["train"])  # inters (10) + proc_path (>= 2)
    assert d.item_names[d.item_ids.index("1")] == "Toy Story (1995)"


def prorl_files(folder: Path, *, train=False, target_key=True):
    items = [str(i) for i in range(1, 31)]
    write(folder / "toy.datamaps", json.dumps({
        "raw_item_id2attribute": {i: [int(i) % 3 + 1] for i in items},
        "item2id": {i: k + 1 for k, i in enumerate(items)},
        "itemid2title": {str(k + 1): f"T{i}" for k, i in enumerate(items)},
    }))

    def cases(n, user_prefix):
        out = []
        for k in range(n):
            c = {"inters": [str((k + j) % 30 + 1) for j in range(10)],
                 "proc_path": [str((k + 11) % 30 + 1), str((k + 13) % 30 + 1)]}
            if target_key:
                c["target"] = c["proc_path"][-1]
            c["user"] = f"{user_prefix}{k % 4}"
            out.append(c)
        return json.dumps(out)

    write(folder / "toy.val", cases(12, "v"))
    write(folder / "toy.test", cases(7, "t"))
    if train:
        write(folder / "toy.train", cases(9, "r"))


def test_prorl_json_small(tmp_path):
    prorl_files(tmp_path, train=True)
    d = prorl_json.load(prorl_json.ProrlJsonConfig(), tmp_path)
    assert [len(d.cases[s]) for s in ("train", "valid", "test")] == [9, 12, 7]
    assert d.n_items == 30 and d.name == "prorl-toy" and d.item_names[0] == "T1"
    assert not any("no *.train" in n for n in d.notes)
    (tmp_path / "toy.train").unlink()
    a = prorl_json.load(prorl_json.ProrlJsonConfig(seed=5), tmp_path)
    b = prorl_json.load(prorl_json.ProrlJsonConfig(seed=5), tmp_path)
    assert a.cases == b.cases and len(a.cases["train"]) == 6 and len(a.cases["valid"]) == 6
    assert {c.user for c in a.cases["train"]}.isdisjoint({c.user for c in a.cases["valid"]})


def test_prorl_json_without_target_key(tmp_path):
    prorl_files(tmp_path, target_key=False)
    d = prorl_json.load(prorl_json.ProrlJsonConfig(), tmp_path)
    assert d.cases == {}  # no split has targets: every split goes to the case rule
    assert len(d.sequences["test"]) == 7 and any("carry no target" in n for n in d.notes)


def test_prorl_json_split_without_targets_gets_the_case_rule(tmp_path, caplog):
    """A .val without targets (as ML-1M's) gets low-ranked targets like the test split, not the
    natural next items; the released test cases stay as they are."""
    import logging

    from prorlbench.seq.cases import CaseConfig, build_cases
    from tests.rl.fakes import DriftModel

    prorl_files(tmp_path / "no", target_key=False)
    prorl_files(tmp_path, train=True)
    (tmp_path / "toy.val").write_text((tmp_path / "no" / "toy.val").read_text())
    d = prorl_json.load(prorl_json.ProrlJsonConfig(), tmp_path)
    assert set(d.cases) == {"train", "test"}
    model = DriftModel(n_items=30).eval()
    cfg = CaseConfig(n_history=10, max_path_len=3, min_target_rank=8, max_cases_per_user=None)
    with caplog.at_level(logging.INFO, logger="prorlbench"):
        splits = build_cases(d, model, cfg)
    assert splits.test == d.cases["test"] and splits.train == d.cases["train"]
    assert any("valid split has no targets" in r.getMessage() for r in caplog.records)
    assert splits.valid  # some windows have a low-ranked target
    for c in splits.valid:
        st = model.encode(torch.tensor([c.history]), torch.tensor([len(c.history)]))[0, -1]
        lg = model.logits(st)
        assert int((lg > lg[c.target]).sum()) + 1 > 8
        assert len(c.reference) >= 2 and c.target == c.reference[-1]


@pytest.mark.parametrize("file, content, message, line", [
    ("toy.test", '[{"inters": ["1"],\n "proc_path": ["2"]\n,,]', "malformed JSON", 3),
    ("toy.test", '{"inters": []}', "JSON list", None),
    ("toy.test", '[]', "no cases", None),
    ("toy.test", '[{"inters": ["1"], "proc_path": ["2", "99"]}]', "'99' is not in toy.datamaps", None),
    ("toy.test", '[{"inters": ["1"], "proc_path": ["2", "3"], "target": "4"}]', "not the last item", None),
    ("toy.test", '[{"inters": ["1"], "proc_path": ["2", "3"], "target": "77"}]', "target '77'", None),
    ("toy.val", '[{"inters": ["1"]}]', "proc_path", None),
    ("toy.val", '[{"inters": [["1"]], "proc_path": ["2"]}]', "not a string or integer", None),
    ("toy.datamaps", '{"users": {}}', "raw_item_id2attribute", None),
    ("toy.datamaps", '', "empty", None),
])
def test_prorl_json_errors(tmp_path, file, content, message, line):
    prorl_files(tmp_path)
    write(tmp_path / file, content)
    with pytest.raises(DataError, match=message) as exc:
        prorl_json.load(prorl_json.ProrlJsonConfig(), tmp_path)
    assert exc.value.path.endswith(file) and exc.value.line == line


def test_prorl_json_missing_and_ambiguous_files(tmp_path):
    prorl_files(tmp_path)
    (tmp_path / "toy.val").unlink()
    with pytest.raises(DataError, match=r"no \*\.val"):
        prorl_json.load(prorl_json.ProrlJsonConfig(), tmp_path)
    prorl_files(tmp_path)
    prorl_files(tmp_path / "x")
    (tmp_path / "x" / "toy.test").rename(tmp_path / "other.test")
    with pytest.raises(DataError, match="several"):
        prorl_json.load(prorl_json.ProrlJsonConfig(), tmp_path)
    assert len(prorl_json.load(prorl_json.ProrlJsonConfig(prefix="toy"), tmp_path).cases["test"]) == 7
    write(tmp_path / "toy.val", b'[{"inters": ["\xff"]}]')
    with pytest.raises(DataError, match="not UTF-8"):
        prorl_json.load(prorl_json.ProrlJsonConfig(prefix="toy"), tmp_path)
