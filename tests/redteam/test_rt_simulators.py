"""Red team, scope 3: simulators and backbones that learn, or fail loudly (issue 25).

* A learned simulator below popularity on validation HR@10 fails every cell of its dataset with
  one line; a method's backbone below popularity fails its own cell; a weak simulator loaded from
  the cache is refused the same way (its metadata holds both figures).
* ``allow_weak_simulator = true`` lets them score, and the cell status, ``cells.csv`` and the
  report's table mark those rows.
* Early stopping waits for optimizer steps and for the model to beat popularity, and the paper
  profile scales its batch to the data (what made GRU4Rec stop after 1.2 s on ProRL's ML-1M).
* Every shipped simulator x dataset beats popularity by :data:`MARGIN` at the quick profile (the
  paper profile: ``python -m benchmarks.simulator_quality``, figures in docs/performance.md).

The weak simulator is a real SASRec trained for one epoch at lr 1e-6 (still at its random
initialisation: valid HR@10 0.04 against popularity's 0.15 on the synthetic world).
"""

from __future__ import annotations

import json
import logging
import math
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from prorlbench.api import SimulatorInfo
from prorlbench.config import build_config
from prorlbench.plugins import load_registry
from prorlbench.folder.results import RunFolder
from prorlbench.settings.runconfig import apply_overrides, parse_config_text
from prorlbench.engine.runner import run
from prorlbench.seq.seqfit import epoch_batch, train_model
from prorlbench.seq.strength import WeakSimulator, check_strength

from benchmarks.simulator_quality import MARGIN, measure

WEAK_SASREC = """
[simulators.sasrec]
epochs = 1
lr = 1e-6
hidden = 16
n_layers = 1
inner = 32
"""

BASE = """
[run]
datasets = ["synthetic"]
ks = [1]
{run_extra}
[cases]
max_cases_per_split = 12
max_path_len = 4
""" + WEAK_SASREC

ADVICE = ("it did not learn, and every number made with it would be noise; train it longer (its "
          "epochs, patience or min_steps keys) or set allow_weak_simulator = true to use it anyway "
          "(the report marks its rows)")


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    return load_registry([])


def _cfg(tmp_path: Path, out: str, *, run_extra: str = "", **kw):
    cfg = parse_config_text(textwrap.dedent(BASE.format(run_extra=run_extra)), "weak.toml")
    return apply_overrides(cfg, {"out": str(tmp_path / out), "cache_dir": str(tmp_path / "cache"),
                                 "progress": False, "device": "cpu", "threads": 1, **kw})


def _cached_figures(tmp_path: Path, kind: str, seed: int) -> tuple[float, float]:
    """(hr10, popularity_hr10) from the cache entry of ``kind`` trained with ``seed``."""
    metas = [json.loads(p.read_text()) for p in (tmp_path / "cache").rglob(f"{kind}-*-s{seed}-*.json")]
    assert len(metas) == 1, metas
    return metas[0]["hr10"], metas[0]["popularity_hr10"]


def _reason(role: str, hr: float, pop: float) -> str:
    return f"{role} on synthetic: valid HR@10 {hr:.4f} < popularity's {pop:.4f}"


def test_weak_simulator_fails_every_cell_of_its_dataset(tmp_path, registry):
    result = run(_cfg(tmp_path, "out", methods=["random", "pop"]), registry)
    hr, pop = _cached_figures(tmp_path, "sasrec", 0)
    assert hr < pop
    expected = ("preparing dataset 'synthetic' failed: WeakSimulator: "
                f"{_reason('simulator sasrec', hr, pop)}: {ADVICE}")
    assert [(c.method, c.status, c.error) for c in result.cells] == \
        [("random", "failed", expected), ("pop", "failed", expected)]
    cells = pd.read_csv(tmp_path / "out" / "cells.csv")  # the grid ended and merged its summary
    assert list(cells["status"]) == ["failed", "failed"]


