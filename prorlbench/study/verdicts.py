"""The one-glance verdict table of docs/findings.md: claim × dataset × budget × evaluator.

    python -m prorlbench.study.verdicts            # print the table

Every number comes from a committed table: a run folder's ``comparisons.md`` (``prorlbench.study.claims``),
its ``summary.csv`` (Len@1) and ``grad_variance_*.md`` (claim (c)), or, for the official budget on
a GPU until the repository's own GPU block replaces it, the external measurement of issue 24 (kept
below with its command, commit and hardware).

The study's rule decides each row. A difference *counts* under one evaluator when its sign is the
same in every seed and its Holm-corrected p is below 0.05. A claim **holds** only when it counts in
the claim's direction under the simulator the rewards came from (SASRec) *and* under a held-out
evaluator (GRU4Rec on real data, the ground-truth oracle on the toy world). Where the two disagree,
the verdict says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATASETS = (("prorl-json", "ML-1M (ProRL's cases)"), ("movielens", "ML-100K"), ("synthetic", "toy world"))
HELD_OUT = {"prorl-json": "gru4rec", "movielens": "gru4rec", "synthetic": "oracle"}
STRONG = ("random", "pop", "rec2inf", "ipg", "irn", "shortest-path")
"""The non-RL PRS baselines of claim (d); the strongest under each evaluator is the one shown."""

EXTERNAL = {
    # issue 24: one H200, torch 2.11 + CUDA 13, commit 9f5bc14, `prorlbench run --config C.toml` with
    # profile official, item policy, prorl-json, seeds 0-2, SASRec only (its GRU4Rec did not learn)
    ("prorl", "sft", "IoI@1"): {"delta": "+0.434 [+0.411, +0.458]", "p_holm": "2.5e-236", "seeds": "3/3",
                                "len": "0.99–1.00 / 0.99–1.00"},
    ("prorl", "noise-pg", "IoI@1"): {"delta": "+0.415 [+0.392, +0.438]", "p_holm": "4.7e-214", "seeds": "3/3",
                                     "len": "0.99–1.00 / 0.99–1.00"},
}
EXTERNAL_SOURCE = "external: H200, commit 9f5bc14 (issue 24)"


@dataclass(frozen=True)
class Source:
    """Where one (dataset, budget) block's numbers come from."""

    budget: str
    run: Path
    label: str


