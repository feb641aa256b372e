"""One test per hook of prorlbench/hookspecs.py (a meta-test below keeps it that way).

Each test registers a thing through the hook exactly as a plugin would, with a plugin object passed
to ``load_registry(extra_plugins=...)``, and checks the registry hands it back by name with its
provider.
"""

from __future__ import annotations

import inspect
import sys
import types
from dataclasses import dataclass

import pytest
import torch

from prorlbench import hookimpl, hookspecs
from prorlbench.api import (DatasetSpec, EstimatorSpec, ExecutorSpec, Interactions, MethodSpec, MetricSpec,
                            SimulatorSpec)
from prorlbench.config import opt
from prorlbench.errors import UnknownNameError
from prorlbench.plugins import load_registry


@dataclass
class EmptyConfig:
    size: int = opt(1, "unused")


def _registry(hook: str, *specs, also=()):
    def impl(register):
        for s in specs:
            register(s)

    impl.__name__ = hook
    plugin = types.SimpleNamespace(**{hook: hookimpl(impl)})
    return load_registry(extra_plugins=[("test-plugin", plugin), *also], use_entry_points=False)


def test_register_datasets():
    spec = DatasetSpec(name="d1", summary="a dataset", config_cls=EmptyConfig,
                       load=lambda cfg, data_dir: Interactions(name="d1", n_items=2, sequences={"train": [(0, 1)]}))
    reg = _registry("register_datasets", spec)
    assert reg.dataset("d1") is spec and reg.providers[("datasets", "d1")] == "test-plugin"
    assert reg.dataset("d1").load(EmptyConfig(), None).n_items == 2
    with pytest.raises(UnknownNameError, match="did you mean 'd1'"):
        reg.dataset("d11")


def test_register_simulators():
    spec = SimulatorSpec(name="s1", summary="a simulator", build=lambda *a, **k: None, config_cls=EmptyConfig,
                         learned=False)
    reg = _registry("register_simulators", spec)
    assert reg.simulator("s1") is spec and not reg.simulator("s1").learned
    assert reg.names("simulators") == ["s1"]


def test_register_methods():
    a = MethodSpec(name="m-a", summary="a", factory=lambda cfg: None, config_cls=EmptyConfig)
    b = MethodSpec(name="m-b", summary="b", factory=lambda cfg: None, config_cls=EmptyConfig, family="rl")
    reg = _registry("register_methods", a, b)
    assert reg.names("methods") == ["m-a", "m-b"] and reg.method("m-b").family == "rl"


def test_register_metrics():
    spec = MetricSpec(name="mean-len", summary="path length", compute=lambda scores: scores.lengths.float(),
                      higher_is_better=None)
    reg = _registry("register_metrics", spec)
    assert reg.metric("mean-len") is spec and reg.metric("mean-len").higher_is_better is None


def test_register_estimators():
    from prorlbench_plugins.methods import rl_family  # the plugin that makes estimators methods

    spec = EstimatorSpec(name="my-estimator", summary="constant weights",
                         estimate=lambda batch: torch.ones(1, 1, 1), centered=False)
    reg = _registry("register_estimators", spec, also=[("rl_family", rl_family)])
    assert reg.estimator("my-estimator") is spec
    # An estimator is also a method of the same name that shares the RL trainer.
    method = reg.method("my-estimator")
    assert method.family == "rl" and reg.providers[("methods", "my-estimator")] == "test-plugin"


def test_register_methods_receives_every_estimator():
    est = EstimatorSpec(name="e1", summary="an estimator", estimate=lambda batch: torch.ones(1, 1, 1))
    seen = {}

    @hookimpl
    def register_methods(register, estimators):
        seen.update(estimators)
        for name in estimators:
            register(MethodSpec(name=f"{name}-method", summary="from an estimator",
                                factory=lambda cfg: None, config_cls=EmptyConfig))

    plugin = types.SimpleNamespace(register_methods=register_methods)
    reg = load_registry(extra_plugins=[("methods-plugin", plugin), ("est-plugin", types.SimpleNamespace(
        register_estimators=hookimpl(lambda register: register(est))))], use_entry_points=False)
    assert seen == {"e1": est} and reg.names("methods") == ["e1-method"]
    assert reg.providers[("methods", "e1-method")] == "methods-plugin"


class _ListExecutor:
    name = "list"

    def run(self, jobs, work, where):
        for job in jobs:
            yield work(job)


def test_register_executors(tmp_path):
    from prorlbench.executors import CellJob, ExecutorContext, make_executor
    from prorlbench.folder.results import CellStatus

    spec = ExecutorSpec(name="list", summary="in order, in this process", factory=_ListExecutor)
    reg = _registry("register_executors", spec)
    assert reg.executor("list") is spec and reg.providers[("executors", "list")] == "test-plugin"
    assert reg.names("executors") == ["list", "local", "ray"]  # the built-ins are listed too
    ex = make_executor("list", {n: s.factory for n, s in reg.specs["executors"].items()})

    def work(job):
        return CellStatus(job.method, job.dataset, job.seed, "sim", "sim", "ok")

    got = list(ex.run([CellJob("m", "d", 0), CellJob("m", "d", 1)], work, ExecutorContext(folder=tmp_path)))
    assert [(s.seed, s.status) for s in got] == [(0, "ok"), (1, "ok")]
    with pytest.raises(Exception, match="registered twice"):
        _registry("register_executors", ExecutorSpec(name="local", summary="x", factory=_ListExecutor))


def test_a_hook_with_a_wrong_argument_name_is_a_listed_failure():
    def register_methods(registr):  # typo in the argument name
        pass

    plugin = types.SimpleNamespace(register_methods=hookimpl(register_methods))
    reg = load_registry(extra_plugins=[("typo-plugin", plugin)], use_entry_points=False)
    assert [f.plugin for f in reg.failures] == ["typo-plugin"]


def test_an_unknown_hook_is_a_listed_failure():
    def register_widgets(register):
        pass

    plugin = types.SimpleNamespace(register_widgets=hookimpl(register_widgets))
    reg = load_registry(extra_plugins=[("widgets", plugin)], use_entry_points=False)
    assert "unknown hook(s) register_widgets" in reg.failures[0].error


# --------------------------------------------------------------------------------------------
# meta-test
# --------------------------------------------------------------------------------------------


def hook_names() -> list[str]:
    return sorted(n for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
                  if getattr(f, "prorlbench_spec", None) is not None)


def test_every_hook_has_a_test():
    assert hook_names(), "no hook specs found"
    tests = [n for n, f in inspect.getmembers(sys.modules[__name__], inspect.isfunction) if n.startswith("test_")]
    missing = [h for h in hook_names() if not any(h in t for t in tests)]
    assert not missing, f"hooks without a test in tests/test_hooks.py: {missing}"
