"""Benchmark: generation throughput of the RL family's policy (``sft``'s ``generate``), K candidates
per case, with today's sampler against the exponential race it replaced.

Usage (from the repository root)::

    python -m benchmarks.generate --dataset prorl-json --data-dir ../shared/data/prorl-ml-1m
    python -m benchmarks.generate --dataset prorl-json --data-dir ../shared/data/prorl-ml-1m --policy semantic-id
    python -m benchmarks.generate --tiny --repeat 1          # a small synthetic world (smoke test)

What is timed is :func:`prorlbench.rl.decode.candidates`, the function ``generate()`` calls for
every batch of 256 test cases: candidate 1 by the ``decode`` rule, then ``K - 1`` samples, all
``256 * K`` rows at once with the KV cache. ``--policy`` picks the item policy (one action per
catalog item, the default), the semantic-ID policy (one action per code token of its codebook:
the official architecture; each item is several tokens) or both. Two samplers run side by side in one process,
alternating, on the same policy, cases and seed:

- **one draw per row** (today's :func:`prorlbench.rl.decode.draw`): one uniform number per row
  and step, inverse of the cumulative distribution;
- **exponential race** (the sampler before, kept here as the reference): one exponential number
  per catalog item, per row and per step, then ``argmax(p / e)``, as ``torch.multinomial`` draws.

Both draw from the same distribution (``tests/rl`` checks the new one with a chi-square test),
on different random streams, so the sampled paths differ. The policy is randomly initialised
(no SFT): a step costs the same whatever the weights, but path lengths do not, so the mean
sampled length is printed. Printed: paths per second, paths per CPU-second of this process
(steadier on a shared machine), the speed-up, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from prorlbench.config import build_config
from prorlbench.rl import decode, semantic_decoding
from prorlbench.rl.config import RLConfig
from prorlbench.rl.policies import build_policy, policy_codes
from prorlbench.rl.tensors import CaseTensors
from prorlbench.settings.runconfig import default_cache_dir

from .rl_throughput import prepare


def race_draw(logits: torch.Tensor, generator: torch.Generator | None, top_k: int = 0,
              probs: torch.Tensor | None = None) -> torch.Tensor:
    """The reference: the exponential race over the whole catalog (one random number per action).
    It computes its own softmax, as the sampler before did (``probs``, the decoding loop's shared
    one, is ignored)."""
    idx = None
    if 0 < top_k < logits.shape[1]:
        logits, idx = logits.topk(top_k, dim=-1)
    probs = torch.softmax(logits, -1)
    race = torch.empty_like(probs).exponential_(1, generator=generator)
    pick = (probs / race).argmax(-1)
    return pick if idx is None else idx.gather(1, pick[:, None]).squeeze(1)


def run_generation(policy, cases: CaseTensors, k: int, cfg: RLConfig, seed: int, batch: int
                   ) -> tuple[int, float]:
    """Generate ``k`` candidates for every case, ``batch`` cases at a time; ``(paths, mean length)``."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    n, total_len = 0, 0.0
    for s in range(0, len(cases), batch):
        part = cases.index(torch.arange(s, min(s + batch, len(cases))))
        _, lengths = decode.candidates(policy, part.hist_left, part.target, k, cfg, gen)
        n += lengths.numel()
        total_len += float(lengths.float().sum())
    return n, total_len / max(n, 1)


