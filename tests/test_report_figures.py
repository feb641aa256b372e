"""The report's figures: one look per method in every figure, a legend entry for every line,
curated training panels, PNG and PDF, ``--plots none|summary|all``.

The figures are checked on the matplotlib objects the report saves (``figures.save_figure`` is
wrapped to keep them): every line and bar drawn for a method carries the method's name as its
``gid``, so each can be matched to the legend.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from prorlbench.report import figures, method_color, method_styles, write_report
from prorlbench.report.colors import KNOWN, MARKER_THRESHOLD
from prorlbench.report.training import CURATED, MAX_PANELS

STUDY = ["random", "pop", "rec2inf", "ipg", "irn", "shortest-path", "sft", "prorl", "prorl-no-centering",
         "prorl-no-positional-baseline", "naive-pg", "grpo", "rloo", "noise-pg", "prorl+greedy", "prorl+beam",
         "prorl+top-k50", "prorl+k3", "prorl+exact-kl", "prorl+warmup-wd", "prorl+skip-empty",
         "prorl+center-position", "prorl+center-batch", "prorl+leftpad", "prorl+official-protocol",
         "sft+greedy", "sft+semid", "prorl+semid"]
"""The 28 methods of experiments/prorl_study.toml."""
CASE_COLS = ["method", "dataset", "simulator", "seed", "case", "metric", "k", "value"]
CELL_COLS = ["method", "dataset", "seed", "simulator", "eval_simulator", "status", "error", "seconds"]
TRAIN_KEYS = ["path_len", "reward_ioi", "reward_ior", "reward_ctr", "kl", "loss", "lr", "grad_var", "adv_abs"]


def make_run(root: Path, methods: list[str], *, seeds=(0, 1), steps: int = 24, display: str = "") -> Path:
    """A run folder: ``methods`` x two datasets x ``seeds``, headline metrics, a training log of
    every RL key (``valid_ioi`` every 8 steps) and single-point keys like the trainer's."""
    root.mkdir(parents=True)
    cases, cells, log = [], [], []
    for i, m in enumerate(methods):
        for ds in ("synthetic", "movielens"):
            for s in seeds:
                cells.append((m, ds, s, "sasrec", "sasrec", "ok", "", 1.0))
                for metric in ("ioi", "ior", "ctr", "sr10"):
                    cases += [(m, ds, "sasrec", s, f"c{c}", metric, 1, 0.01 * i + 0.1 * c + 0.02 * s) for c in range(3)]
                for step in range(steps):
                    log += [(m, ds, s, step, key, (1 + i) * 1e-3 * (step + 1) + 0.1 * s) for key in TRAIN_KEYS]
                    if step % 8 == 7:
                        log.append((m, ds, s, step, "valid_ioi", 0.01 * i))
                log += [(m, ds, s, steps, f"pos1_ioi_t{t}", 0.1) for t in range(10)]
    pd.DataFrame(cases, columns=CASE_COLS).to_csv(root / "cases.csv.gz", index=False)
    pd.DataFrame(cells, columns=CELL_COLS).to_csv(root / "cells.csv", index=False)
    pd.DataFrame(log, columns=["method", "dataset", "seed", "step", "metric", "value"]).to_csv(
        root / "train_log.csv", index=False)
    listed = ", ".join(f'"{m}"' for m in methods)
    (root / "config.toml").write_text(f'[run]\nmethods = [{listed}]\ndatasets = ["synthetic", "movielens"]\n'
                                      + display)
    return root


@pytest.fixture
def saved(monkeypatch):
    """Every figure the report saves, with the PNG path it was saved under."""
    kept: list[tuple[Path, object]] = []
    original = figures.save_figure

    def keep(fig, path, *args, **kwargs):
        kept.append((Path(path), fig))
        return original(fig, path, *args, **kwargs)

    monkeypatch.setattr(figures, "save_figure", keep)
    return kept


def _legend(fig) -> dict[str, object]:
    assert len(fig.legends) == 1, "one figure legend"
    leg = fig.legends[0]
    return {t.get_text(): h for t, h in zip(leg.get_texts(), leg.legend_handles)}


def _method_artists(fig):
    """``(method, artist)`` for every line and bar of the figure's panels; fails on a line that
    belongs to no method and is no decoration."""
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for line in ax.get_lines():
            gid = line.get_gid()
            assert gid is not None, f"a line without a method in panel {ax.get_title()!r}"
            if not gid.startswith("_"):
                out.append((gid, line))
        out += [(p.get_gid(), p) for p in ax.patches if isinstance(p, Rectangle) and p.get_gid()]
    return out


def _look(artist) -> tuple[str, str]:
    """Colour and marker (bars: hatch) of a drawn artist or legend handle."""
    if isinstance(artist, Line2D):
        marker = artist.get_marker()
        return to_hex(artist.get_color()), "" if marker in (None, "None", "", " ") else str(marker)
    return to_hex(artist.get_facecolor()), artist.get_hatch() or ""


