"""The budget axis of the ProRL study (issue 24): RL verdicts against the RL stage's budget.

    python -m prorlbench.study.budget_axis results/budget-axis [--out results/budget-axis/budget_axis.md]

From a run of ``experiments/budget_axis.toml`` (its cells, or its committed ``percase*.csv.gz``),
for every dataset, evaluating simulator and RL budget (``x1`` = the quick profile, ``x4``, ``x16``
and the official batch shape), at K = 1:

* Δ(prorl − sft), Δ(prorl − noise-pg) and Δ(naive-pg − sft) on IoI@1 and IoI-lift@1: paired over
  test cases (each averaged over the seeds), bootstrap 95 % interval, two-sided Wilcoxon p with
  Holm's correction over all rows of the dataset, and the seeds whose mean difference has Δ's
  sign (``prorlbench.study.claims.compare``); a verdict holds where the sign is the same in every seed
  and the Holm p is below 0.05;
* Len@1 of every method at every budget (mean ± std over seeds).

It writes the Markdown table, its compact view ``budget_axis_compact.md`` (one column per budget;
▲ / ▼ where a difference counts) and ``budget_axis.png`` / ``.pdf`` (Δ with its interval against the
sampled paths of the RL stage, log scale; one panel per comparison and metric, one line per dataset
and evaluator; and Len@1) into the run folder.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .claims import _ms, _p, compare, holm, read_cases

BUDGETS = {"": "x1", "+x4": "x4", "+x16": "x16", "+official-shape": "official-shape"}
COMPARISONS = (("prorl", "sft"), ("prorl", "noise-pg"), ("naive-pg", "sft"))
METRICS = (("ioi", "IoI@1"), ("ioi-lift", "IoI-lift@1"))
QUICK = {"epochs": 10, "max_train_cases": 512, "samples_per_case": 8}
EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "budget_axis.toml"
LENGTH_METHODS = ("sft", "prorl", "noise-pg", "naive-pg")


def split(method: str) -> tuple[str, str] | None:
    """``(base, budget)`` of a method name of the grid (``prorl+x4`` -> ``("prorl", "x4")``)."""
    for suffix, budget in BUDGETS.items():
        if suffix and method.endswith(suffix):
            return method[: -len(suffix)], budget
    return (method, "x1") if "+" not in method else None


def budget_keys(run: Path, name: str) -> dict[str, int]:
    """The keys that set a method's RL budget: the run's resolved ``[methods.NAME]`` table, else its
    ``[variants.NAME]``, else ``experiments/budget_axis.toml``'s (a folder's ``config.toml`` is the
    last command's, which may not name every budget), on top of the quick profile."""
    import tomllib

    keys = dict(QUICK)
    for doc in (tomllib.loads(EXPERIMENT.read_text(encoding="utf-8")),
                tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))):
        for table in (doc.get("variants", {}).get(name, {}), doc.get("methods", {}).get(name, {})):
            keys.update({k: v for k, v in table.items() if k in QUICK})
    return keys


def sampled_paths(run: Path) -> dict[tuple[str, str], int]:
    """Sampled paths of each (dataset, budget)'s RL stage: epochs x cases per epoch x G, from the
    methods' budget keys and the training cases of ``run.log``."""
    n_train = {m.group(1): int(m.group(2)) for m in re.finditer(r"cases on (\S+): train (\d+)",
                                                                (run / "run.log").read_text(errors="replace"))}
    out = {}
    for ds, n in n_train.items():
        for suffix, budget in BUDGETS.items():
            keys = budget_keys(run, "prorl" + suffix)
            per_epoch = min(keys["max_train_cases"] or n, n)
            out[(ds, budget)] = int(keys["epochs"] * per_epoch * keys["samples_per_case"])
    return out


