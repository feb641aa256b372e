"""RL cells checkpoint and resume mid-training (issue 28, item 5).

A training interrupted after a random step (drawn with a seeded RNG) and run again from its
checkpoint gives, bit for bit, the policy, the train-log rows and the generated paths of an
uninterrupted training; checkpoints never change a run's numbers; a checkpoint of another config
or cell, or a damaged one, is ignored. ``test_a_killed_cell_resumes`` does the same through the
CLI with SIGKILL and Ctrl-C (SIGINT) at a random step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random

import pytest
import torch

from prorlbench.api import EstimatorSpec
from prorlbench.config import build_config
from prorlbench.rl.config import RLConfig
from prorlbench.rl.method import RLMethod
from prorlbench_plugins.methods.rl_family import ESTIMATORS

from .fakes import ListLogger, make_ctx

BY_NAME = {s.name: s for s in ESTIMATORS}
TINY = {"d_model": 16, "n_layers": 1, "samples_per_case": 4, "batch_cases": 6, "epochs": 3, "max_train_cases": 18,
        "sft_epochs": 2, "sft_batch": 16, "grad_var_every": 2, "n_valid_cases": 6, "max_history": 6,
        "checkpoint_every": 1, "sem_d_model": 16, "sem_enc_layers": 1, "sem_dec_layers": 1, "sem_d_ff": 32,
        "sem_heads": 2, "n_codebooks": 2, "codebook_size": 4}
CONFIGS = {
    "prorl": ("prorl", {}),
    "noise-pg+batch+warmup": ("noise-pg", {"centering": "batch", "warmup_frac": 0.3, "normalizer_epochs": 2}),
    "grpo+position+skip": ("grpo", {"centering": "position", "empty_paths": "skip", "select": "last"}),
    "semantic-free": ("prorl", {"policy": "semantic-id", "decoding": "free", "kl": "exact"}),
}
TOTAL_STEPS = 9  # 3 epochs of 18 cases, 6 a step


class Stop(Exception):
    """The injected failure."""


def stopping(est: EstimatorSpec, at: int | None) -> EstimatorSpec:
    """``est``, raising :class:`Stop` in its ``at``-th call (one call a step): the step dies midway."""
    calls = [0]

    def estimate(batch):
        calls[0] += 1
        if at is not None and calls[0] == at:
            raise Stop(f"step {at}")
        return est.estimate(batch)

    return dataclasses.replace(est, estimate=estimate)


def fit(tmp_path, est: str, over: dict, *, ckpt=None, key: str = "cell", stop_at: int | None = None,
        logger=None):
    ctx = make_ctx(tmp_path / "cache", n_train=24, n_valid=6, n_test=6)
    seqs = [c.history + c.reference for c in ctx.cases.train]
    ctx.data = dataclasses.replace(ctx.data, sequences={"train": seqs, "valid": [], "test": []})
    ctx = dataclasses.replace(ctx, checkpoint=ckpt, checkpoint_key=key, logger=logger or ListLogger())
    m = RLMethod(build_config(RLConfig, {**TINY, **over}), stopping(BY_NAME[est], stop_at))
    torch.manual_seed(ctx.seed)
    m.fit(ctx)
    return m, ctx


def outcome(m: RLMethod, ctx) -> tuple:
    weights = hashlib.sha256(b"".join(v.contiguous().numpy().tobytes() for v in m.policy.state_dict().values()))
    rows = [(s, sorted((k, repr(v)) for k, v in d.items())) for s, d in ctx.logger.rows]
    return weights.hexdigest(), rows, m.generate(ctx.cases.test, 3), m.info


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_training_stopped_at_a_random_step_resumes_bit_for_bit(tmp_path, name):
    est, over = CONFIGS[name]
    k = random.Random(f"step-{name}").randint(1, TOTAL_STEPS)  # the step that dies (seeded)
    plain = outcome(*fit(tmp_path / "plain", est, {**over, "checkpoint_every": -1}))
    ckpt = tmp_path / "run" / "cell.resume.pt"
    with pytest.raises(Stop):
        fit(tmp_path / "run", est, over, ckpt=ckpt, stop_at=k)
    assert torch.load(ckpt, weights_only=True)["step"] == k - 1  # the steps before the one that died
    resumed = outcome(*fit(tmp_path / "run", est, over, ckpt=ckpt))
    uninterrupted = outcome(*fit(tmp_path / "again", est, over, ckpt=tmp_path / "again.pt"))
    assert resumed[0] == plain[0] == uninterrupted[0]  # policy weights, bit for bit
    assert resumed[1] == plain[1] == uninterrupted[1]  # every train-log row, SFT's too, in order
    assert resumed[2] == plain[2]  # generated paths
    assert resumed[3]["steps"] == plain[3]["steps"] == TOTAL_STEPS
    assert resumed[3]["selected_epoch"] == plain[3]["selected_epoch"]


def test_the_final_checkpoint_skips_training_and_keeps_the_selection(tmp_path, caplog):
    ckpt = tmp_path / "c.pt"
    first = outcome(*fit(tmp_path, "prorl", {"checkpoint_every": 0}, ckpt=ckpt))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 3  # the end of training (auto mode: once)
    with caplog.at_level(logging.INFO, logger="prorlbench"):
        again = outcome(*fit(tmp_path, "prorl", {"checkpoint_every": 0}, ckpt=ckpt))
    assert "RL resumed at step 9 of 9" in caplog.text
    assert again[0] == first[0] and again[1] == first[1] and again[2] == first[2]


def test_a_checkpoint_of_another_config_or_cell_or_a_damaged_one_is_ignored(tmp_path, caplog):
    ckpt = tmp_path / "c.pt"
    with pytest.raises(Stop):
        fit(tmp_path, "prorl", {}, ckpt=ckpt, stop_at=6)
    saved = ckpt.read_bytes()
    fresh = outcome(*fit(tmp_path / "fresh", "prorl", {"lr": 2e-3}, ckpt=tmp_path / "fresh.pt"))
    with caplog.at_level(logging.INFO, logger="prorlbench"):
        other_cfg = outcome(*fit(tmp_path, "prorl", {"lr": 2e-3}, ckpt=ckpt))
    assert "for another config or code" in caplog.text and "resumed" not in caplog.text
    assert (other_cfg[0], other_cfg[2]) == (fresh[0], fresh[2])  # (the SFT stage came from the cache)
    ckpt.write_bytes(saved)
    caplog.clear()
    fresh_cell = outcome(*fit(tmp_path / "fresh2", "prorl", {}, ckpt=tmp_path / "f2.pt", key="other"))
    with caplog.at_level(logging.INFO, logger="prorlbench"):
        other_cell = outcome(*fit(tmp_path, "prorl", {}, ckpt=ckpt, key="other"))
    assert "resumed" not in caplog.text and (other_cell[0], other_cell[2]) == (fresh_cell[0], fresh_cell[2])
    ckpt.write_bytes(saved[: len(saved) // 2])  # a torn file (not atomic writes: cannot happen here)
    with caplog.at_level(logging.WARNING, logger="prorlbench"):
        damaged = outcome(*fit(tmp_path, "prorl", {}, ckpt=ckpt))
    assert "unreadable" in caplog.text
    plain = outcome(*fit(tmp_path / "p", "prorl", {}, ckpt=None))
    assert (damaged[0], damaged[2]) == (plain[0], plain[2])


DOOMED_PLUGIN = '''
"""prorl as the estimator 'doomed', which sends its own process a signal in a chosen call."""
import os
import signal

from prorlbench import hookimpl
from prorlbench.api import EstimatorSpec
from prorlbench_plugins.methods.rl_family import ESTIMATORS

PRORL = next(s for s in ESTIMATORS if s.name == "prorl")
CALLS = [0]


def estimate(batch):
    CALLS[0] += 1  # one call a step, in the middle of it
    at = os.environ.get("DOOM_AT", "")
    if at and CALLS[0] == int(at.split(":")[0]):
        os.kill(os.getpid(), getattr(signal, at.split(":")[1]))
    return PRORL.estimate(batch)


@hookimpl
def register_estimators(register):
    register(EstimatorSpec(name="doomed", summary="prorl, signalled in a chosen step", estimate=estimate))
'''

DOOMED_CONFIG = '''
[run]
methods = ["doomed"]
datasets = ["tinyfake"]
simulator = "fakesim"
ks = [1, 2]
workers = 0
[cases]
max_path_len = 4
[methods.doomed]
d_model = 16
n_layers = 1
max_history = 5
samples_per_case = 4
batch_cases = 4
epochs = 3
sft_epochs = 2
n_valid_cases = 6
grad_var_every = 2
checkpoint_every = 1
'''


def test_a_killed_cell_resumes(tmp_path):
    """Through the CLI: SIGKILL in a random step, then Ctrl-C (SIGINT) in a later one, then a run
    to the end; the cell's per-case values, stored paths and train log equal an uninterrupted
    run's byte for byte, and its checkpoint is gone once it is stored."""
    from tests.runner_support import FAKE_PLUGIN, cli_env, run_cli

    plug = tmp_path / "plugins"
    plug.mkdir()
    (plug / "fakes.py").write_text(FAKE_PLUGIN)
    (plug / "doomed.py").write_text(DOOMED_PLUGIN)
    (tmp_path / "run.toml").write_text(DOOMED_CONFIG)
    rng = random.Random("cli-resume")
    kill_at, int_after = rng.randint(2, 5), rng.randint(1, 3)  # 9 steps: 3 epochs of 12 cases, 4 a step

    def run(out: str, cache: str, doom: str = ""):
        env = cli_env(allow="rl_family,metrics", cache=tmp_path / cache)
        env["DOOM_AT"] = doom
        return run_cli(["run", "--config", str(tmp_path / "run.toml"), "--plugins-dir", str(plug),
                        "--out", str(tmp_path / out), "--no-progress"], env=env, cwd=tmp_path)

    plain = run("plain", "cache-plain")
    assert plain.returncode == 0, plain.stderr
    killed = run("resumed", "cache", f"{kill_at}:SIGKILL")
    assert killed.returncode == -9
    cells = tmp_path / "resumed" / "cells"
    (ckpt,) = cells.glob("*.resume.pt")
    assert torch.load(ckpt, weights_only=True)["step"] == kill_at - 1
    interrupted = run("resumed", "cache", f"{int_after}:SIGINT")
    assert interrupted.returncode != 0 and not list(cells.glob("*.json"))  # Ctrl-C: nothing stored ...
    assert torch.load(ckpt, weights_only=True)["step"] == kill_at - 1 + int_after - 1  # ... the checkpoint kept
    done = run("resumed", "cache")
    assert done.returncode == 0, done.stderr
    assert not list(cells.glob("*.resume.pt"))  # deleted once the cell is stored
    for kind in ("cases.csv.gz", "paths.json.gz", "train_log.csv", "policy.pt"):
        (a,) = (tmp_path / "plain" / "cells").glob(f"*.{kind}")
        (b,) = cells.glob(f"*.{kind}")
        assert a.read_bytes() == b.read_bytes(), kind
