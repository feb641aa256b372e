"""The ``semantic-id`` policy inside the RL family: SFT, every estimator, every switch, generate()."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from prorlbench.config import build_config
from prorlbench.errors import ConfigError
from prorlbench.rl.config import RLConfig
from prorlbench.rl.method import RLMethod
from prorlbench.rl.policies import policy_kind
from prorlbench.rl.seq2seq_policy import SemanticIdPolicy
from prorlbench_plugins.methods.rl_family import ESTIMATORS

from .fakes import make_ctx

SEM = {"policy": "semantic-id", "sem_d_model": 16, "sem_enc_layers": 1, "sem_dec_layers": 1, "sem_d_ff": 32,
       "sem_heads": 2, "n_codebooks": 2, "codebook_size": 4, "samples_per_case": 4, "batch_cases": 8,
       "epochs": 1, "sft_epochs": 2, "sft_batch": 16, "grad_var_every": 3, "n_valid_cases": 8, "max_history": 6}
BY_NAME = {s.name: s for s in ESTIMATORS}


def sem_ctx(tmp_path, **kw):
    ctx = make_ctx(tmp_path, n_train=32, n_valid=8, n_test=6, **kw)
    seqs = [c.history + c.reference for c in ctx.cases.train]
    ctx.data = dataclasses.replace(ctx.data, sequences={"train": seqs, "valid": [], "test": []})
    return ctx


def test_sft_loss_decreases_and_generate_gives_catalog_items(tmp_path):
    ctx = sem_ctx(tmp_path)
    cfg = build_config(RLConfig, {**SEM, "sft_epochs": 6, "sft_lr": 3e-3})
    m = RLMethod(cfg, None)
    m.fit(ctx)
    assert isinstance(m.policy, SemanticIdPolicy) and m.policy.n_digits == 3
    losses = ctx.logger.series("sft_loss")
    assert len(losses) == 6 and losses[-1] < losses[0] * 0.8
    out = m.generate(ctx.cases.test, 4)
    assert out == m.generate(ctx.cases.test, 4)  # deterministic
    for case, cands in zip(ctx.cases.test, out):
        assert len(cands) == 4
        for p in cands:
            assert all(0 <= i < 40 for i in p) and len(set(p)) == len(p) and not set(p) & set(case.history)
    assert list((tmp_path / "semantic_ids").glob("codes-*.json"))  # RQ-KMeans codes, cached


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_estimator_trains_the_semantic_policy(tmp_path, name):
    ctx = sem_ctx(tmp_path)
    cfg = build_config(RLConfig, {**SEM, "select": "last"})
    m = RLMethod(cfg, BY_NAME[name])
    m.fit(ctx)
    rows = [v for _, v in ctx.logger.rows if "loss" in v]
    assert len(rows) == 4 and all(torch.isfinite(torch.tensor(v["loss"])) for v in rows)
    sft = RLMethod(cfg, None)
    sft.fit(ctx)  # the cached SFT start
    assert sft.info["cached"] == 1.0
    moved = [not torch.equal(a, b) for a, b in zip(m.policy.state_dict().values(), sft.policy.state_dict().values())]
    assert any(moved)  # the RL steps changed the policy
    assert len(m.generate(ctx.cases.test, 2)) == len(ctx.cases.test)


SWITCHES = [
    {"kl": "k3"}, {"kl": "exact"}, {"empty_paths": "skip"}, {"centering": "position"}, {"centering": "batch"},
    {"decode": "greedy"}, {"decode": "beam", "beam_width": 3}, {"sample_top_k": 5, "sample_temperature": 0.7},
    {"token_logprob": "sum"}, {"warmup_frac": 0.5, "weight_decay": 0.05},
    {"decoding": "free", "kl": "exact", "decode": "beam", "beam_width": 3},
]


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_every_switch_works_with_the_semantic_policy(tmp_path, switch):
    ctx = sem_ctx(tmp_path)
    m = RLMethod(build_config(RLConfig, {**SEM, **switch}), BY_NAME["prorl"])
    m.fit(ctx)
    kls = ctx.logger.series("kl")
    assert kls and all(torch.isfinite(torch.tensor(kls)))
    if switch.get("kl") in ("k3", "exact"):
        assert all(k >= -1e-5 for k in kls)  # both are never negative
    out = m.generate(ctx.cases.test, 3)
    assert all(len(c) <= 3 and all(len(p) <= 4 for p in c) for c in out)


def test_free_decoding_reports_invalid_codes_to_the_metrics(tmp_path):
    from prorlbench.seq.scoring import score_paths
    from prorlbench_plugins.metrics.core import invalid

    ctx = sem_ctx(tmp_path)
    cfg = build_config(RLConfig, {**SEM, "decoding": "free", "sft_epochs": 1, "sample_temperature": 3.0})
    m = RLMethod(cfg, None)
    m.fit(ctx)
    out = m.generate(ctx.cases.test, 6)
    paths = [p for c in out for p in c]
    cases = [c for c, cands in zip(ctx.cases.test, out) for _ in cands]
    n_bad = sum(1 for p in paths for i in p if i < 0)
    assert n_bad > 0  # an untrained free decoder makes codes no item has
    sc = score_paths(ctx.simulator, cases, paths)
    assert int(sc.n_unknown.sum()) == n_bad and float(invalid(sc).max()) > 0


def test_auto_policy_follows_the_dataset_codes_and_bad_keys_are_config_errors(tmp_path):
    ctx = sem_ctx(tmp_path)
    auto = build_config(RLConfig, {"policy": "auto"})
    assert policy_kind(auto, ctx.data) == "item"
    coded = dataclasses.replace(ctx.data, item_codes=tuple((i // 8, i % 8) for i in range(40)))
    assert policy_kind(auto, coded) == "semantic-id"
    assert RLConfig.PROFILES["official"]["policy"] == "auto"
    for bad in ({"policy": "tiger"}, {"token_logprob": "max"}, {"decoding": "beam"}, {"sem_heads": 3}):
        with pytest.raises(ConfigError):
            build_config(RLConfig, bad)


def test_auto_policy_trains_on_the_dataset_codes(tmp_path):
    ctx = sem_ctx(tmp_path)
    codes = tuple((i // 8, i % 8) for i in range(40))
    ctx.data = dataclasses.replace(ctx.data, item_codes=codes)
    m = RLMethod(build_config(RLConfig, {**SEM, "policy": "auto", "decoding": "free", "sft_epochs": 1}), None)
    m.fit(ctx)
    assert isinstance(m.policy, SemanticIdPolicy) and m.policy.decoding == "free"
    assert m.policy.sem.codes.tolist() == [list(c) for c in codes]  # the shipped codes, not RQ-KMeans
    assert not (tmp_path / "semantic_ids").exists()