def parse_rows(text: str) -> dict[tuple[str, ...], dict[str, str]]:
    """``comparisons.md``'s rows by (dataset, eval, A, B, metric)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 11 and cells[0] not in ("dataset",) and not cells[0].startswith("---"):
            ds, sim, a, b, metric, ma, mb, delta, p, ph, seeds = cells
            rows.setdefault((ds, sim, a.strip("`"), b.strip("`"), metric),
                            {"A": ma, "B": mb, "delta": delta, "p_holm": ph, "seeds": seeds})
    return rows


def counts(row: dict[str, str] | None) -> int:
    """+1 / -1 where the difference counts (sign in every seed, Holm p < 0.05), else 0."""
    if row is None:
        return 0
    agree, total = row["seeds"].split("/")
    p = 0.0 if row["p_holm"].startswith("<") else float(row["p_holm"])
    delta = float(row["delta"].split()[0])
    return (1 if delta > 0 else -1) if agree == total and p < 0.05 and delta != 0 else 0


def verdict(reward: int, held: int | None, direction: int) -> str:
    """The claim's verdict from the two evaluators' signs (``held`` None: not measured)."""
    r, h = reward * direction, (held or 0) * direction
    if r > 0 and h > 0:
        return "**holds**"
    if r > 0 and h < 0:
        return "evaluators disagree: holds under the reward model, reversed held out"
    if r > 0:
        return "reward model only" + (" (held-out not measured)" if held is None else "")
    if h > 0:
        return "held-out only"
    if r < 0 or h < 0:
        return "**contradicted**" + (" held out" if h < 0 and r == 0 else "")
    return "not shown"


def cell(row: dict[str, str] | None) -> str:
    return "—" if row is None else f"{row['delta']}, {row['seeds']}, p {row['p_holm']}"


def len_at_1(run: Path, ds: str, method: str) -> str:
    s = pd.read_csv(run / "summary.csv")
    v = s[(s["dataset"] == ds) & (s["method"] == method) & (s["metric"] == "len") & (s["k"] == 1)]["mean"]
    return f"{v.iloc[0]:.2f}" if len(v) else "?"


def variance_ratio(run: Path, ds: str) -> tuple[str, int] | None:
    f = run / f"grad_variance_{ds}.md"
    if not f.exists():
        return None
    m = re.search(r"= ([\d.]+) \[95% CI ([\d.]+), ([\d.]+)\]", f.read_text())
    if not m:
        return None
    v, lo, hi = (float(x) for x in m.groups())
    return f"PSAE / path baseline variance {v:.3f} [{lo:.3f}, {hi:.3f}]", (-1 if hi < 1 else 1 if lo > 1 else 0)


def rows_for(ds: str, src: Source) -> list[list[str]]:
    rows = parse_rows((src.run / "comparisons.md").read_text(encoding="utf-8"))
    held = HELD_OUT[ds]
    out = []

    def pair(claim: str, a: str, b_by_sim: dict[str, str], metric: str, direction: int) -> None:
        r = rows.get((ds, "sasrec", a, b_by_sim["sasrec"], metric))
        h = rows.get((ds, held, a, b_by_sim[held], metric))
        if r is None and h is None:
            return
        b = b_by_sim["sasrec"] if b_by_sim["sasrec"] == b_by_sim[held] else f"{b_by_sim['sasrec']} / {b_by_sim[held]}"
        lens = f"{len_at_1(src.run, ds, a)} / {len_at_1(src.run, ds, b_by_sim['sasrec'])}"
        out.append([claim, f"`{a}` − `{b}`, {metric}", cell(r), f"{held}: {cell(h)}", lens,
                    verdict(counts(r), counts(h) if h else None, direction)])

    pair("(a) naive PG lengthens its paths", "naive-pg", {"sasrec": "sft", held: "sft"}, "Len@1", +1)
    pair("(a) … without a real gain", "naive-pg", {"sasrec": "sft", held: "sft"}, "IoI-lift@1", +1)
    pair("(b) SRC removes the shortcut", "prorl", {"sasrec": "naive-pg", held: "naive-pg"}, "Len@1", -1)
    gv = next((r for r in (src.run, ROOT / "results" / "prorl-study") if variance_ratio(r, ds)), None)
    if gv is not None:
        text, sign = variance_ratio(gv, ds)
        out.append(["(c) PSAE lowers the gradient variance", "at the SFT checkpoint of seed 0 (SASRec rewards)",
                    text, "—", "—", {-1: "**holds** (one checkpoint)", 1: "**contradicted** (one checkpoint)",
                                     0: "no difference (one checkpoint)"}[sign], f"{gv.relative_to(ROOT)}/grad_variance_{ds}.md"])
    strongest = {}
    for sim in ("sasrec", held):
        cands = [(float(rows[(ds, sim, "prorl", b, "IoI@1")]["B"]), b) for b in STRONG
                 if (ds, sim, "prorl", b, "IoI@1") in rows]
        if cands:
            strongest[sim] = max(cands)[1]
    if len(strongest) == 2:
        pair("(d) ProRL beats the strongest baseline", "prorl", strongest, "IoI@1", +1)
    pair("(e) RL improves on its SFT start", "prorl", {"sasrec": "sft", held: "sft"}, "IoI@1", +1)
    pair("(e) … and on the placebo", "prorl", {"sasrec": "noise-pg", held: "noise-pg"}, "IoI@1", +1)
    return [[r[0], src.budget] + r[1:6] + [r[6] if len(r) > 6 else src.label] for r in out]


def table(sources: dict[str, Source]) -> str:
    head = ["claim", "budget", "test (A − B)", "reward simulator (SASRec): Δ [95 % CI], seeds, Holm p",
            "held-out evaluator: Δ [95 % CI], seeds, Holm p", "Len@1 A / B", "verdict", "source"]
    lines = []
    for ds, name in DATASETS:
        if ds not in sources:
            continue
        lines += [f"**{name}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows_for(ds, sources[ds])]
        if ds == "prorl-json":
            for (a, b, metric), e in EXTERNAL.items():
                claim = "(e) RL improves on its SFT start" if b == "sft" else "(e) … and on the placebo"
                row = {"delta": e["delta"], "seeds": e["seeds"], "p_holm": e["p_holm"]}
                lines.append(f"| {claim} | official (GPU) | `{a}` − `{b}`, {metric} | {cell(row)} | "
                             f"gru4rec: not measured (it did not learn in that run) | {e['len']} | "
                             f"{verdict(counts(row), None, +1)} | {EXTERNAL_SOURCE} |")
        lines.append("")
    return "\n".join(lines)


NEEDED = (("naive-pg", "sft", "Len@1"), ("naive-pg", "sft", "IoI-lift@1"), ("prorl", "naive-pg", "Len@1"),
          ("prorl", "sft", "IoI@1"), ("prorl", "noise-pg", "IoI@1"), ("prorl", "shortest-path", "IoI@1"))
"""The rows a block must have, under both evaluators, to give a dataset's verdicts."""


def complete(run: Path, ds: str) -> bool:
    """Whether ``run``'s ``comparisons.md`` has every row of :data:`NEEDED` for ``ds``."""
    f = run / "comparisons.md"
    if not f.exists():
        return False
    rows = parse_rows(f.read_text(encoding="utf-8"))
    return all((ds, sim, a, b, m) in rows for a, b, m in NEEDED for sim in ("sasrec", HELD_OUT[ds]))


def default_sources() -> dict[str, Source]:
    """The committed blocks at the quick budget on this CPU: ``results/budget-axis`` (x1, this
    code, with its per-case table) for a dataset it covers completely, else ``results/prorl-study``."""
    study = Source("quick", ROOT / "results" / "prorl-study", "results/prorl-study")
    axis = Source("quick", ROOT / "results" / "budget-axis", "results/budget-axis (x1)")
    return {ds: axis if complete(axis.run, ds) else study for ds, _ in DATASETS}


if __name__ == "__main__":
    print(table(default_sources()))
