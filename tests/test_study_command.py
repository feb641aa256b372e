"""``prorlbench study`` (issue 29), on experiments/prorl_study.toml made tiny: one command gives the
comparisons and the findings page that the old manual pipeline gave on the same cells (copy the cells of several runs into one folder by hand,
edit its config.toml, ``report --all-cells --style paper``, the claims' comparisons, the findings
renderer); merging checks every cell first, and merging again changes nothing."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from prorlbench.cli import main
from prorlbench.folder.tomlwriter import write_toml
from prorlbench.study import claims, findings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "experiments" / "prorl_study.toml"
METHODS = ["random", "pop", "sft", "naive-pg", "prorl", "noise-pg", "prorl+center-position"]
TINY_RL = {"d_model": 16, "n_heads": 2, "n_layers": 1, "sft_epochs": 1, "epochs": 1, "max_train_cases": 16,
           "batch_cases": 8, "samples_per_case": 2, "n_valid_cases": 16, "grad_var_every": 0}


def tiny_study(n_users: int = 120) -> str:
    """experiments/prorl_study.toml made tiny: its [run] (metrics, profile, style), its variants and
    methods, on a small synthetic world with tiny models, two seeds, some of its methods, K = 1."""
    doc = tomllib.loads(STUDY.read_text())
    doc["run"].update(name="tiny-study", out="study", methods=METHODS, datasets=["synthetic"], seeds=[0, 1],
                      eval_simulators=["sasrec"], ks=[1])
    doc["datasets"] = {"synthetic": {"n_users": n_users, "n_items": 60, "seq_len": 20}}
    doc["simulators"] = {"sasrec": {"epochs": 3, "lr": 1e-2, "min_epoch_steps": 4, "hidden": 16, "n_layers": 1,
                                    "inner": 32}}
    doc["cases"] = {"max_cases_per_split": 20, "max_path_len": 5}
    doc["methods"] = {m: dict(TINY_RL) for m in ("sft", "naive-pg", "prorl", "noise-pg")}
    return write_toml(doc)


CONFIG = tiny_study()

TEMPLATE = """# Findings of the tiny study

