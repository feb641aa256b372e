"""The RL throughput, gradient-variance, generation and worker benchmarks run end to end (tiny
world), so they do not rot."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.rl_throughput import main


def test_rl_throughput_runs_both_profiles_and_reports(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:  # one thread: tiny ops on a busy 2-core machine are far slower with two
        res = main(["--tiny", "--simulator", "oracle", "--profile", "all", "--steps", "2", "--warmup", "1",
                    "--cache-dir", str(tmp_path), "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert [r["profile"] for r in res] == ["quick", "paper"]
    for r in res:
        assert r["steps"] == 2 and r["batch_cases"] == 4 and r["samples_per_case"] == 2
        assert r["paths_per_s"] > 0 and math.isclose(r["paths_per_s"], r["steps_per_s"] * 4 * 2)
        assert 0 <= r["mean_path_len"] <= r["max_path_len"] and r["peak_mem_mib"] > 0
        assert r["policy"] == "item"


def test_rl_throughput_times_the_semantic_id_policy(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        res = main(["--tiny", "--simulator", "oracle", "--policy", "both", "--decoding", "free", "--steps", "2",
                    "--warmup", "1", "--cache-dir", str(tmp_path), "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert [r["policy"] for r in res] == ["item", "semantic-id/free"]
    assert "semantic-id/free] B=4 G=2" in out
    assert all(r["paths_per_s"] > 0 and r["peak_mem_mib"] > 0 for r in res)
    assert "sampled paths/s" in out and "steps/s" in out and "peak memory" in out
    assert "randomly initialised" in out


def test_grad_variance_runs_every_estimator_on_the_same_rollouts(tmp_path, capsys):
    from benchmarks.grad_variance import main as gv_main

    stats = gv_main(["--tiny", "--simulator", "oracle", "--replicates", "3", "--ref-batches", "2",
                     "--norm-batches", "1", "--bootstrap", "20", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert {"prorl", "naive-pg", "noise-pg", "grpo", "rloo"} <= set(stats)
    for s in stats.values():
        v, lo, hi = s["var"]
        assert v >= 0 and lo <= hi and -1 <= s["cos"][0] <= 1
    assert "paired: rel_var(prorl) / rel_var(prorl-no-positional-baseline)" in out


def test_generate_benchmark_runs_both_samplers(tmp_path, capsys):
    from benchmarks.generate import main as generate_main, race_draw

    threads = torch.get_num_threads()
    try:
        res = generate_main(["--tiny", "--repeat", "1", "--k", "3", "--cache-dir", str(tmp_path), "--threads", "1",
                             "--policy", "both"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert out.count("one draw per row") == 2 and out.count("exponential race") == 2 and "speed-up" in out
    assert "item policy" in out and "semantic-id (" in out
    for kind in ("item", "semantic-id"):
        assert res[f"{kind}_new_paths_per_s"] > 0 and res[f"{kind}_race_paths_per_s"] > 0 and res[f"{kind}_k"] == 3
    # the reference race draws from the same distribution: every draw is an allowed action
    logits = torch.tensor([[0.0, float("-inf"), 1.0], [float("-inf"), float("-inf"), 0.0]])
    g = torch.Generator().manual_seed(0)
    picks = torch.stack([race_draw(logits, g) for _ in range(200)])
    assert set(picks[:, 0].tolist()) == {0, 2} and set(picks[:, 1].tolist()) == {2}


def test_workers_benchmark_times_fork_and_spawn_workers_with_identical_values(capsys):
    pytest.importorskip("ray")  # spawn ships the work with cloudpickle
    from benchmarks.workers import main as workers_main

    res = workers_main(["--tiny", "--methods", "random,pop", "--seeds", "0", "--rounds", "1", "--spawn"])
    assert res["identical"] == 1.0
    assert set(res) == {"in process", "fork worker", "spawn worker", "identical"}
    assert all(v > 0 for k, v in res.items() if k != "identical")
    assert "per-case values identical: True" in capsys.readouterr().out