def test_allow_weak_simulator_scores_and_marks_the_rows(tmp_path, registry, caplog):
    with caplog.at_level(logging.WARNING, logger="prorlbench"):
        result = run(_cfg(tmp_path, "out", methods=["random", "pop"], allow_weak_simulator=True), registry)
    hr, pop = _cached_figures(tmp_path, "sasrec", 0)
    reason = _reason("simulator sasrec", hr, pop)
    assert [(c.status, c.weak_simulator) for c in result.cells] == [("ok", reason), ("ok", reason)]
    assert f"{reason}; used anyway (allow_weak_simulator = true): the report marks its rows" in caplog.messages
    status = RunFolder(tmp_path / "out").read_status("random__synthetic__s0")
    assert status is not None and status.weak_simulator == reason
    cells = pd.read_csv(tmp_path / "out" / "cells.csv", keep_default_na=False)
    assert list(cells["weak_simulator"]) == [reason, reason]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "| random (weak simulator) " in md and "| pop (weak simulator) " in md
    assert "Rows marked (weak simulator) were scored with a model below popularity, kept because " \
           "allow_weak_simulator = true:" in md
    assert f"- random, seed 0: {reason}" in md and f"- pop, seed 0: {reason}" in md
    tex = (tmp_path / "out" / "summary.tex").read_text()
    assert f"% weak simulator: synthetic / sasrec / random / seed 0: {reason}" in tex


def test_weak_simulator_from_the_cache_is_refused_too(tmp_path, registry, monkeypatch):
    run(_cfg(tmp_path, "first", methods=["random"], allow_weak_simulator=True), registry)
    hr, pop = _cached_figures(tmp_path, "sasrec", 0)
    from prorlbench.seq import seqtrain

    def no_training(*a, **k):
        raise AssertionError("the cached simulator must be loaded, not trained")

    monkeypatch.setattr(seqtrain, "train_model", no_training)
    result = run(_cfg(tmp_path, "second", methods=["random"]), registry)
    assert [(c.status, c.error) for c in result.cells] == [
        ("failed", "preparing dataset 'synthetic' failed: WeakSimulator: "
                   f"{_reason('simulator sasrec', hr, pop)}: {ADVICE}")]


def test_weak_backbone_fails_its_own_cell_and_is_marked_when_allowed(tmp_path, registry):
    # The oracle plays the user (exact, never judged); rec2inf trains its own weak SASRec backbone.
    cfg = _cfg(tmp_path, "out", methods=["random", "rec2inf"], simulator="oracle")
    result = run(cfg, registry)
    hr, pop = _cached_figures(tmp_path, "sasrec", 1000)
    reason = _reason("backbone sasrec (seed 1000)", hr, pop)
    assert [(c.method, c.status, c.error) for c in result.cells] == [
        ("random", "ok", None), ("rec2inf", "failed", f"WeakSimulator: {reason}: {ADVICE}")]
    allowed = run(_cfg(tmp_path, "allowed", methods=["random", "rec2inf"], simulator="oracle",
                       allow_weak_simulator=True), registry)
    assert [(c.method, c.status, c.weak_simulator) for c in allowed.cells] == [
        ("random", "ok", ""), ("rec2inf", "ok", reason)]
    md = (tmp_path / "allowed" / "summary.md").read_text()
    assert "| rec2inf (weak simulator) " in md and "| random " in md and "| random (weak" not in md


def test_allow_weak_simulator_is_a_run_key_and_a_flag(capsys):
    assert parse_config_text("[run]\nallow_weak_simulator = true\n", "x.toml").allow_weak_simulator is True
    assert parse_config_text("[run]\n", "x.toml").allow_weak_simulator is False
    from prorlbench.cli import main
    from prorlbench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^x\.toml \[run\] key 'allow_weak_simulator': "):
        parse_config_text('[run]\nallow_weak_simulator = "yes"\n', "x.toml")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--allow-weak-simulator" in capsys.readouterr().out


