"""Benchmark: one-pass path scoring vs the official two-passes-per-step scheme.

Usage (from the repository root)::

    python -m benchmarks.scoring --device cpu
    python -m benchmarks.scoring --device cuda --cases 128 --samples 16 --steps 10 --items 3700

A randomly initialised SASRec (hidden 64, max_seq_len 50, RecBole layout) scores a batch of
``cases x samples`` random paths of ``steps`` items after histories of ``--history`` items, the
RL training workload of SPEC section 5. Both schemes use the same weights, batch and device;
the per-step IoI / IoR / CTR of both are compared, then each is timed (median of ``--repeat``
runs after a warm-up) and path-steps per second are printed with the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from prorlbench.scoring import score_paths
from prorlbench_plugins.simulators.sasrec import SASRec, SASRecConfig

from .twopass import twopass_step_scores


def make_batch(n_items: int, n_paths: int, history: int, steps: int, seed: int, device):
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(0, n_items, (n_paths, history), generator=g)
    hist_len = torch.full((n_paths,), history, dtype=torch.long)
    targets = torch.randint(0, n_items, (n_paths,), generator=g)
    paths = torch.randint(0, n_items, (n_paths, steps), generator=g)
    path_len = torch.full((n_paths,), steps, dtype=torch.long)
    return [t.to(device) for t in (hist, hist_len, targets, paths, path_len)]


def one_pass_step_scores(model, hist, hist_len, targets, paths, path_len) -> dict[str, torch.Tensor]:
    sc = score_paths(model, hist=hist, hist_len=hist_len, targets=targets, path_tensor=paths, path_len=path_len)
    return {"ioi": sc.log_p[:, 1:] - sc.log_p[:, :-1], "ior": sc.rank[:, :-1] - sc.rank[:, 1:], "ctr": sc.accept}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeat: int) -> float:
    fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", type=int, default=128)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--history", type=int, default=10)
    ap.add_argument("--items", type=int, default=3700)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = SASRec(SASRecConfig(), args.items).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    n_paths = args.cases * args.samples
    batch = make_batch(args.items, n_paths, args.history, args.steps, args.seed, device)

    one = one_pass_step_scores(model, *batch)
    two = twopass_step_scores(model, *batch)
    diff = {k: float((one[k] - two[k]).abs().max()) for k in one}
    rank_mismatch = float((one["ior"] != two["ior"]).float().mean())

    t_one = timed(lambda: one_pass_step_scores(model, *batch), device, args.repeat)
    t_two = timed(lambda: twopass_step_scores(model, *batch), device, args.repeat)
    steps = n_paths * args.steps
    res = {"one_pass_steps_per_s": steps / t_one, "two_pass_steps_per_s": steps / t_two,
           "speedup": t_two / t_one, "t_one_s": t_one, "t_two_s": t_two, **{f"maxdiff_{k}": v for k, v in diff.items()},
           "ior_mismatch_share": rank_mismatch}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}")
    print(f"batch: {args.cases} cases x {args.samples} paths x {args.steps} steps, history {args.history}, "
          f"{args.items} items, SASRec d=64 max_seq_len=50 (random init)")
    print(f"agreement (max |one-pass - two-pass| per step): ioi {diff['ioi']:.2e}  ior {diff['ior']:.2e}  "
          f"ctr {diff['ctr']:.2e}  (ior differs on {100 * rank_mismatch:.3f}% of steps)")
    print(f"one-pass : {t_one * 1e3:9.1f} ms  {res['one_pass_steps_per_s']:12,.0f} path-steps/s")
    print(f"two-pass : {t_two * 1e3:9.1f} ms  {res['two_pass_steps_per_s']:12,.0f} path-steps/s")
    print(f"speed-up : {res['speedup']:.1f}x")
    return res


if __name__ == "__main__":
    main()
