"""How the RL step rewards of ``reward_state = 'official-leftpad'`` relate to the causal ones.

    python -m benchmarks.reward_state --dataset prorl-json --data-dir ../shared/data/prorl-ml-1m

The official ProRL trainer rewards its paths with RecBole's SASRec fed left-padded sequences
and reads the output at index ``len - 1``, a padding slot (see :mod:`prorlbench.rl.rewards`). On
the dataset's training cases this scores the same paths both ways, with the run's trained SASRec
simulator: the reference paths (``P*`` without the target) and as many random valid paths
(uniform items not in H, length 1..max_path_len). Printed per reward component (ioi, ior, ctr):
Pearson and Spearman correlation of the step rewards over valid steps, of the path sums, and the
means under each state.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from scipy import stats

from prorlbench.rl.policy import CaseTensors
from prorlbench.rl.rewards import path_rewards
from prorlbench.settings.runconfig import default_cache_dir

from .rl_throughput import prepare


def random_paths(ct: CaseTensors, n_items: int, max_len: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform valid paths: distinct items not in H and not the target, lengths 1..max_len."""
    n = len(ct)
    keys = torch.rand(n, n_items, generator=gen)
    banned = torch.zeros(n, n_items + 1, dtype=torch.bool).scatter_(1, ct.hist, True)[:, :n_items]
    banned.scatter_(1, ct.target[:, None], True)
    keys[banned] = 2.0
    paths = keys.argsort(1)[:, :max_len]
    lengths = torch.randint(1, max_len + 1, (n,), generator=gen)
    pad = torch.arange(max_len)[None] >= lengths[:, None]
    return torch.where(pad, n_items, paths), lengths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reward_state", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="prorl-json")
    ap.add_argument("--data-dir", default="../shared/data/prorl-ml-1m")
    ap.add_argument("--cases", type=int, default=2000, help="training cases used (default 2000)")
    ap.add_argument("--cache-dir", default="")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    res, dctx = prepare(args.dataset, args.data_dir, "cpu", args.cache_dir or str(default_cache_dir()), "quick",
                        dataset_options={"data_dir": args.data_dir} if args.data_dir else None)
    sim, n_items, p = dctx.simulator, dctx.data.n_items, dctx.max_path_len
    cases = [c for c in dctx.cases.train if c.reference][: args.cases]
    ct = CaseTensors.from_cases(cases, n_items)
    ref = torch.full((len(cases), p), n_items)
    ref_len = torch.zeros(len(cases), dtype=torch.long)
    for r, c in enumerate(cases):
        items = list(c.reference[:-1])[:p]
        ref[r, : len(items)] = torch.tensor(items, dtype=torch.long)
        ref_len[r] = len(items)
    rnd, rnd_len = random_paths(ct, n_items, p, torch.Generator().manual_seed(0))
    print(f"# reward_state: {dctx.name}, {n_items} items, {len(cases)} training cases, simulator "
          f"{res.cfg.simulator} (window {sim.max_seq_len})\n")
    print("| paths | component | steps | Pearson (steps) | Spearman (steps) | Pearson (path sums) | "
          "mean causal | mean leftpad |")
    print("|---|---|---|---|---|---|---|---|")
    for label, paths, lengths in (("reference P*", ref, ref_len), ("random", rnd, rnd_len)):
        keep = lengths > 0
        args_ = (ct.hist[keep], ct.hist_len[keep], ct.target[keep], paths[keep], lengths[keep])
        with torch.no_grad():
            rc, vc, _ = path_rewards(sim, *args_, state="causal")
            rl, vl, _ = path_rewards(sim, *args_, state="official-leftpad")
        valid = vc & vl
        for comp in ("ioi", "ior", "ctr"):
            a, b = rc[comp][valid].double().numpy(), rl[comp][valid].double().numpy()
            sa, sb = (rc[comp] * valid).sum(1).double().numpy(), (rl[comp] * valid).sum(1).double().numpy()
            print(f"| {label} | {comp} | {a.size} | {stats.pearsonr(a, b)[0]:.3f} | {stats.spearmanr(a, b)[0]:.3f} | "
                  f"{stats.pearsonr(sa, sb)[0]:.3f} | {np.mean(a):.3f} | {np.mean(b):.3f} |")
    print(f"\n{time.perf_counter() - t0:.0f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
