"""The documents a resolved run writes: ``<out>/config.toml`` (:func:`config_document`).

Split out of :mod:`prorlbench.engine.resolve` (``Resolved.config_document`` calls it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import to_dict
from ..folder.configpaths import absolute_paths
from ..folder.tomlwriter import Table
from .dsvariants import BASE_KEY
from .runconfig import NOT_WRITTEN, PLUGIN_TABLES, RUN_KEYS
from .variants import variants_document


def config_document(res: Any) -> dict[str, Any]:
    """The content of ``<out>/config.toml``: the resolved run and every plugin config used."""
    run = {k: getattr(res.cfg, k) for k in RUN_KEYS if k not in NOT_WRITTEN}
    run["eval_simulators"] = list(res.eval_simulators)
    run["metrics"] = [m.name for m in res.metrics]
    run["plugins_dirs"] = [str(Path(p).resolve()) for p in res.cfg.plugins_dirs]
    if res.cfg.data_dir:  # absolute, so the file re-creates the run from any folder
        run["data_dir"] = str(Path(res.cfg.data_dir).expanduser().resolve())
    doc: dict[str, Any] = Table(run=Table(run))
    doc["datasets"] = Table({n: Table(({BASE_KEY: res.dataset_bases[n]} if n in res.dataset_bases else {})
                                      | absolute_paths(to_dict(c))) for n, c in res.dataset_cfgs.items()})
    doc["simulators"] = Table({n: Table(to_dict(c)) for n, c in res.simulator_cfgs.items()})
    doc["methods"] = Table({n: Table(to_dict(c)) for n, c in res.method_cfgs.items()})
    doc["cases"] = Table(to_dict(res.cases_cfg))
    doc.update(variants_document(res.cfg.variants, res.method_cfgs))
    if res.cfg.display:
        doc["display"] = Table(dict(res.cfg.display))
    # Tables of plugins this run did not use are kept as given (already validated), so that
    # `prorlbench rescore --eval-simulator NAME` finds the user's [simulators.NAME].
    for kind in PLUGIN_TABLES:
        for name, table in res.cfg.plugin_tables.get(kind, {}).items():
            if name not in doc[kind]:
                doc[kind][name] = Table(dict(table))
    return doc

