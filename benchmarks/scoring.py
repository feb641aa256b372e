"""Benchmark: one-pass path scoring against its floor and against the official two-pass scheme.

Usage (from the repository root)::

    python -m benchmarks.scoring --device cpu
    python -m benchmarks.scoring --device cpu --items 3700,30000,100000 --cases 128 --samples 16
    python -m benchmarks.scoring --device cuda --cases 128 --samples 16 --steps 10 --items 3700

A randomly initialised SASRec (hidden 64, max_seq_len 50, RecBole layout) scores a batch of
``cases x samples`` random paths of ``steps`` items after histories of ``--history`` items (a
case's paths share its history and target), the RL training workload. For each catalog size in ``--items`` (a comma-separated list) three things
are timed on the same weights, batch and device (median of ``--repeat`` runs after a warm-up):

- **one-pass**: :func:`prorlbench.seq.scoring.score_paths`, one forward pass per path; on CPU the
  ``samples`` paths of a case share their history's per-token work (SASRec's
  ``encode_shared_prefix``, bit for bit the same values); it is also timed with every row
  encoded whole;
- **floor**: the bare full-catalog work that any scorer of this batch must do, with no encoder:
  for every prefix state (``paths x (steps + 1)`` of them) one ``[states, d] x [d, n_items]``
  matmul, one ``logsumexp`` and one rank count of the target, in the same row chunks;
- **two-pass**: a vectorised re-implementation of ProRL's scheme (two full passes and two
  full softmaxes per step, :mod:`benchmarks.twopass`); ``--two-pass-paths N`` times it on the
  first N paths and scales the time to the batch, since it is far slower.

It prints the per-step agreement of one-pass and two-pass, path-steps per second, the ratios
one-pass / floor and two-pass / one-pass, and the process's peak memory after each size (sizes
run in increasing order, so the last figure is the peak of the largest).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from prorlbench.seq.scoring import default_chunk_rows, score_paths
from prorlbench_plugins.simulators.sasrec import SASRec, SASRecConfig

from .twopass import twopass_step_scores


def make_batch(n_items: int, cases: int, samples: int, history: int, steps: int, seed: int, device):
    """``cases x samples`` random paths; a case's ``samples`` rows are adjacent and share its
    history and target, as an RL step's ``G`` samples (and a test case's ``K`` candidates) do."""
    g = torch.Generator().manual_seed(seed)
    n_paths = cases * samples
    hist = torch.randint(0, n_items, (cases, history), generator=g).repeat_interleave(samples, 0)
    hist_len = torch.full((n_paths,), history, dtype=torch.long)
    targets = torch.randint(0, n_items, (cases,), generator=g).repeat_interleave(samples, 0)
    paths = torch.randint(0, n_items, (n_paths, steps), generator=g)
    path_len = torch.full((n_paths,), steps, dtype=torch.long)
    return [t.to(device) for t in (hist, hist_len, targets, paths, path_len)]


def one_pass_step_scores(model, hist, hist_len, targets, paths, path_len) -> dict[str, torch.Tensor]:
    sc = score_paths(model, hist=hist, hist_len=hist_len, targets=targets, path_tensor=paths, path_len=path_len)
    return {"ioi": sc.log_p[:, 1:] - sc.log_p[:, :-1], "ior": sc.rank[:, :-1] - sc.rank[:, 1:], "ctr": sc.accept}


@torch.no_grad()
def floor_work(item_weights: torch.Tensor, states: torch.Tensor, targets: torch.Tensor,
               chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The floor: per prefix state one full-catalog matmul, one logsumexp, one rank count.

    ``item_weights [n_items, d]``, ``states [R, d]``, ``targets [R]``; returns ``log p(T)`` and
    ``rank(T)`` per row, computed ``chunk`` rows at a time (the scorer's own chunking).
    """
    wt = item_weights.t()
    logp = torch.empty(states.shape[0], device=states.device)
    rank = torch.empty(states.shape[0], device=states.device)
    for s in range(0, states.shape[0], chunk):
        lg = states[s : s + chunk] @ wt
        tl = lg.gather(1, targets[s : s + chunk, None])
        rank[s : s + chunk] = (lg > tl).sum(1)
        logp[s : s + chunk] = tl.squeeze(1) - torch.logsumexp(lg, 1)
    return logp, rank


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeat: int, warm_up: bool = True) -> float:
    if warm_up:
        fn()
        _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_mem_mib(device: torch.device) -> float:
    """Peak memory so far: torch-allocated on CUDA, the process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(n_items: int, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """Agreement and timings of one-pass, floor and two-pass for one catalog size."""
    torch.manual_seed(args.seed)
    model = SASRec(SASRecConfig(), n_items).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    n_paths = args.cases * args.samples
    batch = make_batch(n_items, args.cases, args.samples, args.history, args.steps, args.seed, device)

    n_two = min(args.two_pass_paths or n_paths, n_paths)
    two_batch = [t[:n_two] for t in batch]
    one = one_pass_step_scores(model, *batch)
    two = twopass_step_scores(model, *two_batch)
    diff = {k: float((one[k][:n_two] - two[k]).abs().max()) for k in one}
    rank_mismatch = float((one["ior"][:n_two] != two["ior"]).float().mean())
    del two

    g = torch.Generator().manual_seed(args.seed + 1)
    weights = model.item_embeddings().contiguous()  # the same [n_items, d] the scorer multiplies by
    states = torch.randn(n_paths * (args.steps + 1), weights.shape[1], generator=g).to(device)
    f_targets = batch[2].repeat_interleave(args.steps + 1)
    chunk = default_chunk_rows(n_items, device)

    t_one = timed(lambda: one_pass_step_scores(model, *batch), device, args.repeat)
    model.encode_shared_prefix = None  # one-pass with every row encoded whole (no shared history)
    t_whole = timed(lambda: one_pass_step_scores(model, *batch), device, args.repeat)
    del model.encode_shared_prefix
    t_floor = timed(lambda: floor_work(weights, states, f_targets, chunk), device, args.repeat)
    # the agreement run above was the two-pass warm-up; it is timed on its n_two paths and
    # scaled to the whole batch (its work is linear in the rows, which it processes in chunks)
    t_two = timed(lambda: twopass_step_scores(model, *two_batch), device, args.repeat, warm_up=False)
    t_two *= n_paths / n_two
    steps = n_paths * args.steps
    return {"items": n_items, "one_pass_steps_per_s": steps / t_one, "floor_steps_per_s": steps / t_floor,
            "two_pass_steps_per_s": steps / t_two, "one_over_floor": t_one / t_floor, "speedup": t_two / t_one,
            "two_pass_paths": n_two,
            "t_one_s": t_one, "t_floor_s": t_floor, "t_two_s": t_two, "t_whole_s": t_whole,
            "whole_steps_per_s": steps / t_whole, "whole_over_floor": t_whole / t_floor,
            **{f"maxdiff_{k}": v for k, v in diff.items()}, "ior_mismatch_share": rank_mismatch,
            "peak_mem_mib": peak_mem_mib(device)}


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    """Run the benchmark; one result dict per catalog size of ``--items``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--cases", type=int, default=128, help="cases per batch")
    ap.add_argument("--samples", type=int, default=16, help="paths per case")
    ap.add_argument("--steps", type=int, default=10, help="items per path")
    ap.add_argument("--history", type=int, default=10, help="history items per path")
    ap.add_argument("--items", default="3700", help="catalog sizes, comma-separated (e.g. 3700,30000,100000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per scheme (median reported)")
    ap.add_argument("--two-pass-paths", type=int, default=0,
                    help="time the (slow) two-pass reference on the first N paths only and scale its time "
                         "to the whole batch (0: all paths; 256 keeps 100k items within minutes on a CPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = ap.parse_args(argv)
    try:
        sizes = sorted(int(x) for x in args.items.split(",") if x.strip())
    except ValueError:
        ap.error(f"--items: expected comma-separated integers, got {args.items!r}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}")
    print(f"batch: {args.cases} cases x {args.samples} paths x {args.steps} steps, history {args.history}, "
          "SASRec d=64 max_seq_len=50 (random init)")
    rows = []
    for n_items in sizes:
        r = measure(n_items, args, device)
        rows.append(r)
        print(f"-- {n_items:,} items --")
        print(f"agreement (max |one-pass - two-pass| per step): ioi {r['maxdiff_ioi']:.2e}  ior {r['maxdiff_ior']:.2e}  "
              f"ctr {r['maxdiff_ctr']:.2e}  (ior differs on {100 * r['ior_mismatch_share']:.3f}% of steps)")
        for label, key, t in (("one-pass", "one_pass", r["t_one_s"]), ("floor   ", "floor", r["t_floor_s"]),
                              ("two-pass", "two_pass", r["t_two_s"]),
                              ("one-pass, rows encoded whole", "whole", r["t_whole_s"])):
            print(f"{label} : {t * 1e3:9.1f} ms  {r[key + '_steps_per_s']:12,.0f} path-steps/s")
        print(f"one-pass / floor : {r['one_over_floor']:.2f}x   two-pass / one-pass (speed-up): {r['speedup']:.1f}x   "
              f"peak memory so far: {r['peak_mem_mib']:,.0f} MiB")
        print(f"one-pass with every row encoded whole / floor: {r['whole_over_floor']:.2f}x")
    return rows


if __name__ == "__main__":
    main()
