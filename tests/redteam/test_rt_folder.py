"""Red team, issue 25 item 4: a results folder is data, never code.

Each case attacks one rule and asserts the exact behaviour: the one-line error and its exit code,
that no file was written outside the folders a run owns, and that no code named by a folder was
imported (a plugin file that would write a marker when imported; the marker must not exist).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from prorlbench.cli import main

from runner_support import BUILTINS_FOR_FAKES, cli_env, fake_env, write_fakes

EVIL = textwrap.dedent('''
    from pathlib import Path
    Path({marker!r}).write_text("imported")
''')


@pytest.fixture
def env(tmp_path, monkeypatch):
    return fake_env(tmp_path, monkeypatch)


def run_args(env, *extra: str) -> list[str]:
    root, plug, cfg = env
    return ["run", "--config", str(cfg), "--plugins-dir", str(plug), "--quiet", "--no-progress",
            "--device", "cpu", "--out", str(root / "out"), "--methods", "random", *extra]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("prorlbench: error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def finished_run(env, capsys) -> Path:
    assert main(run_args(env)) == 0
    capsys.readouterr()
    return env[0] / "out"


def plant_evil(env) -> Path:
    """A plugin file in the folder the run's config.toml names: importing it writes a marker."""
    root, plug, _ = env
    marker = root / "IMPORTED"
    (plug / "evil.py").write_text(EVIL.format(marker=str(marker)))
    return marker


# --------------------------------------------------------------------------------------------
# paths / rescore / report never import code or write caches a folder names
# --------------------------------------------------------------------------------------------


def test_paths_imports_no_plugin_the_folder_names(env, capsys):
    out = finished_run(env, capsys)
    marker = plant_evil(env)
    assert main(["paths", str(out), "--method", "random"]) == 0
    captured = capsys.readouterr()
    assert not marker.exists()
    assert f"this folder was made with plugins from {env[1].resolve()}; pass --plugins-dir " \
           f"{env[1].resolve()} to load them" in captured.err
    assert "random / tinyfake / seed 0: case 0 of 12" in captured.out


def test_paths_loads_plugins_given_on_the_command_line(env, capsys):
    out = finished_run(env, capsys)
    assert main(["paths", str(out), "--method", "random", "--plugins-dir", str(env[1])]) == 0
    captured = capsys.readouterr()
    assert "was made with plugins" not in captured.err
    assert "item titles unavailable" not in captured.out  # the dataset loaded with the given plugins


