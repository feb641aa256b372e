"""The comparisons of the ProRL study (docs/findings.md), from a run folder of
``experiments/prorl_study.toml`` (complete or still running).

    python -m prorlbench.study.claims results/prorl-study [--out results/prorl-study/comparisons.md] [--plot]

For every claim (a)-(e) of the paper it lists the paired comparisons that test it, per dataset and
evaluating simulator, at K = 1 (the official @1):

* ``Δ`` = mean over test cases of (A − B), each case's value first averaged over the seeds both
  methods have, with a bootstrap 95 % interval (2,000 resamples of the cases, seeded);
* ``p``: two-sided Wilcoxon signed-rank test on those per-case differences; ``p (Holm)``: Holm's
  step-down correction over every comparison of the same dataset in the file (one family per
  dataset, all claims and evaluators together), so a ``p (Holm)`` below 0.05 holds with all of a
  dataset's rows read at once, and adding a dataset does not change another's;
* ``seeds``: in how many seeds the per-seed mean difference has the sign of ``Δ``.

The training dynamics (sampled path length over the first and the last RL steps, and the raw
validation objective) come from the cells' training logs. Comparisons whose methods have no
finished cell yet are left out, and the header says how many cells there were. ``--plot`` also
writes ``RUN/claims_dynamics.png``: the training curves of the methods the claims compare (the
placebo ``noise-pg`` in black), mean over seeds, one row per dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

BASELINES = ("random", "pop", "rec2inf", "ipg", "irn", "shortest-path", "sft")
"""The PRS baselines of claim (d) (``sft+greedy``, SFT with the official decode, is compared in (e))."""
RL = ("prorl", "prorl-no-centering", "prorl-no-positional-baseline", "naive-pg", "grpo", "rloo")
CONTROL = "noise-pg"
METRICS = ("ioi", "ior", "ctr", "coherence", "len", "ioi-lift", "ior-lift")
SHOW = {"ioi": ("IoI", 3), "ior": ("IoR", 1), "ctr": ("CTR", 3), "coherence": ("Coherence", 3),
        "len": ("Len", 2), "ioi-lift": ("IoI-lift", 3), "ior-lift": ("IoR-lift", 1)}


def claims(methods: list[str]) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """``(claim id, title, [(A, B, metric), ...])`` for the methods a run has."""
    rl_all = [m for m in methods if m in RL or m.startswith("prorl+")]
    rl_item = [m for m in rl_all if not m.endswith("+semid")]
    out = [
        ("a", "naive policy gradient takes a length shortcut",
         [("naive-pg", "sft", m) for m in ("len", "ioi", "ioi-lift")]
         + [("naive-pg", CONTROL, m) for m in ("len", "ioi-lift")]),
        ("b", "Stepwise Reward Centering removes the shortcut",
         [(a, b, m) for a, b in (("prorl", "naive-pg"), ("prorl", "prorl-no-centering"),
                                 ("prorl+center-position", "prorl"))
          for m in ("len", "ioi", "ioi-lift")]),
        ("c", "Position-Specific Advantage Estimation (the test metrics; the variance is "
              "benchmarks.grad_variance's)",
         [("prorl", "prorl-no-positional-baseline", m) for m in ("ioi", "ioi-lift", "ctr")]),
        ("d", "ProRL beats the PRS baselines",
         [("prorl", b, m) for b in BASELINES for m in ("ioi", "ctr", "ioi-lift")]),
        ("e", "RL fine-tuning improves on its SFT start, and on the placebo",
         [(r, "sft", m) for r in rl_item for m in ("ioi", "ioi-lift")]
         + [(r, CONTROL, m) for r in rl_item for m in ("ioi", "ioi-lift")]
         + [(r, "sft+greedy", m) for r in ("prorl+greedy", "prorl+official-protocol")
            for m in ("ioi", "ioi-lift", "len")]
         + [("prorl+semid", "sft+semid", m) for m in ("ioi", "ioi-lift", "ctr")]
         + [("prorl+semid", CONTROL, m) for m in ("ioi", "ioi-lift")]
         + [("prorl+semid", "noise-pg+semid", m) for m in ("ioi", "ioi-lift")]),
    ]
    return [(c, t, [x for x in comps if x[0] in methods and x[1] in methods]) for c, t, comps in out]


def read_cases(run: Path, k: int = 1) -> pd.DataFrame:
    """The per-case values at ``k`` of every finished cell (the cells' own files, else the merged one,
    else the committed compact table ``percase*.csv.gz``)."""
    files = sorted((run / "cells").glob("*.cases.csv.gz"))
    if not files and (run / "cases.csv.gz").exists():
        files = [run / "cases.csv.gz"]
    if not files:  # a committed folder: its compact per-case table (prorlbench.study.percase)
        from .percase import read

        d = read(run, k)
        return d[d["metric"].isin(METRICS)].reset_index(drop=True)
    parts = []
    for f in files:
        d = pd.read_csv(f)
        parts.append(d[(d["k"] == k) & d["metric"].isin(METRICS)])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["method", "dataset", "simulator", "seed", "case", "metric", "k", "value"])


def bootstrap_ci(d: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % interval of the mean of ``d`` over resampled cases."""
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for s in range(0, n_boot, 250):  # bounded memory for large case sets
        idx = rng.integers(0, len(d), size=(min(250, n_boot - s), len(d)))
        means[s : s + idx.shape[0]] = d[idx].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN)."""
    out = np.full_like(p, np.nan, dtype=float)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="mergesort")]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def compare(cases: pd.DataFrame, a: str, b: str, metric: str) -> dict | None:
    """One paired comparison on the seeds both methods have (per dataset and simulator of ``cases``)."""
    x = cases[(cases["metric"] == metric) & cases["method"].isin([a, b])]
    seeds = sorted(set(x[x["method"] == a]["seed"]) & set(x[x["method"] == b]["seed"]))
    if not seeds:
        return None
    x = x[x["seed"].isin(seeds)]
    wide = x.pivot_table(index="case", columns="method", values="value", aggfunc="mean").dropna()
    if len(wide) < 5:
        return None
    d = (wide[a] - wide[b]).to_numpy(float)
    per_seed = x.groupby(["seed", "method"])["value"].mean().unstack()
    seed_d = (per_seed[a] - per_seed[b]).to_numpy(float)
    p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    lo, hi = bootstrap_ci(d)
    delta = float(d.mean())
    agree = int(np.sum(np.sign(seed_d) == np.sign(delta))) if delta != 0 else 0
    return {"A": a, "B": b, "metric": metric, "mean_A": float(wide[a].mean()), "mean_B": float(wide[b].mean()),
            "delta": delta, "lo": lo, "hi": hi, "p": p, "seeds": f"{agree}/{len(seeds)}", "n_cases": len(wide)}


def dynamics(run: Path, tail: int = 16) -> pd.DataFrame:
    """Per (dataset, method, seed): sampled path length over the first and the last ``tail`` RL
    steps, and the selected policy's raw validation IoI of sampled paths (``final_vs_ioi``)."""
    rows = []
    for f in sorted((run / "cells").glob("*.train_log.csv")):
        g = pd.read_csv(f)
        if g.empty:
            continue
        pl = g[g["metric"] == "path_len"].sort_values("step")["value"]
        last = g.sort_values("step").groupby("metric")["value"].last()
        if pl.empty:
            continue
        rows.append({"dataset": g["dataset"].iloc[0], "method": g["method"].iloc[0], "seed": int(g["seed"].iloc[0]),
                     "len_first": float(pl.head(tail).mean()), "len_last": float(pl.tail(tail).mean()),
                     "valid_sampled_ioi": float(last.get("final_vs_ioi", np.nan))})
    return pd.DataFrame(rows)