def table(run: Path) -> pd.DataFrame:
    """One row per (dataset, simulator, budget, comparison, metric), Holm within each dataset."""
    cases = read_cases(run, 1)
    rows = []
    for (ds, sim), part in cases.groupby(["dataset", "simulator"], sort=False):
        names = {split(m): m for m in part["method"].unique() if split(m)}
        for budget in BUDGETS.values():
            for a, b in COMPARISONS:
                ma = names.get((a, budget))
                mb = names.get((b, "x1" if b == "sft" else budget))
                if ma is None or mb is None:
                    continue
                for metric, label in METRICS:
                    r = compare(part, ma, mb, metric)
                    if r is not None:
                        rows.append({**r, "dataset": ds, "simulator": sim, "budget": budget,
                                     "comparison": f"{a} − {b}", "metric": label})
    res = pd.DataFrame(rows)
    if res.empty:
        return res
    res["p_holm"] = np.nan
    for _, idx in res.groupby("dataset").groups.items():
        res.loc[idx, "p_holm"] = holm(res.loc[idx, "p"].to_numpy(float))
    seeds_all = res["seeds"].str.split("/").map(lambda s: s[0] == s[1])
    res["verdict"] = np.where(seeds_all & (res["p_holm"] < 0.05), np.where(res["delta"] > 0, "A > B", "A < B"),
                              "no verdict")
    return res


def lengths(run: Path) -> pd.DataFrame:
    """Len@1 per (dataset, simulator, method, budget): mean ± std over the seeds' means."""
    cases = read_cases(run, 1)
    part = cases[cases["metric"] == "len"]
    per_seed = part.groupby(["dataset", "simulator", "method", "seed"])["value"].mean().reset_index()
    rows = []
    for (ds, sim, m), g in per_seed.groupby(["dataset", "simulator", "method"], sort=False):
        if split(m) and split(m)[0] in LENGTH_METHODS:
            rows.append({"dataset": ds, "simulator": sim, "method": split(m)[0], "budget": split(m)[1],
                         "len": _ms(g["value"], 2), "len_mean": g["value"].mean()})
    return pd.DataFrame(rows)