def test_rescore_imports_no_plugin_the_folder_names(env, capsys):
    out = finished_run(env, capsys)
    marker = plant_evil(env)
    before = (out / "summary.csv").read_bytes()
    assert main(["rescore", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert f"this folder was made with plugins from {env[1].resolve()}" in err
    assert "prorlbench: error: unknown dataset 'tinyfake'" in err
    assert (out / "summary.csv").read_bytes() == before
    # given on the command line, the same plugins load (the user's own choice) and it re-scores
    assert main(["rescore", str(out), "--no-progress", "--plugins-dir", str(env[1])]) == 0
    assert marker.exists() and (out / "summary.csv").read_bytes() == before


def test_rescore_writes_no_cache_the_folder_names(env, capsys):
    out = finished_run(env, capsys)
    elsewhere = env[0] / "elsewhere-cache"
    text = (out / "config.toml").read_text()
    (out / "config.toml").write_text(text.replace("[run]\n", f"[run]\ncache_dir = {str(elsewhere)!r}\n"
                                                  f"tensorboard = {str(env[0] / 'tb')!r}\n", 1))
    assert main(["rescore", str(out), "--no-progress", "--plugins-dir", str(env[1])]) == 0
    assert not elsewhere.exists() and not (env[0] / "tb").exists()
    assert (env[0] / "cache").is_dir()  # PRORLBENCH_CACHE_DIR, as for run


# --------------------------------------------------------------------------------------------
# names from a config become file names through one rule that cannot collide
# --------------------------------------------------------------------------------------------


def _variants_config(env, body: str) -> Path:
    root, _, cfg = env
    p = root / "names.toml"
    p.write_text(cfg.read_text() + textwrap.dedent(body))
    return p


def test_method_variants_differing_by_space_and_dash_are_refused(env, capsys):
    cfg = _variants_config(env, '''
        [variants."rp x"]
        method = "random"
        [variants."rp-x"]
        method = "random"
    ''')
    args = run_args(env)
    args[args.index("--config") + 1] = str(cfg)
    args[args.index("--methods") + 1] = "rp x,rp-x"
    assert main(args) == 2
    assert one_line_error(capsys) == ("prorlbench: error: methods 'rp x' and 'rp-x' give the same file name "
                                      "'rp-x'; rename one")
    assert not (env[0] / "out").exists()


def test_dataset_variants_differing_by_space_and_dash_are_refused(env, capsys):
    cfg = _variants_config(env, '''
        [datasets."tiny path"]
        plugin = "tinyfake"
        [datasets.tiny-path]
        plugin = "tinyfake"
    ''')
    args = run_args(env, "--datasets", "tiny path,tiny-path")
    args[args.index("--config") + 1] = str(cfg)
    assert main(args) == 2
    assert one_line_error(capsys) == ("prorlbench: error: datasets 'tiny path' and 'tiny-path' give the same "
                                      "file name 'tiny-path'; rename one")


def test_names_differing_only_by_case_are_refused(env, capsys):
    cfg = _variants_config(env, '''
        [variants.RP]
        method = "random"
        [variants.rp]
        method = "random"
    ''')
    args = run_args(env)
    args[args.index("--config") + 1] = str(cfg)
    args[args.index("--methods") + 1] = "RP,rp"
    assert main(args) == 2
    assert one_line_error(capsys) == ("prorlbench: error: methods 'RP' and 'rp' give the same file name "
                                      "on a case-insensitive file system ('rp'); rename one")


def test_method_and_dataset_names_that_join_into_one_cell_are_refused(env, capsys):
    cfg = _variants_config(env, '''
        [variants."random__x"]
        method = "random"
        [datasets."x__tinyfake"]
        plugin = "tinyfake"
    ''')
    args = run_args(env, "--datasets", "tinyfake,x__tinyfake")
    args[args.index("--config") + 1] = str(cfg)
    args[args.index("--methods") + 1] = "random,random__x"
    assert main(args) == 2
    assert one_line_error(capsys) == ("prorlbench: error: cells random__x / tinyfake / seed 0 and random / "
                                      "x__tinyfake / seed 0 share the file name 'random__x__tinyfake__s0'; "
                                      "rename a method or a dataset")


@pytest.mark.parametrize("name", ["../../escaped", "ABS/escaped", "back\\slash"])
def test_dataset_variant_names_that_are_paths_are_refused(env, capsys, name):
    """A variant named like a path would put its simulator cache outside the cache folder."""
    root = env[0]
    name = name.replace("ABS", str(root / "abs"))  # an absolute name, inside this test's folder
    cfg = _variants_config(env, f"""
        [datasets.'{name}']
        plugin = "tinyfake"
    """)
    args = run_args(env, "--datasets", name)
    args[args.index("--config") + 1] = str(cfg)
    assert main(args) == 2
    sep = "/" if "/" in name else "\\"
    assert one_line_error(capsys) == (f"prorlbench: error: datasets: {name!r} holds {sep!r}; a name may not "
                                      "hold a path separator, rename it")
    assert not list(root.parent.glob("escaped*")) and not (root / "abs").exists()
    assert not (root / "out").exists()
    assert not (root / "cache").exists() or not any((root / "cache").iterdir())


def test_safe_names_keep_their_file_names():
    """Committed results folders keep working: an already-safe name maps to itself."""
    from prorlbench.folder.results import cell_name

    assert cell_name("prorl+semid", "prorl-json", 2) == "prorl+semid__prorl-json__s2"
    assert cell_name("shortest-path", "ml-1m.v2", 0) == "shortest-path__ml-1m.v2__s0"


# --------------------------------------------------------------------------------------------
# the run writes no file through a symlink it did not make
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["cells", ".lock", "run.log"])
def test_symlink_in_the_output_folder_is_refused(env, capsys, what):
    root = env[0]
    out = root / "out"
    out.mkdir()
    target = root / "outside"
    if what == "cells":
        target.mkdir()
    else:
        target.write_text("keep me\n")
    (out / what).symlink_to(target)
    assert main(run_args(env)) == 2
    assert one_line_error(capsys) == (f"prorlbench: error: {out / what}: is a symbolic link; prorlbench writes "
                                      "no file through a link it did not make (remove it, or choose another --out)")
    if what == "cells":
        assert list(target.iterdir()) == []
    else:
        assert target.read_text() == "keep me\n"


def test_dangling_lock_link_creates_nothing(env, capsys):
    root = env[0]
    out = root / "out"
    out.mkdir()
    (out / ".lock").symlink_to(root / "created-through-link")
    assert main(run_args(env)) == 2
    assert "is a symbolic link" in one_line_error(capsys)
    assert not (root / "created-through-link").exists()


def test_report_all_cells_refuses_a_symlinked_lock(env, capsys):
    out = finished_run(env, capsys)
    target = env[0] / "outside"
    target.write_text("keep me\n")
    (out / ".lock").unlink(missing_ok=True)
    (out / ".lock").symlink_to(target)
    assert main(["report", str(out), "--all-cells"]) == 2
    assert one_line_error(capsys).endswith("is a symbolic link; prorlbench writes no file through a link it "
                                           "did not make (remove it, or choose another --out)")
    assert target.read_text() == "keep me\n"


def test_report_replaces_a_symlinked_table_instead_of_writing_through_it(env, capsys):
    out = finished_run(env, capsys)
    for name in ("summary.md", "metrics.png"):
        target = env[0] / f"outside-{name}"
        target.write_text("keep me\n")
        (out / name).unlink()
        (out / name).symlink_to(target)
    assert main(["report", str(out)]) == 0
    for name in ("summary.md", "metrics.png"):
        assert (env[0] / f"outside-{name}").read_text() == "keep me\n"
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0


# --------------------------------------------------------------------------------------------
# data paths must be regular files
# --------------------------------------------------------------------------------------------


def _limited() -> None:  # a child that would read /dev/zero whole cannot take the machine down
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def _data_run(tmp_path: Path, dataset_table: str, dataset: str) -> subprocess.CompletedProcess:
    plug, cfg = write_fakes(tmp_path)
    (tmp_path / "data.toml").write_text(cfg.read_text().replace('datasets = ["tinyfake"]', f'datasets = ["{dataset}"]')
                                        + textwrap.dedent(dataset_table))
    args = ["run", "--config", str(tmp_path / "data.toml"), "--plugins-dir", str(plug), "--methods", "random",
            "--quiet", "--device", "cpu", "--out", str(tmp_path / "out")]
    return subprocess.run([sys.executable, "-m", "prorlbench.cli", *args],
                          env=cli_env(BUILTINS_FOR_FAKES + ",csv,movielens", cache=tmp_path / "cache"),
                          capture_output=True, text=True, timeout=60, preexec_fn=_limited)


def test_dev_zero_as_a_data_path_is_refused(tmp_path):
    r = _data_run(tmp_path, '[datasets.csv]\npath = "/dev/zero"\n', "csv")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("prorlbench: error: /dev/zero: not a regular file (a character device); "
                                "data paths must name regular files or folders")


def test_fifo_as_a_data_path_is_refused(tmp_path):
    fifo = tmp_path / "ratings.csv"
    os.mkfifo(fifo)
    r = _data_run(tmp_path, f'[datasets.csv]\npath = "{fifo}"\n', "csv")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"prorlbench: error: {fifo}: not a regular file (a FIFO); "
                                "data paths must name regular files or folders")


