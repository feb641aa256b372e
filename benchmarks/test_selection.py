"""How much selecting checkpoints on the test set (as the official ProRL code does) would move the
test numbers, against our selection on validation cases.

    python -m benchmarks.test_selection --dataset movielens --data-dir ../shared/data/ml-100k --seeds 0,1,2

The official SFT stage keeps the epoch with the best score on the *test* loader, and the RL stage
validates on it too (docs/findings.md). Here, for each seed, the SFT stage and then one RL method
(``--method``, default ``prorl``) are trained exactly as ``prorlbench run`` trains them (``quick``
profile unless ``--profile``), and after every epoch the candidate-1 IoI@1 of the selection
decode is computed on the validation cases (what we select on) *and* on the test cases (what the
official code selects on), under the training simulator. Printed per stage and seed:

* ``valid-selected``: the test IoI@1 of the epoch with the best validation IoI@1 (ours);
* ``test-selected``: the best test IoI@1 over the epochs (the official rule);
* ``gap``: their difference (≥ 0 by construction): how much the official rule inflates the test
  number relative to an honest selection, on the same training run.

The random state follows a cell's (``prorlbench run`` seeds, then trains), so the
valid-selected RL row reproduces the cell's test IoI@1 when the evaluating simulator is the
training one. RL starts from the valid-selected SFT checkpoint in both columns (changing the start would need a
second RL run). The test IoI@1 here is the greedy/threshold candidate 1 of ``validation_ioi``, the
number the RL trainer's selection reads, on every test case. The training itself is unchanged:
the observer only scores a deterministic decode and draws no random numbers.
"""

from __future__ import annotations

import argparse
import sys

import torch

from prorlbench.api import FitContext
from prorlbench.config import build_config
from prorlbench.rl.config import RLConfig
from prorlbench.rl.policies import build_policy, policy_codes
from prorlbench.rl.policy import CaseTensors
from prorlbench.rl.sft import _fit
from prorlbench.rl.trainer import train_rl, validation_ioi
from prorlbench.settings.runconfig import default_cache_dir
from prorlbench.engine.seeding import seed_everything

from .grad_variance import _NullLogger
from .rl_throughput import prepare


def run_seed(res, dctx, method: str, profile: str, seed: int) -> dict[str, list[tuple[int, float, float]]]:
    """``{"sft": [(epoch, valid, test), ...], "rl": [...]}`` for one seed."""
    cfg = build_config(RLConfig, {}, profile=profile).for_dataset(dctx.data.name)
    max_len = cfg.max_path_len or dctx.max_path_len
    ctx = FitContext(data=dctx.data, cases=dctx.cases, simulator=dctx.simulator, simulator_name=res.cfg.simulator,
                     device=res.device, seed=seed, cache_dir=dctx.cache_dir, max_path_len=dctx.max_path_len,
                     logger=_NullLogger(), progress=False)
    test = CaseTensors.from_cases(dctx.cases.test, dctx.data.n_items, res.device)
    trace: dict[str, list[tuple[int, float, float]]] = {"sft": [], "rl": []}

    def observer(stage: str):
        def on_epoch(epoch: int, valid_ioi: float, policy) -> None:
            trace[stage].append((epoch, valid_ioi, validation_ioi(policy, dctx.simulator, test, cfg)[0]))
        return on_epoch

    codes = policy_codes(cfg, dctx.data, dctx.cache_dir)
    # the random state of a cell (cell.py seeds, then sft._train_or_load_sft builds a policy before
    # it trains in a forked stream), so that the RL stage's dropout draws are the cell's own
    seed_everything(seed)
    build_policy(cfg, dctx.data.n_items, max_len, codes)
    with torch.random.fork_rng(devices=[]):  # as sft._train_or_load_sft
        torch.manual_seed(seed)
        ref = build_policy(cfg, dctx.data.n_items, max_len, codes).to(res.device)
        _fit(ref, ctx, cfg, max_len, on_epoch=observer("sft"))
    ref.eval()
    with torch.random.fork_rng(devices=[]):  # as rl.method.RLMethod.fit
        torch.manual_seed(seed)
        policy = build_policy(cfg, dctx.data.n_items, max_len, getattr(ref, "sem", None)).to(res.device)
    policy.load_state_dict(ref.state_dict())
    train_rl(policy, ref, ctx, cfg, res.registry.estimator(method), dctx.cases.train,
             dctx.cases.valid[: cfg.n_valid_cases], max_len, on_epoch=observer("rl"))
    return trace


def selections(trace: list[tuple[int, float, float]]) -> tuple[int, float, int, float]:
    """``(valid-selected epoch, its test IoI, test-selected epoch, best test IoI)``; ties: first."""
    v = max(trace, key=lambda r: r[1])
    t = max(trace, key=lambda r: r[2])
    return v[0], v[2], t[0], t[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.test_selection", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="movielens")
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--method", default="prorl", help="the RL estimator (default prorl)")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=str(default_cache_dir()))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res, dctx = prepare(args.dataset, args.data_dir, args.device, args.cache_dir, "quick")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    print(f"{args.dataset}: {len(dctx.cases.valid)} valid, {len(dctx.cases.test)} test cases; "
          f"{args.method}, {args.profile} profile; test IoI@1 of candidate 1 under {res.cfg.simulator}")
    print("| stage | seed | valid-selected epoch | its test IoI@1 | test-selected epoch | best test IoI@1 | gap |")
    print("|---|---|---|---|---|---|---|")
    gaps: dict[str, list[float]] = {"sft": [], "rl": []}
    for seed in seeds:
        trace = run_seed(res, dctx, args.method, args.profile, seed)
        for stage in ("sft", "rl"):
            ve, vt, te, tt = selections(trace[stage])
            gaps[stage].append(tt - vt)
            print(f"| {stage} | {seed} | {ve} | {vt:.3f} | {te} | {tt:.3f} | {tt - vt:+.3f} |", flush=True)
    for stage, g in gaps.items():
        t = torch.tensor(g, dtype=torch.float64)
        sd = f" ± {t.std().item():.3f}" if len(g) > 1 else ""
        print(f"{stage}: mean gap {t.mean().item():+.3f}{sd} over {len(g)} seed(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