def markdown(run: Path) -> str:
    res, lens, paths = table(run), lengths(run), sampled_paths(run)
    lines = [f"Budget axis from `{run.name}`: K = 1; Δ = A − B over test cases (each averaged over the seeds), "
             "[bootstrap 95 % CI], Wilcoxon p with Holm over every row of the dataset; seeds = seeds whose mean "
             "difference has Δ's sign; a verdict needs the sign in every seed and Holm p < 0.05. "
             "`sft` is the same at every budget.", ""]
    if res.empty:
        return "\n".join(lines + ["(no finished comparisons yet)"])
    lines += ["| dataset | eval | budget | sampled paths | A − B | metric | Δ [95 % CI] | p (Holm) | seeds | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in res.iterrows():
        lines.append(f"| {r['dataset']} | {r['simulator']} | {r['budget']} | {paths.get((r['dataset'], r['budget']), 0):,} | "
                     f"{r['comparison']} | {r['metric']} | {r['delta']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] | "
                     f"{_p(r['p_holm'])} | {r['seeds']} | {r['verdict']} |")
    if not lens.empty:
        lines += ["", "Len@1 (mean ± std over seeds):", "",
                  "| dataset | eval | budget | " + " | ".join(sorted(lens["method"].unique())) + " |",
                  "|---|---|---|" + "---|" * lens["method"].nunique()]
        for (ds, sim, b), g in lens.groupby(["dataset", "simulator", "budget"], sort=False):
            by = dict(zip(g["method"], g["len"]))
            lines.append(f"| {ds} | {sim} | {b} | " + " | ".join(by.get(m, "") for m in sorted(lens["method"].unique())) + " |")
    return "\n".join(lines) + "\n"


def selected_epochs(run: Path) -> str:
    """Per (dataset, method, budget): the RL epoch validation selection kept in each seed, of how
    many (from the cells' training logs; empty for a folder without its cells)."""
    rows = {}
    for f in sorted((run / "cells").glob("*.train_log.csv")):
        method, ds, seed = f.name.split(".train_log.csv")[0].split("__")
        if not split(method) or split(method)[0] not in LENGTH_METHODS[1:]:
            continue
        g = pd.read_csv(f)
        sel, epochs = g[g["metric"] == "selected_epoch"]["value"], budget_keys(run, method)["epochs"]
        if len(sel):
            rows.setdefault((ds, *split(method)), {})[int(seed[1:])] = f"{int(sel.iloc[-1])}/{epochs}"
    if not rows:
        return ""
    lines = ["| dataset | method | budget | selected RL epoch, seeds 0, 1, 2 |", "|---|---|---|---|"]
    for (ds, m, b), by in sorted(rows.items(), key=lambda t: (t[0][0], t[0][1], list(BUDGETS.values()).index(t[0][2]))):
        lines.append(f"| {ds} | `{m}` | {b} | " + ", ".join(by.get(s, "—") for s in range(3)) + " |")
    return "\n".join(lines) + "\n"


def compact(run: Path) -> str:
    """One row per (dataset, evaluator, comparison, metric), one column per budget: the compact
    view docs/findings.md includes (``budget_axis_compact.md``); then Len@1 per method and budget."""
    res, lens, paths = table(run), lengths(run), sampled_paths(run)
    if res.empty:
        return "(no finished comparisons yet)\n"
    budgets = [b for b in BUDGETS.values() if b in set(res["budget"])]
    order = {d: i for i, d in enumerate(["prorl-json", "movielens", "synthetic"])}
    head = [f"{b} ({paths.get((res['dataset'].iloc[0], b), 0):,} paths)" if len(set(res["dataset"])) == 1 else b
            for b in budgets]
    lines = ["| dataset | eval | A − B | metric | " + " | ".join(head) + " |", "|---|---|---|---|" + "---|" * len(budgets)]
    mark = {"A > B": " ▲", "A < B": " ▼", "no verdict": ""}
    sims = {"sasrec": 0, "gru4rec": 1, "oracle": 2}
    comps = {f"{a} − {b}": i for i, (a, b) in enumerate(COMPARISONS)}
    mets = {label: i for i, (_, label) in enumerate(METRICS)}
    keyed = res.assign(_o=res["dataset"].map(lambda d: order.get(d, 9)), _s=res["simulator"].map(lambda x: sims.get(x, 9)),
                       _c=res["comparison"].map(comps), _m=res["metric"].map(mets))
    for (_, ds, _, sim, _, comp, _, metric), g in keyed.groupby(["_o", "dataset", "_s", "simulator", "_c", "comparison",
                                                                 "_m", "metric"], sort=True):
        by = {r["budget"]: f"{r['delta']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] {r['seeds']}{mark[r['verdict']]}"
              for _, r in g.iterrows()}
        lines.append(f"| {ds} | {sim} | {comp} | {metric} | " + " | ".join(by.get(b, "—") for b in budgets) + " |")
    if not lens.empty:
        lines += ["", "| dataset | Len@1 | " + " | ".join(budgets) + " |", "|---|---|" + "---|" * len(budgets)]
        part = lens[lens["simulator"] == "sasrec"]
        for (ds, m), g in sorted(part.groupby(["dataset", "method"]), key=lambda t: (order.get(t[0][0], 9), t[0][1])):
            by = dict(zip(g["budget"], g["len"]))
            lines.append(f"| {ds} | `{m}` | " + " | ".join(by.get(b, "—") for b in budgets) + " |")
    return "\n".join(lines) + "\n"


def plot(run: Path) -> list[Path]:
    """``budget_axis.png`` and ``.pdf``: Δ with its interval against sampled paths, and Len@1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, lens, paths = table(run), lengths(run), sampled_paths(run)
    if res.empty:
        return []
    panels = [(c, m) for c in ("prorl − sft", "prorl − noise-pg") for _, m in METRICS]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.2 * (len(panels) + 1), 3.6), constrained_layout=True)
    ticks = sorted({(v, b) for (_, b), v in paths.items() if b != "official-shape"})
    series = sorted(set(zip(res["dataset"], res["simulator"])))
    styles = {s: (f"C{i}", ("o", "s", "^", "D", "v", "P")[i % 6]) for i, s in enumerate(series)}
    for ax, (comp, metric) in zip(axes, panels):
        for (ds, sim) in series:
            g = res[(res["dataset"] == ds) & (res["simulator"] == sim) & (res["comparison"] == comp)
                    & (res["metric"] == metric) & (res["budget"] != "official-shape")]
            if g.empty:
                continue
            x = np.array([paths[(ds, b)] for b in g["budget"]], float)
            order = np.argsort(x)
            color, marker = styles[(ds, sim)]
            ax.errorbar(x[order], g["delta"].to_numpy()[order],
                        yerr=np.abs(np.vstack([g["lo"], g["hi"]]).astype(float)[:, order] - g["delta"].to_numpy()[order]),
                        color=color, marker=marker, capsize=3, label=f"{ds} / {sim}")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"Δ {metric}: {comp}", fontsize=9)
        ax.set_xlabel("RL sampled paths (log scale)")
        ax.set_ylabel(f"Δ {metric} (95 % CI)")
    ax = axes[-1]
    from ..report.colors import method_colors

    colors = method_colors(LENGTH_METHODS)  # each method's colour in every figure of the harness
    for m in LENGTH_METHODS:
        g = lens[(lens["method"] == m) & (lens["simulator"] == "sasrec") & (lens["budget"] != "official-shape")]
        for j, ds in enumerate(sorted(g["dataset"].unique())):
            h = g[g["dataset"] == ds]
            x = np.array([paths[(ds, b)] for b in h["budget"]], float)
            order = np.argsort(x)
            ax.plot(x[order], h["len_mean"].to_numpy()[order], marker="os"[j % 2], color=colors[m],
                    ls="-" if j == 0 else "--", label=f"{m} ({ds})")
    ax.set_xscale("log")
    ax.set_title("Len@1 (items)", fontsize=9)
    ax.set_xlabel("RL sampled paths (log scale)")
    ax.set_ylabel("Len@1 (items)")
    for a in axes:  # the budgets as ticks (×1, ×4, ×16 and their paths), no log-scale minor labels
        a.set_xticks([v for v, _ in ticks], [f"{b}\n{v / 1000:,.0f}k" for v, b in ticks], fontsize=7)
        a.minorticks_off()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=7,
               title="Δ panels: dataset / evaluator", title_fontsize=7)
    axes[-1].legend(fontsize=6, loc="lower right")
    out = [run / "budget_axis.png", run / "budget_axis.pdf"]
    for f in out:
        fig.savefig(f, dpi=110, metadata={"CreationDate": None} if f.suffix == ".pdf" else None)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prorlbench.study.budget_axis", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run folder of experiments/budget_axis.toml")
    ap.add_argument("--out", type=Path, help="the Markdown table (default RUN/budget_axis.md)")
    ap.add_argument("--no-plot", action="store_true", help="leave out budget_axis.png / .pdf")
    args = ap.parse_args(argv)
    if not (args.run / "config.toml").exists() or not (args.run / "run.log").exists():
        print(f"budget_axis: {args.run}: not a run folder (no config.toml or run.log)", file=sys.stderr)
        return 2
    text = markdown(args.run)
    (args.out or args.run / "budget_axis.md").write_text(text, encoding="utf-8")
    epochs = selected_epochs(args.run)
    (args.run / "budget_axis_compact.md").write_text(compact(args.run) + (f"\n{epochs}" if epochs else ""),
                                                      encoding="utf-8")
    print(text)
    if not args.no_plot:
        for f in plot(args.run):
            print(f"plot: {f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
