"""Issue 12, "clean errors instead of tracebacks": bad input is one line on stderr and exit 2,
rejected when the config is read (before anything trains)."""

from __future__ import annotations

import textwrap

import pytest

from prorlbench.api import MethodSpec
from prorlbench.cli import main
from prorlbench.plugins import load_registry
from prorlbench_plugins.datasets.csv_data import CsvConfig, load as load_csv

from runner_support import write_fakes

TINY = textwrap.dedent('''
    [run]
    methods = ["pop"]
    [datasets.synthetic]
    n_users = 60
    n_items = 40
    seq_len = 14
    [simulators.sasrec]
    epochs = 1
    hidden = 8
    n_layers = 1
    inner = 16
''')


def _run(tmp_path, capsys, monkeypatch, toml: str, *extra: str) -> tuple[int, str]:
    monkeypatch.setenv("PRORLBENCH_PLUGINS", "synthetic,sasrec,simple_baselines,metrics,rl_family")
    cfg = tmp_path / "run.toml"
    cfg.write_text(toml)
    cache = tmp_path / "cache"
    code = main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--cache-dir", str(cache),
                 "--device", "cpu", "--no-progress", "--quiet", *extra])
    err = capsys.readouterr().err
    return code, err


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("prorlbench: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("table, key, value, needle", [
    ("simulators.sasrec", "lr", "nan", "finite"),
    ("methods.sft", "sft_lr", "nan", "finite"),
    ("methods.prorl", "lr", "inf", "finite"),
    ("simulators.sasrec", "hidden", "3", "divisible by n_heads"),
    ("simulators.sasrec", "epochs", "0", "epochs"),
    ("datasets.synthetic", "seq_len", "1", "seq_len"),
    ("datasets.synthetic", "n_users", "100000000000000000000", "n_users"),
])
def test_invalid_values_are_refused_when_the_config_is_read(tmp_path, capsys, monkeypatch, table, key,
                                                            value, needle):
    base = "".join(ln for ln in TINY.splitlines(keepends=True) if not ln.startswith(f"{key} = "))
    toml = base.replace(f"[{table}]\n", f"[{table}]\n{key} = {value}\n") if f"[{table}]" in base \
        else base + f"\n[{table}]\n{key} = {value}\n"
    code, err = _run(tmp_path, capsys, monkeypatch, toml)
    _one_line_error(code, err, table, needle)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pt"))


def test_table_of_a_method_not_in_the_run_is_validated(tmp_path, capsys, monkeypatch):
    code, err = _run(tmp_path, capsys, monkeypatch, TINY + "\n[methods.prorl]\nlr = -1.0e400\n")
    _one_line_error(code, err, "methods.prorl", "lr")
    code, err = _run(tmp_path, capsys, monkeypatch, TINY + "\n[methods.random]\nnot_a_key = 1\n")
    _one_line_error(code, err, "methods.random", "not_a_key")


def test_huge_k_is_refused(tmp_path, capsys, monkeypatch):
    code, err = _run(tmp_path, capsys, monkeypatch, TINY.replace("[run]\n", "[run]\nks = [1000000]\n"))
    _one_line_error(code, err, "ks", "at most")


def test_cache_dir_that_is_a_file(tmp_path, capsys, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    code, err = _run(tmp_path, capsys, monkeypatch, TINY)
    _one_line_error(code, err, "cache", "is a file")


def test_toml_with_a_byte_order_mark_is_accepted(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PLUGINS", "synthetic,sasrec,simple_baselines,metrics")
    from prorlbench.settings.runconfig import read_config_file

    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + TINY.encode())
    assert read_config_file(p).methods == ["pop"]


def test_csv_item_ids_like_superscript_two_load(tmp_path):
    rows = ["user,item,timestamp"]
    for u in range(6):
        for t, item in enumerate(["\u00b2", "\u00b3", "7", "x", "10", "2", "٣", "a", "b", "c", "d", "e"]):
            rows.append(f"{u},{item},{t}")
    p = tmp_path / "d.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = load_csv(CsvConfig(path=str(p), min_seq_len=12))
    assert data.n_items == 12 and "\u00b2" in data.item_ids
    assert data.item_ids[:2] == ("2", "7")  # numeric ids first, numerically


class _NotASpec:
    from prorlbench import hookimpl

    @staticmethod
    @hookimpl
    def register_methods(register):
        register("not a spec")


class _NotADataclass:
    from prorlbench import hookimpl

    @staticmethod
    @hookimpl
    def register_methods(register):
        class Cfg:
            lr = 1.0

        register(MethodSpec(name="plain-cfg", summary="", factory=lambda c: None, config_cls=Cfg))


def test_bad_registrations_are_plugin_failures_not_crashes(monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PLUGINS", "metrics")
    reg = load_registry([], extra_plugins=[("bad1", _NotASpec), ("bad2", _NotADataclass)])
    errors = {f.plugin: f.error for f in reg.failures}
    assert "expects MethodSpec, got str" in errors["bad1"]
    assert "config_cls must be a dataclass" in errors["bad2"]
    assert "plain-cfg" not in reg.specs["methods"]


ASSERTING = textwrap.dedent('''
    from dataclasses import dataclass
    from prorlbench import hookimpl
    from prorlbench.api import MethodSpec
    from prorlbench.config import opt

    @dataclass
    class Cfg:
        width: int = opt(1, "a width")

        def __post_init__(self):
            assert self.width > 0, "width must be positive"

    @hookimpl
    def register_methods(register):
        register(MethodSpec(name="asserting", summary="", factory=lambda c: None, config_cls=Cfg))
''')


def test_assertion_in_a_config_post_init_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "asserting.py").write_text(ASSERTING)
    code, err = _run(tmp_path, capsys, monkeypatch,
                     TINY.replace('methods = ["pop"]', 'methods = ["asserting"]') + "\n[methods.asserting]\nwidth = 0\n",
                     "--plugins-dir", str(plug))
    _one_line_error(code, err, "methods.asserting", "width must be positive")


def test_name_collision_after_sanitising_is_refused_naming_both_plugins(tmp_path, monkeypatch):
    """Item 7: 'first items' and 'first-items' would share cell files; one would vanish."""
    from prorlbench.plugins import DuplicateNameError

    monkeypatch.setenv("PRORLBENCH_PLUGINS", "simple_baselines,metrics")
    src = textwrap.dedent('''
        from prorlbench import hookimpl
        from prorlbench.api import MethodSpec
        from prorlbench_plugins.methods.simple import SimpleConfig as Cfg

        @hookimpl
        def register_methods(register):
            register(MethodSpec(name=NAME, summary="", factory=lambda c: None, config_cls=Cfg))
    ''')
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "a_spaced.py").write_text(src.replace("NAME", repr("first items")))
    (plug / "b_dashed.py").write_text(src.replace("NAME", repr("first-items")))
    with pytest.raises(DuplicateNameError) as err:
        load_registry([plug])
    msg = str(err.value)
    assert "'first items'" in msg and "'first-items'" in msg
    assert "a_spaced.py" in msg and "b_dashed.py" in msg