def timed(fn) -> tuple[float, float, tuple[int, float]]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic", help="dataset whose test cases are generated for")
    ap.add_argument("--data-dir", default="", help="its data folder (prorl-json: ../shared/data/prorl-ml-1m)")
    ap.add_argument("--cache-dir", default="", help="simulator cache (the set-up trains one if absent)")
    ap.add_argument("--k", type=int, default=10, help="candidates per case")
    ap.add_argument("--profile", default="quick", help="RLConfig profile of the policy and decoding")
    ap.add_argument("--cases", type=int, default=0, help="test cases to generate for (0: all)")
    ap.add_argument("--batch", type=int, default=256, help="cases per generate() batch, as generate() uses")
    ap.add_argument("--repeat", type=int, default=2, help="alternating timed runs of each sampler")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="item", choices=["item", "semantic-id", "both"],
                    help="the item policy, the semantic-ID policy (its codes: the dataset's, else built), or both")
    ap.add_argument("--tiny", action="store_true", help="a small synthetic world (smoke test)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cache_dir = args.cache_dir or str(default_cache_dir())
    dataset_options = {"n_users": 120, "n_items": 60} if args.tiny else None
    _, dctx = prepare(args.dataset, args.data_dir, "cpu", cache_dir,
                      "quick", dataset_options=dataset_options,
                      case_options={"max_path_len": 4} if args.tiny else None,
                      simulator="oracle" if args.tiny else "sasrec")
    test = list(dctx.cases.test)[: args.cases or None]
    cases = CaseTensors.from_cases(test, dctx.data.n_items, "cpu")
    print(f"device: cpu ({torch.get_num_threads()} threads); torch {torch.__version__}")
    results: dict[str, float] = {}
    for kind in (["item", "semantic-id"] if args.policy == "both" else [args.policy]):
        tiny = {"sem_d_model": 16, "sem_enc_layers": 1, "sem_dec_layers": 1, "sem_d_ff": 32, "n_codebooks": 2,
                "codebook_size": 4} if args.tiny and kind == "semantic-id" else {}
        cfg = build_config(RLConfig, {"policy": kind, **tiny}, profile=args.profile)
        res = bench_policy(cfg, dctx, cache_dir, cases, args)
        results.update({f"{kind}_{key}": v for key, v in res.items()} if args.policy == "both" else res)
    return results


def bench_policy(cfg: RLConfig, dctx, cache_dir: str, cases: CaseTensors, args: argparse.Namespace
                 ) -> dict[str, float]:
    """Time both samplers on one (randomly initialised) policy; print and return the figures."""
    max_len = cfg.max_path_len or dctx.max_path_len
    torch.manual_seed(args.seed)
    codes = policy_codes(cfg, dctx.data, cache_dir)
    policy = build_policy(cfg, dctx.data.n_items, max_len, codes).eval()
    samplers = {"one draw per row": decode.draw, "exponential race": race_draw}
    wall: dict[str, list[float]] = {n: [] for n in samplers}
    cpu: dict[str, list[float]] = {n: [] for n in samplers}
    info: dict[str, tuple[int, float]] = {}
    # both policies' decoding loops draw through these two names
    original = decode.draw
    try:
        with torch.no_grad():
            for _ in range(args.repeat):
                for name, fn in samplers.items():
                    decode.draw = semantic_decoding.draw = fn
                    w, c, info[name] = timed(lambda: run_generation(policy, cases, args.k, cfg, args.seed, args.batch))
                    wall[name].append(w)
                    cpu[name].append(c)
    finally:
        decode.draw = semantic_decoding.draw = original
    kind = "item" if codes is None else f"semantic-id ({codes.codes.shape[1]} codes per item, {cfg.decoding} decoding)"
    print(f"dataset {dctx.name}: {len(cases):,} test cases x K={args.k}, {dctx.data.n_items:,} items, "
          f"max_path_len {max_len}, decode {cfg.decode!r}, top-k {cfg.sample_top_k}; {kind} policy, randomly initialised")
    res: dict[str, float] = {"cases": len(cases), "k": args.k, "n_items": dctx.data.n_items}
    for name in samplers:
        n, mean_len = info[name]
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        key = "new" if name == "one draw per row" else "race"
        res.update({f"{key}_paths_per_s": n / w, f"{key}_paths_per_cpu_s": n / c, f"{key}_mean_len": mean_len})
        print(f"{name:17s}: {n / w:10,.0f} paths/s  {n / c:10,.0f} paths per CPU-second  "
              f"(median of {len(wall[name])}; mean path length {mean_len:.2f})")
    res["speedup_wall"] = res["new_paths_per_s"] / res["race_paths_per_s"]
    res["speedup_cpu"] = res["new_paths_per_cpu_s"] / res["race_paths_per_cpu_s"]
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"speed-up: {res['speedup_wall']:.2f}x wall, {res['speedup_cpu']:.2f}x per CPU-second; "
          f"peak RSS {res['peak_rss_mib']:,.0f} MiB")
    return res


if __name__ == "__main__":
    main()
