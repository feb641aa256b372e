"""The user-defined estimator example of docs/rl.md, loaded exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

from prorlbench.config import build_config
from prorlbench.plugins import load_registry

from .fakes import make_ctx

DOC = Path(__file__).resolve().parents[2] / "docs" / "rl.md"


def example_source() -> str:
    text = DOC.read_text()
    section = text.split("## Writing your own estimator", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_doc_example_is_short():
    assert len(example_source().strip().splitlines()) < 30


def test_custom_estimator_from_plugins_dir_becomes_a_method(tmp_path):
    plugins = tmp_path / "my_plugins"
    plugins.mkdir()
    (plugins / "my_estimators.py").write_text(example_source())
    reg = load_registry(plugins_dirs=[plugins])
    assert not [f for f in reg.failures if "my_estimators" in f.plugin]
    assert "prorl-clipped" in reg.names("estimators")
    spec = reg.method("prorl-clipped")
    assert spec.family == "rl"
    cfg = build_config(spec.config_cls, {"d_model": 16, "n_layers": 1, "samples_per_case": 4, "batch_cases": 8,
                                         "epochs": 1, "sft_epochs": 1, "max_history": 6, "grad_var_every": 0})
    ctx = make_ctx(tmp_path / "cache", n_train=16)
    method = spec.factory(cfg)
    method.fit(ctx)
    assert len(ctx.logger.series("loss")) == 2
    out = method.generate(ctx.cases.test, 2)
    assert len(out) == len(ctx.cases.test) and all(len(c) == 2 for c in out)
    # the advantages really are clipped
    import torch
    from prorlbench.rl.estimators import AdvantageBatch

    est = reg.estimator("prorl-clipped")
    b = AdvantageBatch(rewards=torch.tensor([[[10.0, 0.0], [-10.0, 0.0]]]), n_items=torch.tensor([[1, 1]]),
                       stopped=torch.tensor([[True, True]]))
    assert est.estimate(b)[0, :, 0].tolist() == [2.0, -2.0]
