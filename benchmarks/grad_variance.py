"""A fair gradient-variance test of the advantage estimators: same parameters, same rollouts.

    python -m benchmarks.grad_variance --dataset synthetic
    python -m benchmarks.grad_variance --dataset movielens --data-dir ../shared/data/ml-100k

The policy is held fixed at the dataset's SFT checkpoint (seed 0, ``quick`` profile, the one
``prorlbench run`` trains and caches). A reward normaliser is fitted on ``--norm-batches``
rollout batches of that policy and frozen. Then ``R = --replicates`` independent rollout batches
are drawn (``B`` random training cases x ``G`` samples each, the profile's sizes), and on EACH
batch every registered estimator's policy gradient (the PG term only, no KL) is computed from the
SAME sampled paths and rewards. A large-batch reference gradient per estimator is the mean over
``--ref-batches`` further independent batches.

Per estimator, with bootstrap 95 % intervals over the R replicates:

* ``var``: the mean per-coordinate variance of the batch gradient;
* ``rel_var``: the total variance (sum over coordinates) over the squared norm of the reference
  gradient (scale-free: estimators weigh log-probabilities on different scales);
* ``cos``: the mean cosine between a batch gradient and the reference gradient.

And paired (same replicates resampled together): the ratio of ``rel_var`` of ``prorl`` to that of
``prorl-no-positional-baseline`` (the paper's claim is that PSAE lowers the variance relative to a
path-level baseline). The in-training ``grad_var`` of ``train_log.csv`` follows each estimator
along its own trajectory and cannot make this comparison.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from prorlbench.api import FitContext
from prorlbench.config import build_config
from prorlbench.rl.config import RLConfig
from prorlbench.rl.diagnostics import flat_grad
from prorlbench.rl.normalize import make_normalizer
from prorlbench.rl.policy import CaseTensors
from prorlbench.rl.sft import train_sft
from prorlbench.rl.trainer import advantages, pg_loss, rollout
from prorlbench.settings.runconfig import default_cache_dir

from .rl_throughput import prepare


class _NullLogger:
    def log(self, step: int, **values: float) -> None:
        pass


def bootstrap(stat, r: int, n_boot: int, gen: torch.Generator) -> tuple[float, float]:
    """95 % basic bootstrap interval ``[2 s - q_97.5, 2 s - q_2.5]`` of ``stat(weights [R])`` over
    multinomial resamples of the R replicates (the basic interval corrects the downward bias that
    resampling with repeats gives a variance)."""
    vals = []
    for _ in range(n_boot):
        idx = torch.randint(r, (r,), generator=gen)
        vals.append(stat(torch.bincount(idx, minlength=r).double()))
    v = torch.tensor(vals, dtype=torch.float64)
    s = stat(torch.ones(r, dtype=torch.float64))
    return 2 * s - float(v.nanquantile(0.975)), 2 * s - float(v.nanquantile(0.025))


def summarise(grads: torch.Tensor, ref: torch.Tensor, n_boot: int, gen: torch.Generator) -> dict[str, tuple]:
    """``grads [R, D]`` (float64), ``ref [D]``: var, rel_var, cos with bootstrap intervals."""
    r, d = grads.shape
    gram = grads @ grads.T  # [R, R]: every resampled statistic below is a function of it
    sq = gram.diag()
    ref_sq = float(ref @ ref)
    cos = (grads @ ref) / (sq.sqrt() * ref_sq ** 0.5).clamp(min=1e-300)

    def total_var(w: torch.Tensor) -> float:
        n = w.sum()
        mean_sq = float(w @ gram @ w) / float(n * n)
        return (float(w @ sq) / float(n) - mean_sq) * float(n) / float(n - 1)

    def out(f):
        return f(torch.ones(r, dtype=torch.float64)), *bootstrap(f, r, n_boot, gen)

    return {"var": out(lambda w: total_var(w) / d), "rel_var": out(lambda w: total_var(w) / ref_sq),
            "cos": out(lambda w: float(w @ cos) / float(w.sum())), "_gram": gram, "_ref_sq": ref_sq}


def main(argv: list[str] | None = None) -> dict[str, dict[str, tuple]]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.grad_variance", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic", help="dataset plugin name (default: synthetic)")
    ap.add_argument("--data-dir", default="", help="raw data folder for datasets that need one")
    ap.add_argument("--profile", default="quick", choices=["quick", "paper"], help="RL sizes B and G (default quick)")
    ap.add_argument("--replicates", type=int, default=32, help="R independent rollout batches (>= 2; default 32)")
    ap.add_argument("--ref-batches", type=int, default=64, help="batches averaged into the reference gradient")
    ap.add_argument("--norm-batches", type=int, default=16, help="batches that fit the frozen normaliser")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="SFT seed and rollout seed (default 0)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cache-dir", default="", help="simulator / SFT cache (default: the prorlbench cache)")
    ap.add_argument("--simulator", default="sasrec", help="training simulator (default sasrec)")
    ap.add_argument("--tiny", action="store_true", help="a very small world and policy (smoke test; not a measurement)")
    args = ap.parse_args(argv)
    if args.replicates < 2:
        ap.error("--replicates must be >= 2")
    t0 = time.perf_counter()
    options = {"data_dir": args.data_dir} if args.data_dir else None
    case_opts, rl_opts = None, {}
    if args.tiny:
        options = {"n_users": 60, "n_items": 40}
        case_opts = {"n_history": 4, "max_path_len": 3, "min_target_rank": 5}
        rl_opts = {"d_model": 16, "n_layers": 1, "batch_cases": 4, "samples_per_case": 2, "sft_epochs": 1}
    res, dctx = prepare(args.dataset, args.data_dir, args.device, args.cache_dir or str(default_cache_dir()),
                        "quick", dataset_options=options, case_options=case_opts, simulator=args.simulator)
    cfg = build_config(RLConfig, rl_opts, profile=args.profile)
    max_len = cfg.max_path_len or dctx.max_path_len
    ctx = FitContext(data=dctx.data, cases=dctx.cases, simulator=dctx.simulator, simulator_name=res.cfg.simulator,
                     device=res.device, seed=args.seed, cache_dir=dctx.cache_dir, max_path_len=dctx.max_path_len,
                     logger=_NullLogger(), progress=False)
    policy, _ = train_sft(ctx, cfg, max_len)
    for p in policy.parameters():
        p.requires_grad_(True)
    estimators = [res.registry.estimator(n) for n in res.registry.names("estimators")]
    train = CaseTensors.from_cases(dctx.cases.train, dctx.data.n_items, res.device)
    gen = torch.Generator(device=res.device).manual_seed(args.seed * 1_000_003 + 99)
    noise_gen = torch.Generator(device=res.device).manual_seed(args.seed + 5)
    pick = torch.Generator().manual_seed(args.seed + 1)
    b = min(cfg.batch_cases, len(train))

    def batch() -> CaseTensors:
        return train.index(torch.randperm(len(train), generator=pick)[:b].to(res.device))

    norm = make_normalizer(cfg.centering, max_len)
    for _ in range(args.norm_batches):
        rollout(policy, dctx.simulator, batch(), cfg, estimators[0], norm, max_len, gen)
    norm.freeze()

    def grads_of_one_batch() -> dict[str, torch.Tensor]:
        cases = batch()
        out = {}
        base = None
        for est in estimators:  # the same paths and raw rewards for every estimator
            if base is None:
                ro = base = rollout(policy, dctx.simulator, cases, cfg, est, norm, max_len, gen, noise_gen)
            else:
                ro = advantages(base.cases, base.rows, base.paths, base.lengths, base.stopped, base.raw,
                                base.valid, cfg, est, norm, max_len, noise_gen)
            loss, _ = pg_loss(policy, ro)
            out[est.name] = flat_grad(policy, loss).double()
        return out

    reps = [grads_of_one_batch() for _ in range(args.replicates)]
    ref = {e.name: torch.zeros_like(reps[0][e.name]) for e in estimators}
    for _ in range(args.ref_batches):
        for k, g in grads_of_one_batch().items():
            ref[k] += g / args.ref_batches
    boot = torch.Generator().manual_seed(123)
    rows, stats = [], {}
    for e in estimators:
        g = torch.stack([r[e.name] for r in reps])
        s = stats[e.name] = summarise(g, ref[e.name], args.bootstrap, boot)
        rows.append((e.name, *s["var"], *s["rel_var"], *s["cos"]))
    print(f"# grad_variance: {args.dataset}, {dctx.data.n_items} items, SFT seed {args.seed}, "
          f"B={b} cases x G={cfg.samples_per_case}, R={args.replicates} replicates, "
          f"reference {args.ref_batches} batches, {args.bootstrap} bootstrap resamples")
    print()
    print("| estimator | var per coordinate [95% CI] | variance / ‖reference‖² [95% CI] | cosine to reference [95% CI] |")
    print("|---|---|---|---|")
    for name, v, vl, vh, rv, rl, rh, c, cl, ch in rows:
        print(f"| `{name}` | {v:.3g} [{vl:.3g}, {vh:.3g}] | {rv:.3g} [{rl:.3g}, {rh:.3g}] | {c:.3f} [{cl:.3f}, {ch:.3f}] |")
    a, c = "prorl", "prorl-no-positional-baseline"
    if a in stats and c in stats:
        ga, gc = stats[a]["_gram"], stats[c]["_gram"]

        def ratio(w: torch.Tensor) -> float:
            def tv(gram):
                n = w.sum()
                return float(w @ gram.diag()) / float(n) - float(w @ gram @ w) / float(n * n)
            den = tv(gc) / stats[c]["_ref_sq"]
            return (tv(ga) / stats[a]["_ref_sq"]) / den if den > 0 else float("nan")

        lo, hi = bootstrap(ratio, args.replicates, args.bootstrap, boot)
        print()
        print(f"paired: rel_var({a}) / rel_var({c}) = {ratio(torch.ones(args.replicates, dtype=torch.float64)):.3f} "
              f"[95% CI {lo:.3f}, {hi:.3f}] (< 1: PSAE lowers the relative variance)")
    print(f"\n{time.perf_counter() - t0:.0f} s wall")
    return {name: {k: v for k, v in st.items() if not k.startswith("_")} for name, st in stats.items()}


if __name__ == "__main__":
    main()
    sys.exit(0)
