"""The scoring benchmark's two-pass reference (ProRL's scheme) computes the same per-step values
as the one-pass scorer, so the benchmark compares equal quantities."""

from __future__ import annotations

import torch

from benchmarks.scoring import main, make_batch, one_pass_step_scores
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
    hist, hist_len, targets, paths, path_len = make_batch(n_items, 12, 10, 6, seed=1, device="cpu")
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
    res = main(["--cases", "2", "--samples", "2", "--steps", "3", "--items", "80", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "speed-up" in out and "path-steps/s" in out
    assert res["maxdiff_ior"] == 0.0 and res["maxdiff_ioi"] < 1e-4
