"""The RL-protocol table of ``docs/rl.md`` from a run folder (complete or still running).

    python -m benchmarks.rl_table results/rl_protocol [--out FILE.md]
    python -m benchmarks.rl_table results/prorl-study --config experiments/rl_protocol.toml

(the second: the rows of the protocol grid from the study's run folder, which holds its cells)

Per dataset and method (mean ± std over seeds):

* ``len``: mean sampled path length over the last ``--tail`` RL steps;
* test ``IoI@1``, ``IoR@1``, ``CTR@1`` (scored by the run's training simulator where it evaluates);
* on validation, for paths *sampled* by the selected policy (``G`` per case): mean raw path IoI,
  path IoR, accepted items (``ctr``) and length; these are the raw components of the training
  objective;
* ``J − J(noise)``: the method's own training objective (its normaliser, centred or not as its
  estimator) of its validation samples minus that of ``noise-pg``'s samples of the same seed,
  with the paired t-test over seeds (``p``). For variants whose statistics are per position or
  per batch, ``prorl``'s global statistics of the same seed are used (marked ``*``).
* ``ΔIoI@1 vs prorl``: test IoI@1 minus ``prorl``'s, paired over test cases (each case's value
  averaged over seeds), Wilcoxon signed-rank p-value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from prorlbench.settings.runconfig import read_config_file

COMPS = ("ctr", "ioi", "ior")


def _read(run: Path, suffix: str) -> pd.DataFrame:
    merged = run / f"{suffix}.csv" if suffix == "train_log" else run / "cases.csv.gz"
    files = sorted((run / "cells").glob(f"*.{suffix}.csv.gz" if suffix == "cases" else f"*.{suffix}.csv"))
    if files:
        return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return pd.read_csv(merged) if merged.exists() else pd.DataFrame()


def _objective(vals: dict[str, float], norm: dict[str, float], centered: bool, p: int) -> float:
    """``J = sum_c w_c (S_c - [centered] mu_c n_c) / sigma_c`` (ctr divided by ``p``; w = 1)."""
    j = 0.0
    for c in COMPS:
        n = vals["final_vs_len"] if c == "ctr" else vals["final_vs_valid_steps"]
        x = (vals[f"final_vs_{c}"] - (norm[f"mu_{c}"] * n if centered else 0.0)) / norm[f"sigma_{c}"]
        j += x / p if c == "ctr" else x
    return j


def _fmt(xs: list[float], digits: int = 3) -> str:
    xs = [x for x in xs if np.isfinite(x)]
    if not xs:
        return ""
    m = float(np.mean(xs))
    return f"{m:.{digits}f}" + (f" ± {float(np.std(xs, ddof=1)):.{digits}f}" if len(xs) > 1 else "")


def build_tables(run: Path, tail: int = 16, baseline: str = "prorl", control: str = "noise-pg",
                 config: Path | None = None) -> str:
    cfg = read_config_file(config or run / "config.toml")
    from prorlbench.plugins import load_registry

    reg = load_registry()
    p = int(cfg.cases.get("max_path_len", 10))
    log_df, cases = _read(run, "train_log"), _read(run, "cases")
    cases = cases[cases["k"] == 1]
    sims = list(cases["simulator"].unique())
    sim = cfg.simulator if cfg.simulator in sims else (sorted(sims)[0] if sims else "")  # the training one
    cases = cases[cases["simulator"] == sim]
    out = [f"Run `{run}`; test metrics by `{sim}`; {cfg.profile} profile; ± is the std over seeds.", ""]
    present = list(dict.fromkeys(list(log_df.get("dataset", [])) + list(cases.get("dataset", []))))
    for ds in sorted(present, key=lambda d: (d != "synthetic", d)):  # the toy world first
        lg = log_df[log_df["dataset"] == ds]
        cs = cases[cases["dataset"] == ds]
        per = {}  # (method, seed) -> values
        for (m, s), g in lg.groupby(["method", "seed"]):
            v = {}
            steps = g[g["metric"] == "path_len"].sort_values("step")
            if not steps.empty:
                v["len"] = float(steps["value"].tail(tail).mean())
            last = g.sort_values("step").groupby("metric")["value"].last()
            v.update({k: float(x) for k, x in last.items() if k.startswith(("final_", "norm_"))})
            per[(m, int(s))] = v
        rows = []
        methods = [m for m in cfg.methods if any(k[0] == m for k in per) or m in set(cs["method"])]
        base_case = cs[(cs["method"] == baseline) & (cs["metric"] == "ioi")].groupby("case")["value"].mean()
        for m in methods:
            seeds = sorted({s for (mm, s) in per if mm == m} | set(cs[cs["method"] == m]["seed"].unique()))
            test = {met: [float(cs[(cs["method"] == m) & (cs["seed"] == s) & (cs["metric"] == met)]["value"].mean())
                          for s in seeds] for met in ("ioi", "ior", "ctr")}
            vals = [per.get((m, s), {}) for s in seeds]
            row = [f"`{m}`", str(len(seeds)), _fmt([v.get("len", np.nan) for v in vals], 2),
                   _fmt(test["ioi"]), _fmt(test["ior"], 1), _fmt(test["ctr"])]
            row += [_fmt([v.get(f"final_vs_{c}", np.nan) for v in vals], 2 if c != "ior" else 1)
                    for c in ("len", "ioi", "ior", "ctr")]
            base_name = cfg.variants.get(m, {}).get("method", m)
            est = reg.specs["estimators"].get(base_name)
            jdiff = ""
            if est is not None and m != control:
                diffs, mark = [], ""
                for s, v in zip(seeds, vals):
                    ctl = per.get((control, s), {})
                    norm = {k[5:]: x for k, x in v.items() if k.startswith("norm_") and "_t" not in k}
                    if not all(f"{a}_{c}" in norm for a in ("mu", "sigma") for c in COMPS):
                        norm = {k[5:]: x for k, x in per.get((baseline, s), {}).items() if k.startswith("norm_")}
                        mark = "*"
                    if "final_vs_len" in v and "final_vs_len" in ctl and norm:
                        diffs.append(_objective(v, norm, est.centered, p) - _objective(ctl, norm, est.centered, p))
                if diffs:
                    pv = stats.ttest_1samp(diffs, 0.0).pvalue if len(diffs) > 1 else float("nan")
                    jdiff = f"{np.mean(diffs):+.3f}{mark} (p {pv:.2g}, {sum(d > 0 for d in diffs)}/{len(diffs)})"
            row.append(jdiff)
            mine = cs[(cs["method"] == m) & (cs["metric"] == "ioi")].groupby("case")["value"].mean()
            both = pd.concat([mine, base_case], axis=1, keys=["m", "b"]).dropna()
            if m != baseline and len(both) > 10:
                d = both["m"] - both["b"]
                pw = stats.wilcoxon(d).pvalue if bool((d != 0).any()) else 1.0
                row.append(f"{d.mean():+.3f} (p {pw:.2g})")
            else:
                row.append("")
            rows.append(row)
        head = ["method", "seeds", "len (last steps)", "test IoI@1", "test IoR@1", "test CTR@1",
                "valid len", "valid IoI", "valid IoR", "valid CTR", "J − J(noise-pg)", f"ΔIoI@1 vs {baseline}"]
        out += [f"### {ds}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.rl_table", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run folder (results/rl_protocol)")
    ap.add_argument("--tail", type=int, default=16, help="RL steps averaged for the final path length")
    ap.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    ap.add_argument("--config", type=Path, help="the grid's config (methods, variants); default RUN/config.toml")
    args = ap.parse_args(argv)
    if not (args.run / "config.toml").exists():
        print(f"rl_table: {args.run}: not a run folder (no config.toml)", file=sys.stderr)
        return 2
    text = build_tables(args.run, args.tail, config=args.config)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
