"""Method variants: ``[variants.NAME]`` tables (resolution, fingerprints, errors, listing)."""

from __future__ import annotations

import pytest

from prorlbench.cli import main
from prorlbench.errors import ConfigError
from prorlbench.executors import CellJob
from prorlbench.plugins import load_registry
from prorlbench.settings.runconfig import parse_config_text, write_toml
from prorlbench.engine.runner import resolve

CONFIG = """
[run]
methods = ["prorl", "prorl+position", "grpo+position"]
device = "cpu"

[methods.prorl]
epochs = 3

[variants."prorl+position"]
method = "prorl"
centering = "position"

[variants."grpo+position"]
method = "grpo"
centering = "position"
"""


def resolved(text=CONFIG):
    return resolve(parse_config_text(text, "run.toml"), load_registry())


def test_a_variant_is_its_base_with_the_base_table_then_its_keys():
    res = resolved()
    var, base = res.method_cfgs["prorl+position"], res.method_cfgs["prorl"]
    assert (var.centering, var.epochs) == ("position", 3)  # its key, and [methods.prorl]'s
    assert (base.centering, base.epochs) == ("global", 3)
    assert res.method_cfgs["grpo+position"].epochs == 10  # no [methods.grpo] table: the quick profile
    spec = res.registry.method("prorl+position")
    assert spec.family == "rl" and "centering=position" in spec.summary
    assert res.registry.providers[("methods", "prorl+position")] == "variants"


def test_variants_are_fingerprinted_by_full_config_and_base():
    res = resolved()
    fp = {m: res.fingerprint(CellJob(m, "synthetic", 0)) for m in res.cfg.methods}
    assert len(set(fp.values())) == 3
    other = resolved(CONFIG.replace('centering = "position"\n\n[variants."grpo', 'centering = "batch"\n\n[variants."grpo'))
    assert other.fingerprint(CellJob("prorl+position", "synthetic", 0)) != fp["prorl+position"]


def test_written_config_recreates_the_variants():
    res = resolved()
    again = resolve(parse_config_text(write_toml(res.config_document()), "config.toml"), load_registry())
    for m in res.cfg.methods:
        assert again.method_cfgs[m] == res.method_cfgs[m]
        assert again.fingerprint(CellJob(m, "synthetic", 0)) == res.fingerprint(CellJob(m, "synthetic", 0))


def test_a_variant_with_datasets_runs_on_those_only_and_keeps_them_in_config_toml():
    from prorlbench.commands.dryrun import dry_run
    from prorlbench.executors import expand_grid

    text = CONFIG.replace('[variants."grpo+position"]', 'datasets = ["movielens"]\n\n[variants."grpo+position"]')
    res = resolved(text)
    assert "datasets" not in {f for f in vars(res.method_cfgs["prorl+position"])}  # not a method key
    jobs = expand_grid(res.cfg.methods, ["synthetic", "movielens"], [0, 1], res.cfg.variants)
    assert [(j.method, j.dataset) for j in jobs if j.method == "prorl+position"] == [("prorl+position", "movielens")] * 2
    assert len(jobs) == 2 * 2 + 2 * 2 + 2
    again = parse_config_text(write_toml(res.config_document()), "config.toml")
    assert again.variants["prorl+position"]["datasets"] == ["movielens"]
    assert "prorl+position__synthetic__s0" not in dry_run(res.cfg, load_registry())


@pytest.mark.parametrize("table, message", [
    ('[variants.x]\ncentering = "position"', "needs method"),
    ('[variants.x]\nmethod = "prorll"', "did you mean 'prorl'"),
    ('[variants.grpo]\nmethod = "prorl"', "already a registered method"),
    ('[variants.x]\nmethod = "prorl"\ncenterin = "position"', "did you mean 'centering'"),
    ('[variants.x]\nmethod = "prorl"\ncentering = "local"', "centering must be one of"),
    ('[variants.x]\nmethod = "y"\n[variants.y]\nmethod = "prorl"', "itself a variant"),
    ('variants = 3', "must hold tables"),
    ('[variants.x]\nmethod = "prorl"\ndatasets = "synthetic"', "datasets must be a list"),
    ('[variants.x]\nmethod = "prorl"\ndatasets = ["synthetc"]', "did you mean 'synthetic'"),
])
def test_bad_variants_are_one_line_config_errors(table, message):
    with pytest.raises(ConfigError, match=message) as exc:
        text = '[run]\nmethods = ["prorl"]\ndevice = "cpu"\n' + table
        resolved(table + "\n" + text.replace(table, "") if table.startswith("variants =") else text)
    assert "\n" not in str(exc.value)


def test_list_methods_with_a_config_shows_its_variants(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text(CONFIG)
    assert main(["list", "methods", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prorl+position" in out and "prorl with centering=position (variant)" in out
    assert main(["list", "methods", "--config", str(tmp_path / "missing.toml")]) == 2


def test_readme_variant_example_resolves():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[variants." in b)
    res = resolved(block.replace("[run]\n", "[run]\ndevice = \"cpu\"\n"))
    assert res.method_cfgs["prorl+position"].centering == "position"
    assert list(res.method_cfgs) == ["noise-pg", "prorl", "prorl+position"]


def test_readme_and_docs_describe_every_protocol_switch():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme, rl = (root / "README.md").read_text(), (root / "docs" / "rl.md").read_text()
    for key in ("decode", "beam_width", "beam_length_norm", "sample_top_k", "sample_temperature", "kl",
                "warmup_frac", "weight_decay", "empty_paths", "centering", "reward_state", "per_dataset"):
        assert f"`{key}`" in readme and f"`{key}`" in rl, key
