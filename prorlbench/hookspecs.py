"""Hook specifications: the whole plugin surface of prorlbench.

A plugin is a module (or object) with functions named like these hooks, decorated with
:data:`prorlbench.hookimpl`. Each hook receives a ``register`` callable and calls it once per
thing it provides, as in ``llm``::

    from prorlbench import hookimpl
    from prorlbench.api import MethodSpec

    @hookimpl
    def register_methods(register):
        register(MethodSpec(name="my-method", summary="...", factory=MyMethod, config_cls=MyConfig))

Every hook here is documented in ``docs/plugins.md`` and tested in ``tests/test_hooks.py``;
meta-tests fail when a hook is added without both.
"""

from __future__ import annotations

from typing import Callable, Mapping

import pluggy

from .api import DatasetSpec, EstimatorSpec, ExecutorSpec, MethodSpec, MetricSpec, SimulatorSpec

hookspec = pluggy.HookspecMarker("prorlbench")
hookimpl = pluggy.HookimplMarker("prorlbench")


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register dataset loaders: call ``register(DatasetSpec(...))`` once per dataset."""


@hookspec
def register_simulators(register: Callable[[SimulatorSpec], None]) -> None:
    """Register user simulators: call ``register(SimulatorSpec(...))`` once per simulator."""


@hookspec
def register_methods(register: Callable[[MethodSpec], None], estimators: Mapping[str, EstimatorSpec]) -> None:
    """Register proactive-recommendation methods: ``register(MethodSpec(...))``.

    ``estimators``: every registered advantage estimator by name (read-only; collected before
    this hook is called), so a method family can turn each into a method (the RL family plugin
    does). A plugin's hook may leave the argument out.
    """


@hookspec
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register per-path metrics: ``register(MetricSpec(...))``."""


@hookspec
def register_estimators(register: Callable[[EstimatorSpec], None]) -> None:
    """Register RL advantage estimators: ``register(EstimatorSpec(...))``.

    The RL family plugin turns each into a method of the same name (through the ``estimators``
    argument of ``register_methods``) that shares the RL trainer of :mod:`prorlbench.rl` and
    differs only in how each step's weight is formed.
    """


@hookspec
def register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register executors (where and how cells run): ``register(ExecutorSpec(...))``."""