The length shortcut: [[cmp:synthetic|sasrec|naive-pg|sft|Len@1]].
ProRL against the placebo, Holm p: [[cmp:synthetic|sasrec|prorl|noise-pg|IoI@1|p_holm]].
Sampled length of naive-pg over training: [[len:synthetic|naive-pg]].
Centring by position against ProRL: [[cmp:synthetic|sasrec|prorl+center-position|prorl|IoI@1]].
"""


def cli(*args: str) -> int:
    return main([*map(str, args), "--no-progress", "--quiet"])


@pytest.fixture(scope="module")
def sittings(tmp_path_factory):
    """Two sittings of one tiny study grid (seed 0 through ``prorlbench study``, seed 1 through
    ``prorlbench run``), with a shared model cache."""
    d = tmp_path_factory.mktemp("study")
    (d / "study.toml").write_text(CONFIG)
    (d / "template.md").write_text(TEMPLATE)
    cache = d / "cache"
    assert cli("study", d / "study.toml", "--seeds", "0", "--out", d / "a", "--cache-dir", cache) == 0
    assert (d / "a" / "comparisons.md").is_file()  # a study of one sitting has its tables too
    assert cli("run", "--config", d / "study.toml", "--seeds", "1", "--out", d / "b", "--cache-dir", cache) == 0
    return d


def manual_pipeline(d: Path, runs: list[Path], out: Path) -> tuple[str, str]:
    """The old recipe: cells copied by hand, config.toml edited by hand, report, comparisons, findings."""
    (out / "cells").mkdir(parents=True)
    for run in runs:
        for f in sorted((run / "cells").iterdir()):
            shutil.copy2(f, out / "cells" / f.name)
    text = (runs[0] / "config.toml").read_text()
    assert "seeds = [0]" in text
    (out / "config.toml").write_text(text.replace("seeds = [0]", "seeds = [0, 1]"))
    shutil.copy2(runs[0] / "metadata.json", out / "metadata.json")
    assert main(["report", str(out), "--all-cells", "--style", "paper"]) == 0
    assert claims.main([str(out), "--out", str(out / "comparisons.md"), "--plot"]) == 0
    page = findings.render_text((d / "template.md").read_text(), (out / "comparisons.md").read_text(), d)
    return (out / "comparisons.md").read_text(), page


def test_study_merge_equals_the_manual_pipeline(sittings, monkeypatch):
    d = sittings
    monkeypatch.chdir(d)
    assert cli("study", d / "study.toml", "--merge", d / "a", d / "b", "--template", d / "template.md",
               "--cache-dir", d / "cache") == 0
    study = d / "study"
    comparisons, page = manual_pipeline(d, [d / "a", d / "b"], d / "manual")
    # the header names the folder it was built from; every other byte is the same
    assert comparisons.count(f"`{d / 'manual'}`") == 1
    comparisons = comparisons.replace(f"`{d / 'manual'}`", f"`{study}`")
    assert (study / "comparisons.md").read_text() == comparisons
    assert (study / "findings.md").read_text() == page
    for name in ("summary.csv", "paper.csv", "cells.csv"):
        assert (study / name).read_text() == (d / "manual" / name).read_text(), name
    assert "[[" not in page and " vs " in page and " → " in page
    assert (study / "claims_dynamics.png").is_file()
    # resumable: merging again copies nothing and writes the same tables
    before = {p.name: p.read_bytes() for p in (study / "cells").iterdir()}
    assert cli("study", d / "study.toml", "--merge", d / "a", d / "b", "--template", d / "template.md",
               "--cache-dir", d / "cache") == 0
    assert {p.name: p.read_bytes() for p in (study / "cells").iterdir()} == before
    assert (study / "comparisons.md").read_text() == comparisons
    # and a plain study call finds every merged cell done (same training fingerprints): nothing computed
    assert cli("study", d / "study.toml", "--cache-dir", d / "cache", "--no-plot") == 0
    assert {p.name: p.read_bytes() for p in (study / "cells").iterdir()} == before


def test_study_merge_refuses_a_cell_whose_files_do_not_match(sittings, tmp_path, capsys):
    d = sittings
    bad = tmp_path / "b"
    shutil.copytree(d / "b", bad)
    cases = sorted((bad / "cells").glob("prorl__*.cases.csv.gz"))[0]
    cases.write_bytes(cases.read_bytes() + b"\0")
    (tmp_path / "study.toml").write_text(CONFIG)
    assert cli("study", tmp_path / "study.toml", "--merge", d / "a", bad, "--cache-dir", d / "cache") == 2
    err = capsys.readouterr().err
    assert f"--merge {bad}: cell prorl__synthetic__s1" in err and "checksum" in err and "Traceback" not in err
    assert not (tmp_path / "study" / "cells").exists() or not any((tmp_path / "study" / "cells").iterdir())


def test_study_merge_refuses_cells_of_another_grid(sittings, tmp_path, capsys):
    d = sittings
    (tmp_path / "study.toml").write_text(tiny_study(n_users=130))
    assert cli("study", tmp_path / "study.toml", "--merge", d / "a", "--cache-dir", d / "cache") == 2
    err = capsys.readouterr().err
    assert f"--merge {d / 'a'}: cell" in err and "other data, dataset config or [cases]" in err


def test_study_bad_input_is_one_line(tmp_path, capsys):
    assert main(["study", str(tmp_path / "nope.toml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    (tmp_path / "s.toml").write_text(CONFIG)
    assert main(["study", str(tmp_path / "s.toml"), "--merge", str(tmp_path / "missing")]) == 2
    assert f"--merge {tmp_path / 'missing'}: not a folder" in capsys.readouterr().err


def test_study_refuses_to_merge_cells_into_a_folder_of_tables_only(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(CONFIG)
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "summary.csv").write_text("method,dataset\n")
    assert main(["study", str(tmp_path / "s.toml"), "--merge", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds tables without cells" in err and "prorlbench.study.splice" in err
    assert main(["study", str(tmp_path / "s.toml")]) == 2  # nor runs cells into it
    assert "holds tables without cells" in capsys.readouterr().err
    assert not (tmp_path / "study" / "cells").exists()