PLOTTED = ("noise-pg", "naive-pg", "prorl-no-centering", "prorl", "prorl-no-positional-baseline",
           "prorl+center-position", "prorl+official-protocol", "grpo", "rloo", "prorl+semid", "noise-pg+semid")


def plot_claims(run: Path) -> Path | None:
    """``RUN/claims_dynamics.png``: the training dynamics of the methods in :data:`PLOTTED`."""
    from ..report.plots import plot_dynamics

    files = sorted((run / "cells").glob("*.train_log.csv"))
    logs = [pd.read_csv(f) for f in files if f.name.split("__")[0] in PLOTTED]
    if not logs:
        return None
    return plot_dynamics(pd.concat(logs, ignore_index=True), run, filename="claims_dynamics.png", dpi=80)


def _p(p: float) -> str:
    """A p-value at two significant digits; one that underflows to 0 prints as "<1e-300"."""
    return "<1e-300" if p == 0 else f"{p:.2g}"


def _ms(x: pd.Series, digits: int) -> str:
    x = x.dropna()
    if x.empty:
        return ""
    return f"{x.mean():.{digits}f}" + (f" ± {x.std(ddof=1):.{digits}f}" if len(x) > 1 else "")


def build(run: Path) -> str:
    from ..settings.runconfig import read_config_file

    cfg = read_config_file(run / "config.toml")
    cases = read_cases(run)
    n_cells = len(list((run / "cells").glob("*.json")))
    if not n_cells and (run / "cells.csv").exists():  # a committed folder without its cells/
        n_cells = int((pd.read_csv(run / "cells.csv")["status"] == "ok").sum())
    lines = [f"Run `{run}` ({n_cells} finished cells); K = 1; Δ = A − B over test cases (each case "
             "averaged over the seeds both have), [bootstrap 95 % CI], two-sided Wilcoxon p, Holm over "
             "all rows of the same dataset; seeds = seeds whose mean difference has Δ's sign.", ""]
    results = []
    # the config's methods, then any other method with finished cells (a folder filled by several
    # commands keeps the last command's config.toml)
    methods = list(dict.fromkeys(list(cfg.methods) + sorted(set(cases["method"]))))
    for cid, title, comps in claims(methods):
        for (ds, sim), part in cases.groupby(["dataset", "simulator"], sort=False):
            for a, b, m in comps:
                r = compare(part, a, b, m)
                if r is not None:
                    results.append({"claim": cid, "title": title, "dataset": ds, "simulator": sim, **r})
    res = pd.DataFrame(results)
    if res.empty:
        return "\n".join(lines + ["(no finished comparisons yet)"])
    res["p_holm"] = np.nan
    for _, idx in res.groupby("dataset").groups.items():
        res.loc[idx, "p_holm"] = holm(res.loc[idx, "p"].to_numpy(float))
    order = {d: i for i, d in enumerate(["prorl-json", "movielens", "synthetic"])}
    for cid, title in dict.fromkeys(zip(res["claim"], res["title"])):
        lines += [f"## ({cid}) {title}", "",
                  "| dataset | eval | A | B | metric | A | B | Δ [95 % CI] | p | p (Holm) | seeds |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        part = res[res["claim"] == cid].copy()
        part["_o"] = part["dataset"].map(lambda d: order.get(d, 9))
        for _, r in part.sort_values(["_o", "simulator"], kind="mergesort").iterrows():
            name, dg = SHOW[r["metric"]]
            lines.append(f"| {r['dataset']} | {r['simulator']} | `{r['A']}` | `{r['B']}` | {name}@1 | "
                         f"{r['mean_A']:.{dg}f} | {r['mean_B']:.{dg}f} | {r['delta']:+.{dg}f} "
                         f"[{r['lo']:+.{dg}f}, {r['hi']:+.{dg}f}] | {_p(r['p'])} | {_p(r['p_holm'])} | {r['seeds']} |")
        lines.append("")
    dyn = dynamics(run)
    if not dyn.empty:
        lines += ["## Training dynamics (sampled paths, mean ± std over seeds)", "",
                  "| dataset | method | seeds | length, first 16 steps | length, last 16 steps | "
                  "valid IoI of sampled paths |", "|---|---|---|---|---|---|"]
        for (ds, m), g in sorted(dyn.groupby(["dataset", "method"]), key=lambda t: (order.get(t[0][0], 9),
                                                                                   list(cfg.methods).index(t[0][1])
                                                                                   if t[0][1] in cfg.methods else 99)):
            lines.append(f"| {ds} | `{m}` | {len(g)} | {_ms(g['len_first'], 2)} | {_ms(g['len_last'], 2)} | "
                         f"{_ms(g['valid_sampled_ioi'], 3)} |")
        lines.append("")
    return "\n".join(lines)


def per_seed(run: Path, dataset: str = "prorl-json", simulator: str = "sasrec") -> str:
    """Per-seed test means (IoI@1, IoI-lift@1, Len@1) of every method on ``dataset``: the seed
    spread that the case-paired comparisons average over."""
    cases = read_cases(run)
    part = cases[(cases["dataset"] == dataset) & (cases["simulator"] == simulator)
                 & cases["metric"].isin(["ioi", "ioi-lift", "len"])]
    means = part.groupby(["method", "seed", "metric"], sort=False)["value"].mean()
    seeds = sorted(part["seed"].unique())
    head = " | ".join(f"{name} s{s}" for name in ("IoI@1", "IoI-lift@1", "Len@1") for s in seeds)
    lines = [f"Per-seed test means on `{dataset}`, K = 1, scored by {simulator} "
             "(`python -m prorlbench.study.claims RUN --seeds-table OUT`).", "",
             f"| method | {head} |", "|---|" + "---|" * (3 * len(seeds))]
    for method in dict.fromkeys(part["method"]):
        vals = []
        for metric, dg in (("ioi", 3), ("ioi-lift", 3), ("len", 2)):
            vals += [f"{means[(method, s, metric)]:.{dg}f}" if (method, s, metric) in means.index else ""
                     for s in seeds]
        lines.append(f"| `{method}` | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prorlbench.study.claims", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run folder of experiments/prorl_study.toml")
    ap.add_argument("--out", type=Path, help="also write the tables to this Markdown file")
    ap.add_argument("--plot", action="store_true", help="also write RUN/claims_dynamics.png")
    ap.add_argument("--seeds-table", type=Path, metavar="OUT",
                    help="also write the per-seed means of the prorl-json block to this Markdown file")
    args = ap.parse_args(argv)
    if not (args.run / "config.toml").exists():
        print(f"study: {args.run}: not a run folder (no config.toml)", file=sys.stderr)
        return 2
    text = build(args.run)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.plot:
        print(f"plot: {plot_claims(args.run)}")
    if args.seeds_table:
        args.seeds_table.write_text(per_seed(args.run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
