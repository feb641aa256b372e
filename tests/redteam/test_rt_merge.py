"""Red team, issue 25 item 5: ``report --all-cells``, resume and splice check what they merge.

Each case forges or mixes cells or folders and asserts the exact refusal (the one-line error, the
exit code) and that nothing was written; or, for data fingerprints, that the edit is noticed (the
cell is computed again).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from prorlbench.study import splice, splice_safe
from prorlbench.folder import fingerprint
from prorlbench.cli import main
from prorlbench.errors import DataError

from runner_support import fake_env


@pytest.fixture
def env(tmp_path, monkeypatch):
    return fake_env(tmp_path, monkeypatch)


def run(env, capsys, *extra: str, config: Path | None = None) -> str:
    root, plug, cfg = env
    args = ["run", "--config", str(config or cfg), "--plugins-dir", str(plug), "--quiet", "--no-progress",
            "--device", "cpu", "--out", str(root / "out"), *extra]
    assert main(args) == 0
    return capsys.readouterr().out


def error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("prorlbench: error: ")]
    assert len(err) == 1, err
    return err[0]


def merged_files(out: Path) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in ("cases.csv.gz", "cells.csv", "summary.csv") if (out / n).exists()}


# --------------------------------------------------------------------------------------------
# report --all-cells verifies checksums and refuses cells of another grid
# --------------------------------------------------------------------------------------------


def test_all_cells_refuses_a_cell_file_replaced_by_another_seeds(env, capsys):
    run(env, capsys, "--methods", "random", "--seeds", "0,1")
    out = env[0] / "out"
    before = merged_files(out)
    shutil.copy(out / "cells" / "random__tinyfake__s1.cases.csv.gz", out / "cells" / "random__tinyfake__s0.cases.csv.gz")
    assert main(["report", str(out), "--all-cells"]) == 2
    assert error_line(capsys) == (
        "prorlbench: error: cell random__tinyfake__s0: random__tinyfake__s0.cases.csv.gz does not match the checksum "
        "in its status; report --all-cells merges only cells whose files match their status (re-run the grid to "
        "recompute it, or remove its files)")
    assert merged_files(out) == before


def test_all_cells_refuses_an_edited_cell_file(env, capsys):
    run(env, capsys, "--methods", "random")
    out = env[0] / "out"
    p = out / "cells" / "random__tinyfake__s0.cases.csv.gz"
    df = pd.read_csv(p)
    df.loc[df["metric"] == "ioi", "value"] = 99.0
    with gzip.open(p, "wt") as f:
        df.to_csv(f, index=False)
    assert main(["report", str(out), "--all-cells"]) == 2
    assert "random__tinyfake__s0.cases.csv.gz does not match the checksum in its status" in error_line(capsys)


def test_all_cells_refuses_a_status_copied_under_another_cells_name(env, capsys):
    run(env, capsys, "--methods", "random", "--seeds", "0,1")
    cells = env[0] / "out" / "cells"
    for kind in ("json", "cases.csv.gz", "paths.json.gz"):
        shutil.copy(cells / f"random__tinyfake__s1.{kind}", cells / f"random__tinyfake__s0.{kind}")
    assert main(["report", str(env[0] / "out"), "--all-cells"]) == 2
    assert error_line(capsys) == (
        "prorlbench: error: cells/random__tinyfake__s0.json holds the status of cell random__tinyfake__s1; a status "
        "file must keep its cell's name (remove or rename it)")


def _second_config(env, body: str) -> Path:
    p = env[0] / "second.toml"
    p.write_text(env[2].read_text() + textwrap.dedent(body))
    return p


@pytest.mark.parametrize("part,body,extra", [
    ("simulator", "[simulators.fakesim]\ndim = 4\n", ()),
    ("data", "[datasets.tinyfake]\nseed = 1\n", ()),
    ("score", "", ("--ks", "1")),
])
def test_all_cells_refuses_cells_of_another_grid(env, capsys, part, body, extra):
    run(env, capsys, "--methods", "random")
    run(env, capsys, "--methods", "pop", *extra, config=_second_config(env, body))
    out = env[0] / "out"
    before = merged_files(out)
    meaning = {"simulator": "another training simulator or simulator config",
               "data": "other data, dataset config or [cases]",
               "score": "other metrics, ks, eval simulators or eval simulator configs"}[part]
    assert main(["report", str(out), "--all-cells"]) == 2
    assert error_line(capsys) == (
        f"prorlbench: error: dataset tinyfake: cells pop__tinyfake__s0 and random__tinyfake__s0 were made with "
        f"{meaning} ({part} fingerprint); one table merges only cells of one grid (re-run the odd cells with the "
        "grid's config, or move them out of cells/)")
    assert merged_files(out) == before


def test_all_cells_merges_one_grid_and_records_it(env, capsys):
    run(env, capsys, "--methods", "random,pop", "--seeds", "0")
    run(env, capsys, "--methods", "random", "--seeds", "1")
    out = env[0] / "out"
    assert main(["report", str(out), "--all-cells"]) == 0
    assert "merged 3 finished cell(s)" in capsys.readouterr().out
    grid = json.loads((out / "metadata.json").read_text())["grid"]
    status = json.loads((out / "cells" / "pop__tinyfake__s0.json").read_text())
    assert grid["tinyfake"] == {**status["grid"], "score": status["score_fingerprint"]}
    assert set(status["grid"]) == {"data", "simulator", "score"}


def test_all_cells_notes_cells_that_record_no_grid(env, capsys):
    run(env, capsys, "--methods", "random")
    p = env[0] / "out" / "cells" / "random__tinyfake__s0.json"
    status = json.loads(p.read_text())
    del status["grid"]
    p.write_text(json.dumps(status))
    assert main(["report", str(env[0] / "out"), "--all-cells"]) == 0
    assert ("prorlbench: note: dataset tinyfake: 1 cell(s) record no grid fingerprint (made by an older version, "
            "e.g. random__tinyfake__s0): their simulator and data were not compared") in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# data fingerprints use content
# --------------------------------------------------------------------------------------------


def test_an_edit_keeping_size_and_mtime_is_noticed(env, capsys):
    data = env[0] / "data"
    data.mkdir()
    f = data / "ratings.csv"
    f.write_text("user,item\n1,2\n")
    assert "1 computed" in run(env, capsys, "--methods", "random", "--data-dir", str(data))
    assert "1 already done" in run(env, capsys, "--methods", "random", "--data-dir", str(data))
    st = f.stat()
    f.write_text("user,item\n1,3\n")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert "(1 computed, 0 already done" in run(env, capsys, "--methods", "random", "--data-dir", str(data))


def test_an_edit_past_ten_thousand_files_is_noticed(env, capsys):
    data = env[0] / "many"
    data.mkdir()
    for i in range(10_001):
        (data / f"f{i:05d}").write_text("x")
    assert "1 computed" in run(env, capsys, "--methods", "random", "--data-dir", str(data))
    (data / "f10000").write_text("y")  # the 10,001st file in sorted order
    assert "(1 computed, 0 already done" in run(env, capsys, "--methods", "random", "--data-dir", str(data))


def test_a_folder_past_the_limit_is_refused_not_hashed_in_part(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "MAX_FILES", 3)
    for i in range(4):
        (tmp_path / f"f{i}").write_text("x")
    with pytest.raises(DataError) as exc:
        fingerprint.inputs_fingerprint([tmp_path])
    assert str(exc.value) == f"{tmp_path}: holds more than 3 files; point the data path at the dataset's own folder"


def test_a_file_shared_by_two_datasets_is_read_once_per_run(tmp_path, monkeypatch):
    reads: list[str] = []
    real = fingerprint._sha256
    monkeypatch.setattr(fingerprint, "_sha256", lambda p: reads.append(str(p)) or real(p))
    f = tmp_path / "ratings.csv"
    f.write_text("user,item\n")
    hashes = fingerprint.FileHashes()
    a = fingerprint.inputs_fingerprint([f], hashes)
    b = fingerprint.inputs_fingerprint([tmp_path], hashes)
    assert reads == [str(f)] and a != b
    fingerprint.inputs_fingerprint([f], fingerprint.FileHashes())  # the next run reads it again
    assert len(reads) == 2


# --------------------------------------------------------------------------------------------
# prorlbench.study.splice: one grid, all or nothing
# --------------------------------------------------------------------------------------------

CONFIG = textwrap.dedent('''
    [run]
    simulator = "sasrec"
    eval_simulators = ["sasrec"]
    ks = [1, 5]
    metrics = ["ioi"]
    simulator_seed = 0
    eval_batch_size = 1024
    [datasets.prorl-json]
    data_dir = "{data}"
    [simulators.sasrec]
    lr = {lr}
    [cases]
    max_path_len = 5
''')


def _study(d: Path, value: str, *, lr: str = "0.001", data: str = "/a", grid: str | None = None) -> Path:
    d.mkdir(parents=True)
    for name in splice.TABLES:
        pd.DataFrame([("prorl-json", "sft", value), ("synthetic", "sft", "1")],
                     columns=["dataset", "method", "value"]).to_csv(d / name, index=False)
    (d / "comparisons.md").write_text("Run\n")
    (d / "run.log").write_text(f"log {value}\n")
    (d / "config.toml").write_text(CONFIG.format(lr=lr, data=data))
    meta: dict = {"metrics": {}}
    if grid is not None:
        meta["grid"] = {"prorl-json": {"data": grid, "simulator": "s", "score": "x"}}
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_splice_refuses_another_simulator_config(tmp_path, capsys):
    new, into = _study(tmp_path / "new", "20", lr="0.01"), _study(tmp_path / "old", "2")
    before = _snapshot(into)
    assert splice.main([str(new), str(into), "--datasets", "prorl-json"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"splice: {new / 'config.toml'} and {into / 'config.toml'} differ in [simulators.sasrec] lr (0.01 vs 0.001); "
        "the folders come from different grids, and a splice puts together blocks of one grid only")
    assert _snapshot(into) == before


def test_splice_refuses_another_scoring(tmp_path, capsys):
    new, into = _study(tmp_path / "new", "20"), _study(tmp_path / "old", "2")
    (new / "config.toml").write_text((new / "config.toml").read_text().replace("ks = [1, 5]", "ks = [1]"))
    assert splice.main([str(new), str(into), "--datasets", "prorl-json"]) == 2
    assert "differ in [run] ks ([1] vs [1, 5])" in capsys.readouterr().err


def test_splice_refuses_other_data(tmp_path, capsys):
    new = _study(tmp_path / "new", "20", data="/elsewhere", grid="d2")
    into = _study(tmp_path / "old", "2", grid="d1")
    before = _snapshot(into)
    assert splice.main([str(new), str(into), "--datasets", "prorl-json"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"splice: {new} and {into}: dataset prorl-json was made with other data, dataset config or [cases] (data "
        "fingerprint d2 vs d1); the folders come from different grids, and a splice puts together blocks of one "
        "grid only")
    assert _snapshot(into) == before


def test_splice_of_one_grid_ignores_data_paths_and_records_the_new_grid(tmp_path, capsys):
    new = _study(tmp_path / "new", "20", data="/other/machine", grid="d1")
    into = _study(tmp_path / "old", "2", grid="d1")
    assert splice.main([str(new), str(into), "--datasets", "prorl-json"]) == 0
    assert pd.read_csv(into / "summary.csv", dtype=str).values.tolist() == [["prorl-json", "sft", "20"],
                                                                            ["synthetic", "sft", "1"]]
    assert (into / "run.log").read_text() == "log 2\nlog 20\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    assert json.loads((into / "metadata.json").read_text())["grid"]["prorl-json"]["data"] == "d1"


@pytest.mark.parametrize("when", ["build", "commit"])
def test_a_write_error_mid_splice_leaves_the_study_folder_unchanged(tmp_path, capsys, monkeypatch, when):
    new, into = _study(tmp_path / "new", "20", grid="d1"), _study(tmp_path / "old", "2", grid="d1")
    before = _snapshot(into)
    if when == "build":
        real_to_csv = pd.DataFrame.to_csv
        calls = []

        def to_csv(self, path=None, *a, **kw):
            calls.append(path)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
            return real_to_csv(self, path, *a, **kw)

        monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    else:
        real_replace = splice_safe._replace
        moved = []

        def replace(src, dst):
            if len(moved) == 2:
                raise OSError(28, "No space left on device")
            moved.append(dst)
            real_replace(src, dst)

        monkeypatch.setattr(splice_safe, "_replace", replace)
    assert splice.main([str(new), str(into), "--datasets", "prorl-json"]) == 2
    assert capsys.readouterr().err.strip() == (f"splice: cannot write {into} (No space left on device); {into} is "
                                               "unchanged")
    assert _snapshot(into) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