def test_a_28_method_run_keeps_one_look_per_method_and_a_legend_entry_for_every_line(tmp_path, saved):
    run = make_run(tmp_path / "study", STUDY)
    write_report(run, style="paper", plots="all")
    assert sorted(p.name for p, _ in saved) == sorted([
        "metrics.png", "train_curves_synthetic.png", "train_all_synthetic.png", "train_curves_movielens.png",
        "train_all_movielens.png", "train_dynamics.png"])
    colour_of: dict[str, set[str]] = {}
    for path, fig in saved:
        legend = _legend(fig)
        drawn = _method_artists(fig)
        assert {m for m, _ in drawn} == set(STUDY), path.name          # every method drawn, nothing else
        assert set(legend) == set(STUDY), path.name                    # and each named once in the legend
        for method, artist in drawn:
            assert _look(artist) == _look(legend[method]), (path.name, method)   # drawn as its legend entry
            colour_of.setdefault(method, set()).add(_look(artist)[0])
            if isinstance(artist, Line2D):
                assert artist.get_linestyle() == legend[method].get_linestyle(), (path.name, method)
        looks = [_look(h) for h in legend.values()]
        assert len(set(looks)) == len(looks) == 28, path.name          # no two methods share colour and marker
        assert path.exists() and path.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    # one colour per method across every figure, the one its name gives
    assert all(len(c) == 1 for c in colour_of.values())
    assert {m: c.pop() for m, c in colour_of.items()} == {m: method_color(m) for m in STUDY}
    # more than MARKER_THRESHOLD methods: markers tell them apart in every figure
    assert len(STUDY) > MARKER_THRESHOLD and all(s.marker for s in method_styles(STUDY).values())


def test_a_methods_look_does_not_depend_on_the_grid(tmp_path, saved):
    a = make_run(tmp_path / "a", ["prorl", "naive-pg", "noise-pg"])
    b = make_run(tmp_path / "b", ["pop", "noise-pg", "naive-pg", "random", "prorl"])
    write_report(a, plots="summary")
    write_report(b, plots="summary")
    looks = {}
    for path, fig in saved:
        for method, artist in _method_artists(fig):
            looks.setdefault(method, set()).add(_look(artist))
    assert all(len(v) == 1 for v in looks.values()), looks
    assert looks["prorl"] == {(KNOWN["prorl"], "")} and looks["noise-pg"] == {("#000000", "")}


def test_display_colors_set_a_methods_colour_in_every_figure(tmp_path, saved):
    run = make_run(tmp_path / "run", ["prorl", "naive-pg"],
                   display='\n[display]\nprorl = "ProRL"\n"colors.prorl" = "#d62728"\n')
    (run / "metadata.json").write_text('{"methods": {"prorl": {"display": "ProRL"}}}')   # as the runner stores it
    write_report(run, plots="summary")
    for path, fig in saved:
        assert {m: _look(a)[0] for m, a in _method_artists(fig)} == {"prorl": "#d62728", "naive-pg": KNOWN["naive-pg"]}
        assert "ProRL" in _legend(fig)


def test_training_figure_has_at_most_eight_named_panels_with_bands_over_seeds(tmp_path, saved):
    run = make_run(tmp_path / "run", ["prorl", "naive-pg"])
    md = write_report(run, plots="summary")
    curves = [fig for path, fig in saved if path.name == "train_curves_synthetic.png"]
    assert len(curves) == 1
    axes = [ax for ax in curves[0].axes if ax.get_visible()]
    assert len(axes) <= MAX_PANELS
    titles = [ax.get_title() for ax in axes]
    keys = [k for k, _, _ in CURATED]
    assert titles[0] == "Sampled path length" and "KL to the reference policy" in titles
    assert not set(titles) & set(keys)                            # display names, not logged keys
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    assert all(len(ax.collections) == 2 for ax in axes)           # a ± std band per method (2 seeds)
    assert "mean over 2 seeds" in curves[0].get_suptitle()
    assert "- train_curves_synthetic.png" in md and "- train_curves_synthetic.pdf" in md
    assert not (run / "train_dynamics.png").exists() and not list(run.glob("train_all_*"))
    assert pd.read_csv(run / "train_log.csv")["metric"].nunique() == len(TRAIN_KEYS) + 1 + 10   # every key kept


@pytest.mark.parametrize("mode,expected", [
    ("none", []),
    ("summary", ["metrics", "train_curves_movielens", "train_curves_synthetic"]),
    ("all", ["metrics", "train_all_movielens", "train_all_synthetic", "train_curves_movielens",
             "train_curves_synthetic", "train_dynamics"]),
])
def test_plots_modes(tmp_path, mode, expected):
    run = make_run(tmp_path / "run", ["prorl", "naive-pg"])
    write_report(run, plots=mode)
    assert sorted(p.stem for p in run.glob("*.png")) == expected
    assert sorted(p.stem for p in run.glob("*.pdf")) == expected      # every figure has its PDF twin


def test_report_leaves_no_stray_files(tmp_path):
    run = make_run(tmp_path / "run", ["prorl", "naive-pg"])
    before = {p.name for p in run.iterdir()}
    write_report(run, style="paper", plots="summary")
    added = {p.name for p in run.iterdir()} - before
    assert all(p.rsplit(".", 1)[-1] in ("csv", "md", "tex", "png", "pdf") for p in added), added
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


def test_bad_plots_mode_is_a_one_line_error(tmp_path):
    from prorlbench.errors import ConfigError

    run = make_run(tmp_path / "run", ["prorl"])
    with pytest.raises(ConfigError, match="unknown --plots 'sumary'.*summary"):
        write_report(run, plots="sumary")


def test_a_run_whose_cells_all_failed_shows_the_columns_it_asked_for(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame([("m", "toy", 0, "sasrec", "sasrec", "failed", "boom", 0.0)],
                 columns=CELL_COLS).to_csv(run / "cells.csv", index=False)
    (run / "config.toml").write_text('[run]\nmethods = ["m"]\nmetrics = ["ctr", "ioi"]\nks = [5]\n')
    md = write_report(run, plots="none")
    header = next(ln for ln in md.splitlines() if ln.startswith("| Method"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["Method", "IoI ↑", "CTR ↑"]
    assert "K=5" in md and "K=1" not in md