def test_check_strength_rule(caplog):
    weak = SimulatorInfo(name="gru4rec", hr10=0.011, popularity_hr10=0.034)
    with pytest.raises(WeakSimulator) as exc:
        check_strength("simulator gru4rec", "prorl-json", weak, allow=False)
    assert str(exc.value) == f"simulator gru4rec on prorl-json: valid HR@10 0.0110 < popularity's 0.0340: {ADVICE}"
    with caplog.at_level(logging.WARNING, logger="prorlbench"):
        assert check_strength("simulator gru4rec", "prorl-json", weak, allow=True) == \
            "simulator gru4rec on prorl-json: valid HR@10 0.0110 < popularity's 0.0340"
    assert len(caplog.records) == 1 and caplog.records[0].levelno == logging.WARNING
    for hr, pop in ((0.034, 0.034), (0.2, 0.034), (None, 0.034), (0.01, None), (math.nan, 0.03)):
        assert check_strength("simulator x", "d", SimulatorInfo(name="x", hr10=hr, popularity_hr10=pop),
                              allow=False) is None


# --------------------------------------------------------------------------------------------
# Training: steps, not epochs
# --------------------------------------------------------------------------------------------


def test_epoch_batch_gives_small_data_enough_steps():
    assert epoch_batch(2048, 3284, 20) == 165  # ProRL's ML-1M, paper profile: 20 steps, not 2
    assert epoch_batch(2048, 1990, 20) == 100  # ML-100K
    assert epoch_batch(2048, 2048 * 20, 20) == 2048  # large data keeps RecBole's batch
    assert epoch_batch(128, 800, 1) == 128 and epoch_batch(128, 5, 20) == 1


def test_paper_profile_scales_the_batch_and_quick_keeps_its_values(registry):
    for kind in ("sasrec", "gru4rec"):
        cls = registry.simulator(kind).config_cls
        paper = build_config(cls, {}, profile="paper")
        official = build_config(cls, {}, profile="official")
        quick = build_config(cls, {}, profile="quick")
        assert (paper.batch_size, paper.patience, paper.min_epoch_steps) == (2048, 10, 20)
        assert official == paper
        assert quick.min_epoch_steps == 1 and quick.min_steps == 0 and quick.wait_for_popularity


class _Stuck(torch.nn.Module):
    """A next-item model that cannot learn: it ranks items by id, so the target of the world below
    (item 24, the most popular with 20..23) is 25th (HR@10 0 against popularity's 1); its one
    parameter gets no gradient and its validation NDCG@10 never improves after the first epoch."""

    def __init__(self, n_items: int):
        super().__init__()
        self.n_items, self.max_seq_len = n_items, 8
        self.w = torch.nn.Parameter(torch.zeros(1))

    def encode(self, seqs, lengths):
        return torch.zeros(*seqs.shape, 1) + 0.0 * self.w

    def logits(self, states):
        return -torch.arange(self.n_items, dtype=torch.float).expand(states.shape[0], -1) + 0.0 * self.w


def _world():
    from prorlbench.api import Interactions

    seq = (20, 21, 22, 23, 24)
    return Interactions(name="tiny", n_items=30, sequences={"train": [seq] * 12, "valid": [seq] * 4, "test": []})


@pytest.mark.parametrize("wait, min_steps, epochs", [(False, 0, 2), (False, 9, 3), (True, 0, 6)])
def test_early_stopping_waits_for_steps_and_for_popularity(registry, wait, min_steps, epochs):
    """12 windows at batch 4: 3 steps an epoch. patience 1 ends a stuck model after 2 epochs; min_steps
    9 holds it to 3 epochs; wait_for_popularity holds it to the epoch cap (6): it never beat popularity."""
    cfg = build_config(registry.simulator("sasrec").config_cls,
                       {"epochs": 6, "patience": 1, "batch_size": 4, "min_steps": min_steps,
                        "wait_for_popularity": wait, "max_seq_len": 8})
    out = train_model(_Stuck(30), cfg, _world(), device="cpu", seed=0)
    assert (out["epochs"], out["steps"], out["batch"], out["best_epoch"]) == (epochs, 3 * epochs, 4, 1)
    assert out["hr10"] == 0.0


