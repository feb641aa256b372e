"""Per-step raw rewards from the simulator's path scores."""

from __future__ import annotations

import torch

from prorlbench.rl.rewards import path_rewards
from prorlbench.seq.scoring import histories_tensor, score_paths

from .fakes import DriftModel, make_cases


def test_step_rewards_sum_to_path_metrics_and_invalid_steps_get_no_credit():
    model = DriftModel(n_items=30).eval()
    cases = make_cases(model, 4, seed=5)

    def fresh(c):
        return [i for i in range(30) if i not in c.history and i != c.target]

    f0, f1, f2 = fresh(cases[0]), fresh(cases[1]), fresh(cases[2])
    paths = [
        (f0[0], f0[1], f0[2]),                # all valid
        (cases[1].history[0], f1[3]),         # first item is in H: invalid
        (f2[4], f2[4], f2[5]),                # repeat at step 2: invalid
        (),                                   # empty path
    ]
    hist, hist_len = histories_tensor(cases, 30)
    width = 3
    pt = torch.full((len(paths), width), 30, dtype=torch.long)
    for r, p in enumerate(paths):
        if p:
            pt[r, : len(p)] = torch.tensor(p)
    lengths = torch.tensor([len(p) for p in paths])
    targets = torch.tensor([c.target for c in cases])
    before = model.n_encode_calls
    raw, valid, sc = path_rewards(model, hist, hist_len, targets, pt, lengths)
    assert model.n_encode_calls == before + 1  # one forward pass for all paths
    ref = score_paths(model, cases, paths)
    ioi_path = ref.final(ref.log_p) - ref.log_p[:, 0]
    ior_path = ref.rank[:, 0] - ref.final(ref.rank)
    # path 0 is fully valid: step rewards add up to IoI / IoR, ctr is the per-step accept
    torch.testing.assert_close(raw["ioi"][0].sum(), ioi_path[0])
    torch.testing.assert_close(raw["ior"][0].sum(), ior_path[0])
    torch.testing.assert_close(raw["ctr"][0], ref.accept[0])
    assert valid.tolist() == [[True, True, True], [False, True, False], [True, False, True], [False, False, False]]
    # invalid steps: no ctr, no ioi/ior credit; valid steps keep theirs
    for r, k in [(1, 0), (2, 1)]:
        assert raw["ctr"][r, k] == 0 and raw["ioi"][r, k] == 0 and raw["ior"][r, k] == 0
    torch.testing.assert_close(raw["ioi"][1, 1], ref.log_p[1, 2] - ref.log_p[1, 1])
    torch.testing.assert_close(raw["ior"][2, 2], ref.rank[2, 2] - ref.rank[2, 3])
    assert float(raw["ctr"][3].abs().sum()) == 0.0
