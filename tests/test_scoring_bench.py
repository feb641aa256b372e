"""The scoring benchmark's two-pass reference (ProRL's scheme) computes the same per-step values
as the one-pass scorer, so the benchmark compares equal quantities."""

from __future__ import annotations

import torch

from benchmarks.scoring import floor_work, main, make_batch, one_pass_step_scores
from benchmarks.twopass import left_pad_windows, twopass_step_scores
from prorlbench_plugins.simulators.sasrec import SASRec, SASRecConfig


def test_left_pad_windows_keeps_last_items_and_positions():
    seqs = torch.tensor([[1, 2, 3, 4, 9, 9], [5, 6, 9, 9, 9, 9]])
    win, pos, mask = left_pad_windows(seqs, torch.tensor([4, 2]), 3, 9)
    assert win.tolist() == [[2, 3, 4], [9, 5, 6]]
    assert pos[1, 1:].tolist() == [0, 1] and pos[0].tolist() == [0, 1, 2]
    assert mask.tolist() == [[True, True, True], [False, True, True]]


def test_twopass_reference_agrees_with_one_pass():
    torch.manual_seed(0)
    n_items = 60
    model = SASRec(SASRecConfig(), n_items).double().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    hist, hist_len, targets, paths, path_len = make_batch(n_items, 4, 3, 10, 6, seed=1, device="cpu")
    path_len = torch.tensor([6, 5, 0, 1, 6, 3, 2, 6, 4, 6, 6, 6])
    hist_len = torch.tensor([10, 10, 3, 10, 7, 10, 1, 10, 10, 10, 10, 10])
    one = one_pass_step_scores(model, hist, hist_len, targets, paths, path_len)
    two = twopass_step_scores(model, hist, hist_len, targets, paths, path_len, rows_per_pass=7)
    step = torch.arange(6)[None, :] < path_len[:, None]
    for k in ("ioi", "ior", "ctr"):
        a, b = one[k][step], two[k][step]
        assert torch.allclose(a.double(), b.double(), atol=1e-6), k
    assert torch.all(two["ioi"][~step] == 0)


def test_benchmark_runs_and_reports(capsys):
    rows = main(["--cases", "2", "--samples", "2", "--steps", "3", "--items", "120,80", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "speed-up" in out and "path-steps/s" in out and "one-pass / floor" in out
    assert [r["items"] for r in rows] == [80, 120]  # increasing order, so peak memory is cumulative
    for res in rows:
        assert res["maxdiff_ior"] == 0.0 and res["maxdiff_ioi"] < 1e-4
        assert res["one_over_floor"] > 0 and res["peak_mem_mib"] > 0


def test_floor_work_matches_full_softmax():
    g = torch.Generator().manual_seed(0)
    w, states = torch.randn(50, 8, generator=g), torch.randn(13, 8, generator=g)
    targets = torch.randint(0, 50, (13,), generator=g)
    logp, rank = floor_work(w, states, targets, chunk=4)
    full = torch.log_softmax(states @ w.T, 1)
    assert torch.allclose(logp, full.gather(1, targets[:, None]).squeeze(1), atol=1e-5)
    lg = states @ w.T
    assert torch.equal(rank, (lg > lg.gather(1, targets[:, None])).sum(1).float())
