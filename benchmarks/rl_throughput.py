"""Benchmark: RL training throughput of ``prorl`` (sampled paths per second).

Usage (from the repository root)::

    python -m benchmarks.rl_throughput --device cpu --profile quick
    python -m benchmarks.rl_throughput --device cuda --profile paper --dataset prorl-json \\
        --data-dir ../shared/data/prorl-ml-1m --steps 30
    python -m benchmarks.rl_throughput --profile all          # both profiles, one after the other
    python -m benchmarks.rl_throughput --device cuda --compile off,on --autocast off,bf16   # the switches
    python -m benchmarks.rl_throughput --policy semantic-id --dataset prorl-json \
        --data-dir ../shared/data/prorl-ml-1m                  # the official architecture (ProRL's codes)

What is timed is the trainer's own step, :func:`prorlbench.rl.step.rl_step_stats`, exactly as
``prorlbench run`` calls it (the timed steps' logged values stay on the device and are read in one
transfer at the end, as training reads them every 16 steps): sample ``G`` paths for each of ``B`` training cases (KV-cached
decoding, all ``B * G`` rows at once), score every path with the training simulator (one
forward pass per path), normalise the rewards, the ``prorl`` estimator, the loss (policy and
frozen reference forward passes), backward, gradient clip and AdamW; every
``grad_var_every``-th step also measures the gradient variance (``M`` extra backward passes),
as in training. ``B``, ``G`` and every other RL setting come from the chosen ``RLConfig``
profile (``quick``: B=32, G=8; ``paper``: B=128, G=16). ``--policy`` picks the policy
(``item``, ``semantic-id``: the encoder-decoder over semantic-ID codes, with ``--decoding``
constrained or free; ``both``: one after the other); a semantic-ID path of ``m`` items costs
``4 m + 1`` decoder steps instead of ``m + 1``.
``--compile off,on`` and ``--autocast off,bf16`` time the ``compile_sampling`` and ``autocast``
switches (every combination of the listed values, one after the other; a compiled run's
warm-up steps include the compiler's first calls, tens of seconds).

Set-up, not timed: the dataset, the training simulator and the cases are built through the
normal registry and runner helpers (:func:`prorlbench.engine.runner.prepare_dataset`, so the
simulator comes from the cache when it was trained before). The simulator is trained with the
``--sim-profile`` profile (default ``quick``): its architecture, hence the cost of scoring, is
the same in both profiles, only its training budget differs. The policy is **randomly
initialised** (no SFT stage): a step costs the same whatever the weights, except that path
lengths (hence the work of a step) depend on the policy; the mean sampled path length is
printed next to the figures. The first ``--warmup`` steps are not timed; the reward
normaliser is then frozen, as it is from the second RL epoch on.

Printed per profile: sampled paths per second (``steps * B * G / seconds``), steps per
second, sampled paths per CPU-second of this process (a steadier figure than wall time on a
shared CPU machine; with ``--threads 1`` it is the single-core throughput), and peak memory:
on CUDA ``torch.cuda.max_memory_allocated()`` over the timed steps (after
``reset_peak_memory_stats``); on CPU the peak resident set size of the whole process
(``getrusage(RUSAGE_SELF).ru_maxrss``, which includes the set-up).
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import time

import torch

from prorlbench.config import build_config
from prorlbench.plugins import load_registry
from prorlbench.rl.config import RLConfig
from prorlbench.rl.estimators import COMPONENTS, RewardNormalizer
from prorlbench.rl.policy import CaseTensors
from prorlbench.rl.policies import build_policy, policy_codes
from prorlbench.rl.trainer import rl_step_stats
from prorlbench.rl.step import read_steps
from prorlbench.settings.runconfig import RunConfig, default_cache_dir
from prorlbench.engine.runner import prepare_dataset, resolve

PROFILES = ("quick", "paper")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prepare(dataset: str, data_dir: str, device: str, cache_dir: str, sim_profile: str,
            dataset_options: dict | None = None, case_options: dict | None = None,
            simulator: str = "sasrec"):
    """``(resolved run, dataset context)``: data, training simulator (cached) and cases."""
    registry = load_registry()
    cfg = RunConfig(methods=["prorl"], datasets=[dataset], profile=sim_profile, device=device,
                    data_dir=data_dir, cache_dir=cache_dir, progress=False, simulator=simulator)
    if dataset_options:
        cfg.plugin_tables["datasets"][dataset] = dict(dataset_options)
    if case_options:
        cfg.cases = dict(case_options)
    res = resolve(cfg, registry)
    return res, prepare_dataset(res, dataset, progress=False)


def bench_profile(res, dctx, profile: str, steps: int, warmup: int, seed: int = 0,
                  rl_options: dict | None = None) -> dict[str, float]:
    """Time ``steps`` calls of :func:`rl_step_stats` (after ``warmup`` untimed ones) at ``profile``."""
    device = res.device
    cfg = build_config(RLConfig, dict(rl_options or {}), profile=profile)
    estimator = res.registry.estimator("prorl")
    max_len = cfg.max_path_len or dctx.max_path_len
    torch.manual_seed(seed)
    codes = policy_codes(cfg, dctx.data, res.cfg.cache_dir)
    policy = build_policy(cfg, dctx.data.n_items, max_len, codes).to(device)
    ref = copy.deepcopy(policy).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed * 1_000_003 + 17)
    norm = RewardNormalizer(COMPONENTS)
    train = CaseTensors.from_cases(dctx.cases.train, dctx.data.n_items, device)
    if len(train) == 0:
        raise SystemExit(f"dataset {dctx.name} has no training cases")
    order = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(train), generator=order).to(device)
    b = min(cfg.batch_cases, len(train))
    n_batches = max(1, len(train) // b)

    def step(i: int):
        s = (i % n_batches) * b
        cases = train.index(perm[s : s + b])
        gv = bool(cfg.grad_var_every) and i % cfg.grad_var_every == 0
        return rl_step_stats(policy, ref, opt, dctx.simulator, cases, cfg, estimator, norm, max_len, gen, grad_var=gv)

    read_steps([step(i) for i in range(warmup)])
    norm.freeze()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0, c0 = time.perf_counter(), time.process_time()
    stats = [step(i) for i in range(warmup, warmup + steps)]  # queued; read once, as training reads them
    lens = [v["path_len"] for v in read_steps(stats)]
    _sync(device)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    paths = steps * b * cfg.samples_per_case
    mode = ("compiled" if cfg.compile_sampling else "eager") + (f", {cfg.autocast}" if cfg.autocast != "off" else "")
    out = {"profile": profile, "policy": cfg.policy if codes is None else f"semantic-id/{cfg.decoding}", "mode": mode,
           "steps": steps, "batch_cases": b, "samples_per_case": cfg.samples_per_case,
           "seconds": dt, "cpu_seconds": cpu, "paths_per_s": paths / dt, "paths_per_cpu_s": paths / cpu, "steps_per_s": steps / dt,
           "mean_path_len": sum(lens) / max(1, len(lens)), "n_items": dctx.data.n_items, "max_path_len": max_len}
    if device.type == "cuda":
        out["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["peak_mem_kind"] = "cuda max_memory_allocated"
    else:
        out["peak_mem_mib"] = rss_mib()
        out["peak_mem_kind"] = "process peak RSS"
    return out


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def report(r: dict[str, float]) -> str:
    return (f"[{r['profile']}, {r['policy']}] B={r['batch_cases']} G={r['samples_per_case']} ({r['mode']}; {r['n_items']} items, "
            f"max_path_len {r['max_path_len']}): {r['paths_per_s']:,.0f} sampled paths/s, "
            f"{1000 / r['steps_per_s']:.1f} ms per step, {r['steps_per_s']:.2f} steps/s over {r['steps']} steps "
            f"({r['seconds']:.2f} s), "
            f"{r['paths_per_cpu_s']:,.0f} paths per CPU-second, "
            f"mean path length {r['mean_path_len']:.2f}, peak memory {r['peak_mem_mib']:,.0f} MiB "
            f"({r['peak_mem_kind']})")


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ap.add_argument("--profile", default="quick", choices=[*PROFILES, "all"], help="RLConfig profile(s) to time")
    ap.add_argument("--dataset", default="synthetic", help="dataset plugin (synthetic, prorl-json, ...)")
    ap.add_argument("--data-dir", default="", help="raw data folder for datasets that need one")
    ap.add_argument("--steps", type=int, default=10, help="timed RL steps per profile")
    ap.add_argument("--warmup", type=int, default=2, help="untimed RL steps first")
    ap.add_argument("--sim-profile", default="quick", choices=PROFILES,
                    help="profile of the training simulator (its training budget only)")
    ap.add_argument("--simulator", default="sasrec", help="training simulator (the one that scores the paths)")
    ap.add_argument("--cache-dir", default="", help="simulator cache (default: the usual prorlbench cache)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--policy", default="item", choices=["item", "semantic-id", "both"],
                    help="RL policy: item ids, semantic-ID codes (the official architecture), or both")
    ap.add_argument("--decoding", default="constrained", choices=["constrained", "free"],
                    help="decoding of the semantic-ID policy")
    ap.add_argument("--compile", default="off", help="compile_sampling: off, on, or off,on (both, one after the other)")
    ap.add_argument("--autocast", default="off", help="autocast: off, bf16, or off,bf16")
    ap.add_argument("--tiny", action="store_true",
                    help="a very small synthetic world and policy (smoke test; not a benchmark)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    profiles = list(PROFILES) if args.profile == "all" else [args.profile]
    ds_opts = case_opts = rl_opts = None
    if args.tiny:
        ds_opts = {"n_users": 60, "n_items": 40}
        case_opts = {"n_history": 4, "max_path_len": 3, "min_target_rank": 5}
        rl_opts = {"d_model": 16, "n_layers": 1, "batch_cases": 4, "samples_per_case": 2, "sem_d_model": 16,
                   "sem_enc_layers": 1, "sem_dec_layers": 1, "sem_d_ff": 32, "n_codebooks": 2, "codebook_size": 4}
    cache_dir = args.cache_dir or str(default_cache_dir())
    t0 = time.perf_counter()
    res, dctx = prepare(args.dataset, args.data_dir, args.device, cache_dir, args.sim_profile, ds_opts, case_opts,
                        args.simulator)
    print(f"device: {describe_device(res.device)}; torch {torch.__version__}")
    print(f"set-up: dataset {args.dataset} ({dctx.data.n_items} items, {len(dctx.cases.train)} training cases), "
          f"simulator {res.cfg.simulator} ({args.sim_profile} profile, "
          f"{'trained' if dctx.simulator_info.trained else 'from cache'}) in {time.perf_counter() - t0:.1f} s; "
          f"policy randomly initialised (no SFT)", flush=True)
    results = []
    policies = ["item", "semantic-id"] if args.policy == "both" else [args.policy]
    compiles = [{"off": False, "on": True}[c] for c in _choices(ap, "--compile", args.compile, ("off", "on"))]
    casts = _choices(ap, "--autocast", args.autocast, ("off", "bf16"))
    for pol in policies:
        for comp in compiles:
            for cast in casts:
                opts = {**(rl_opts or {}), "policy": pol, "decoding": args.decoding, "compile_sampling": comp,
                        "autocast": cast}
                for prof in profiles:
                    r = bench_profile(res, dctx, prof, args.steps, args.warmup, args.seed, opts)
                    print(report(r), flush=True)
                    results.append(r)
    return results


def _choices(ap: argparse.ArgumentParser, flag: str, value: str, allowed: tuple[str, ...]) -> list[str]:
    out = [v.strip() for v in value.split(",") if v.strip()]
    if not out or set(out) - set(allowed):
        ap.error(f"{flag}: expected a comma-separated list of {', '.join(allowed)}, got {value!r}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