def test_fifo_inside_a_data_folder_is_refused_by_the_loader(tmp_path):
    """A folder is fingerprinted by its regular files; the loader refuses a FIFO it would read."""
    folder = tmp_path / "ml"
    folder.mkdir()
    os.mkfifo(folder / "u.data")
    (folder / "u.item").write_text("1|A|01-Jan-1995||x|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n")
    r = _data_run(tmp_path, f'[datasets.movielens]\ndata_dir = "{folder}"\n', "movielens")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"prorlbench: error: {folder / 'u.data'}: not a regular file (a FIFO); "
                                "data paths must name regular files or folders")



def test_a_data_name_that_is_a_path_stays_in_the_cache(tmp_path):
    """A dataset plugin's data name (prorl-json's is ``prorl-<prefix>``, from the config) names
    cache files of the RL family: it goes through the one file-name rule."""
    from types import SimpleNamespace

    from prorlbench.rl.config import RLConfig
    from prorlbench.rl.semantic_ids import build_codes
    from prorlbench.rl.sft import sft_cache_path

    name = "prorl-/../../../escaped"
    ctx = SimpleNamespace(data=SimpleNamespace(n_items=5, name=name), cases=SimpleNamespace(train=(), valid=()),
                          seed=0, simulator_name="s", simulator=None, cache_dir=tmp_path / "cache")
    path = sft_cache_path(ctx, RLConfig(), 4)
    assert path.parent == tmp_path / "cache" / "rl_sft" and path.name.startswith("sft-prorl--..-..-..-escaped-s0-")
    build_codes([(0, 1, 2), (1, 2, 3)], 5, n_codebooks=1, codebook_size=2, svd_dim=2, cache_dir=tmp_path / "cache",
                name=name)
    made = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert len(made) == 1 and made[0].parts[:2] == ("cache", "semantic_ids"), made
    assert made[0].name.startswith("codes-prorl--..-..-..-escaped-")