@pytest.mark.parametrize("min_epoch_steps, batch, steps", [(1, 12, 2), (6, 2, 12)])
def test_min_epoch_steps_shrinks_the_batch(registry, min_epoch_steps, batch, steps):
    cfg = build_config(registry.simulator("sasrec").config_cls,
                       {"epochs": 2, "patience": 5, "batch_size": 64, "min_epoch_steps": min_epoch_steps,
                        "max_seq_len": 8})
    out = train_model(_Stuck(30), cfg, _world(), device="cpu", seed=0)
    assert (out["batch"], out["steps"], out["epochs"]) == (batch, steps, 2)


# --------------------------------------------------------------------------------------------
# Every shipped simulator x dataset beats popularity (quick profile)
# --------------------------------------------------------------------------------------------


def _load(registry, dataset: str, folder: Path | None):
    spec = registry.dataset(dataset)
    return spec.load(build_config(spec.config_cls, {}, profile="quick"), folder)


@pytest.mark.parametrize("simulator", ["sasrec", "gru4rec"])
def test_shipped_simulators_beat_popularity_on_synthetic(registry, simulator):
    torch.set_num_threads(1)
    r = measure(registry, simulator, "synthetic", _load(registry, "synthetic", None), "quick", 0, {})
    assert r["hr10"] >= MARGIN * r["pop_hr10"], r


@pytest.mark.shared_data
@pytest.mark.parametrize("dataset, folder", [("movielens", "ml-100k"), ("prorl-json", "prorl-ml-1m")])
@pytest.mark.parametrize("simulator", ["sasrec", "gru4rec"])
def test_shipped_simulators_beat_popularity_on_real_data(registry, shared_data, simulator, dataset, folder):
    """The quick profile's simulator (seed 0, the runs' simulator_seed) on ML-100K and ProRL's
    ML-1M: about a minute each on one thread."""
    torch.set_num_threads(1)
    r = measure(registry, simulator, dataset, _load(registry, dataset, shared_data / folder), "quick", 0, {})
    assert r["hr10"] >= MARGIN * r["pop_hr10"], r


def test_a_plugin_without_popularity_figure_is_judged_against_the_harness_one():
    """A simulator plugin that reports its own HR@10 but not popularity's is still judged: the
    harness computes popularity on the same validation users (here 1.0: the target is the most
    popular item); one that reports no HR@10 at all cannot be judged."""
    from prorlbench.seq.strength import with_popularity

    info = with_popularity(_world(), SimulatorInfo(name="plug", hr10=0.25))
    assert info.popularity_hr10 == 1.0
    with pytest.raises(WeakSimulator, match=r"^simulator plug on tiny: valid HR@10 0\.2500 < popularity's 1\.0000: "):
        check_strength("simulator plug", "tiny", info, allow=False)
    assert with_popularity(_world(), SimulatorInfo(name="plug")).popularity_hr10 is None


def test_simulator_quality_benchmark_prints_figures_and_ratio(registry, capsys):
    from benchmarks.simulator_quality import main

    rows = main(["--profile", "quick", "--datasets", "synthetic", "--simulators", "gru4rec", "--set", "epochs=2",
                 "--set", "patience=2"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["simulator", "dataset", "profile", "seed", "batch", "steps", "epochs", "seconds",
                              "HR@10", "pop", "ratio", ">=", "1.2x"]
    (r,) = rows
    assert (r["simulator"], r["dataset"], r["batch"], r["steps"], r["epochs"]) == ("gru4rec", "synthetic", 128, 14, 2)
    assert r["pop_hr10"] == 0.15 and r["ratio"] == pytest.approx(r["hr10"] / 0.15)
    assert out[1].split()[:7] == ["gru4rec", "synthetic", "quick", "0", "128", "14", "2"]
    assert out[1].split()[-1] == ("yes" if r["ratio"] >= MARGIN else "NO")
