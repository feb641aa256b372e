"""``prorl-json``: the guidance cases released with the ProRL paper, in its JSON split format.

Files are found by suffix in the data folder, whatever their prefix (``ml-1m.test`` ...):

* ``*.test``, ``*.val`` (required) and ``*.train`` (optional): a JSON list of cases
  ``{"inters": [raw item ids, oldest first], "proc_path": [raw ids ending with the target],
  "target": raw id (optional; must equal the last proc_path id), "user": raw id (optional)}``.
* ``*.datamaps`` (required): JSON maps; the catalog is ``raw_item_id2attribute`` (raw id ->
  attribute ids), falling back to the keys of ``item2id``. Titles come from ``itemid2title``
  (keyed by the ``item2id`` value).
* ``*.item`` (optional) is not needed and not read.
* ``*.sem_ids`` (optional): ProRL's semantic item IDs, a JSON object raw id -> list of codebook
  tokens (ML-1M: 3 tokens 0..255 plus a 4th that tells colliding items apart). When the folder
  holds one (or ``sem_ids`` names it), every catalog item must have a code, codes must be
  distinct and of one length; they become ``Interactions.item_codes`` (the ``semantic-id``
  policy uses them). ``sem_ids = "none"`` ignores the file.

Every item id of every case must be in the catalog. Dense ids follow the numeric order of the raw
ids; ``n_items`` is the whole catalog (3,043 items for ML-1M), not only the items seen in cases.

Cases: ``history = inters``, ``reference = proc_path`` (it ends with the target, SPEC section 1;
the reference path without the target is ``reference[:-1]``), ``target = proc_path[-1]``.
Cases are kept exactly as released (6,928 test cases for ML-1M), including the few whose target
also occurs in the history.

A split file whose cases carry no ``"target"`` (the shared ML-1M ``.val``) has natural next items
as targets, while the test targets were chosen low-ranked. Such a split (and a training split
carved from it) is not passed on as ready-made cases: the harness builds its cases from its
sequences with the rule every other dataset uses (SPEC section 4: a target at distance
2..max_path_len+1 after H that the simulator ranks worse than ``min_target_rank``), and a note
says so.

No ``*.train`` (the shared ML-1M copy has none): a training split is carved out of the validation
cases, by user when the cases carry ``"user"`` (else by case): a seeded ``train_fraction`` of
the validation users (default 0.5) becomes the training split, the rest stays validation.
A line in ``Interactions.notes`` says so.

Simulator sequences (``Interactions.sequences``): one per case, ``inters`` followed by
``proc_path``; the simulator trains on the training cases' sequences only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prorlbench import hookimpl
from prorlbench.api import Case, DatasetSpec, Interactions
from prorlbench.toolkit import ConfigError, DataError, opt

from ._tables import natural_key, read_text, resolve_dir


@dataclass(frozen=True)
class ProrlJsonConfig:
    """Where the ProRL split files live and how a missing training split is carved."""

    data_dir: str | None = opt(None, "folder with *.val, *.test, *.datamaps [*.train]; else --data-dir")
    prefix: str | None = opt(None, "file prefix (e.g. 'ml-1m') when the folder holds several datasets")
    train_fraction: float = opt(0.5, "share of validation users carved into training when *.train is absent")
    seed: int = opt(0, "seed of that carve")
    sem_ids: str | None = opt(None, "semantic-ID file in the data folder (default: the only *.sem_ids there, "
                              "if any); 'none': do not load codes")

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"datasets.prorl-json: train_fraction must be in (0, 1), got {self.train_fraction}")


def _find(folder: Path, suffix: str, prefix: str | None, required: bool) -> Path | None:
    if prefix:
        p = folder / f"{prefix}.{suffix}"
        if p.is_file():
            return p
        if required:
            raise DataError(p, "file not found")
        return None
    found = sorted(p for p in folder.glob(f"*.{suffix}") if p.is_file())
    if not found:
        if required:
            raise DataError(folder, f"no *.{suffix} file in the data folder (need *.val, *.test, *.datamaps)")
        return None
    if len(found) > 1:
        raise DataError(folder, f"several *.{suffix} files ({', '.join(f.name for f in found[:5])}); "
                                "set [datasets.prorl-json] prefix")
    return found[0]


def _load_json(path: Path) -> Any:
    text = read_text(path, "utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except RecursionError:
        raise DataError(path, "malformed JSON: nested too deeply") from None


def _raw_id(x: Any) -> str | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return str(x)
    if isinstance(x, str) and x.strip():
        return x.strip()
    return None


def _read_datamaps(path: Path) -> tuple[list[str], dict[str, frozenset[int]] | None, dict[str, str]]:
    dm = _load_json(path)
    if not isinstance(dm, dict):
        raise DataError(path, "expected a JSON object of maps (raw_item_id2attribute, item2id, ...)")
    a2 = dm.get("raw_item_id2attribute")
    i2 = dm.get("item2id")
    if isinstance(a2, dict) and a2:
        attrs: dict[str, frozenset[int]] | None = {}
        for raw, labels in a2.items():
            if not isinstance(labels, list) or any(isinstance(a, bool) or not isinstance(a, int) for a in labels):
                raise DataError(path, f"raw_item_id2attribute[{raw!r}] must be a list of integer attribute ids")
            attrs[str(raw).strip()] = frozenset(labels)
        catalog = list(attrs)
    elif isinstance(i2, dict) and i2:
        attrs = None
        catalog = [str(k).strip() for k in i2]
    else:
        raise DataError(path, "needs a non-empty 'raw_item_id2attribute' or 'item2id' map")
    titles: dict[str, str] = {}
    t2 = dm.get("itemid2title")
    if isinstance(i2, dict) and isinstance(t2, dict):
        for raw, internal in i2.items():
            title = t2.get(str(internal))
            if isinstance(title, str):
                titles[str(raw).strip()] = title
    return sorted(set(catalog), key=natural_key), attrs, titles


def _read_cases(path: Path, dense: dict[str, int], dm_name: str, split: str) -> list[Case]:
    data = _load_json(path)
    if not isinstance(data, list):
        raise DataError(path, "expected a JSON list of cases")
    if not data:
        raise DataError(path, "no cases")
    out = []
    for k, c in enumerate(data):
        where = f"case #{k}"
        if not isinstance(c, dict):
            raise DataError(path, f"{where}: expected an object with 'inters' and 'proc_path'")
        inters, proc = c.get("inters"), c.get("proc_path")
        if not isinstance(inters, list) or not inters:
            raise DataError(path, f"{where}: 'inters' must be a non-empty list of item ids")
        if not isinstance(proc, list) or not proc:
            raise DataError(path, f"{where}: 'proc_path' must be a non-empty list of item ids ending with the target")
        ids = []
        for x in list(inters) + list(proc):
            raw = _raw_id(x)
            if raw is None:
                raise DataError(path, f"{where}: item id {str(x)[:40]!r} is not a string or integer")
            if raw not in dense:
                raise DataError(path, f"{where}: item {raw!r} is not in {dm_name}")
            ids.append(dense[raw])
        hist, ref = tuple(ids[: len(inters)]), tuple(ids[len(inters):])
        if "target" in c:
            t = _raw_id(c["target"])
            if t is None or t not in dense:
                raise DataError(path, f"{where}: target {str(c['target'])[:40]!r} is not in {dm_name}")
            if dense[t] != ref[-1]:
                raise DataError(path, f"{where}: target {t!r} is not the last item of proc_path")
        user = _raw_id(c.get("user")) or ""
        out.append(Case(history=hist, target=ref[-1], reference=ref, user=user, case_id=f"{split}:{k}"))
    return out


def _read_sem_ids(path: Path, catalog: list[str]) -> tuple[tuple[int, ...], ...]:
    """Codes of the catalog items, in dense order; every item needs one, all distinct, one length."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object raw item id -> list of codebook tokens")
    codes: list[tuple[int, ...]] = []
    for raw in catalog:
        code = data.get(raw)
        if (not isinstance(code, list) or not code
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in code)):
            what = "no code" if code is None else f"a malformed code {code!r:.40}"
            raise DataError(path, f"item {raw!r} of the catalog has {what} (need a list of tokens >= 0)")
        codes.append(tuple(code))
    if len({len(c) for c in codes}) > 1:
        raise DataError(path, f"codes of different lengths {sorted({len(c) for c in codes})}")
    if len(set(codes)) < len(codes):
        seen: dict[tuple[int, ...], str] = {}
        for raw, c in zip(catalog, codes):
            if c in seen:
                raise DataError(path, f"items {seen[c]!r} and {raw!r} share the code {list(c)}")
            seen[c] = raw
    return tuple(codes)


def _has_targets(path: Path) -> bool:
    """Whether the split file's cases carry a ``target`` (read from the first case)."""
    data = _load_json(path)
    return bool(data) and isinstance(data[0], dict) and "target" in data[0]


def _carve(cases: list[Case], fraction: float, seed: int) -> tuple[list[Case], list[Case], str]:
    rng = np.random.default_rng(seed)
    if all(c.user for c in cases):
        users = sorted({c.user for c in cases}, key=natural_key)
        n_train = min(len(users) - 1, max(1, int(round(fraction * len(users))))) if len(users) > 1 else 0
        chosen = {users[i] for i in rng.permutation(len(users))[:n_train]}
        train = [c for c in cases if c.user in chosen]
        how = f"{len(chosen)} of {len(users)} validation users"
    else:
        n_train = min(len(cases) - 1, max(1, int(round(fraction * len(cases))))) if len(cases) > 1 else 0
        chosen_idx = set(int(i) for i in rng.permutation(len(cases))[:n_train])
        train = [c for i, c in enumerate(cases) if i in chosen_idx]
        chosen = None
        how = f"{len(train)} of {len(cases)} validation cases"
    valid = [c for i, c in enumerate(cases) if (c.user not in chosen if chosen is not None else i not in chosen_idx)]
    return train, valid, how


def load(cfg: ProrlJsonConfig, data_dir: Path | None = None) -> Interactions:
    """Load the ProRL split files (see the module docstring)."""
    folder = resolve_dir(cfg.data_dir, data_dir, "prorl-json")
    dm_path = _find(folder, "datamaps", cfg.prefix, True)
    val_path = _find(folder, "val", cfg.prefix, True)
    test_path = _find(folder, "test", cfg.prefix, True)
    train_path = _find(folder, "train", cfg.prefix, False)
    assert dm_path and val_path and test_path
    catalog, attrs, titles = _read_datamaps(dm_path)
    dense = {raw: k for k, raw in enumerate(catalog)}
    valid = _read_cases(val_path, dense, dm_path.name, "valid")
    test = _read_cases(test_path, dense, dm_path.name, "test")
    targeted = {"valid": _has_targets(val_path), "test": _has_targets(test_path)}
    notes = []
    if train_path is not None:
        train = _read_cases(train_path, dense, dm_path.name, "train")
        targeted["train"] = _has_targets(train_path)
    else:
        train, valid, how = _carve(valid, cfg.train_fraction, cfg.seed)
        targeted["train"] = targeted["valid"]
        notes.append(f"prorl-json: no *.train file in {folder}: the training split is {how} from "
                     f"{val_path.name} (train_fraction={cfg.train_fraction:g}, seed={cfg.seed}); "
                     f"{len(train)} training and {len(valid)} validation cases remain")
    prefix = dm_path.name[: -len(".datamaps")]
    item_codes = None
    if (cfg.sem_ids or "").lower() != "none":
        sem_path = folder / cfg.sem_ids if cfg.sem_ids else _find(folder, "sem_ids", None, False)
        if sem_path is not None:
            if not sem_path.is_file():
                raise DataError(sem_path, "file not found (datasets.prorl-json sem_ids)")
            item_codes = _read_sem_ids(sem_path, catalog)
            notes.append(f"prorl-json: semantic IDs from {sem_path.name} ({len(item_codes[0])} tokens per item)")
    cases = {"train": train, "valid": valid, "test": test}
    notes.append(f"prorl-json: {len(catalog)} items, cases: {len(train)} train, {len(valid)} valid, {len(test)} test")
    rebuilt = [s for s in cases if not targeted[s]]
    if rebuilt:
        notes.append(f"prorl-json: the {', '.join(rebuilt)} cases carry no target (natural next items); "
                     "their targets are rebuilt with the case rule of every other dataset "
                     "(ranked worse than min_target_rank under the simulator)")
    return Interactions(
        name=f"prorl-{prefix}",
        n_items=len(catalog),
        sequences={s: [c.history + c.reference for c in cs] for s, cs in cases.items()},
        users={s: [c.user for c in cs] for s, cs in cases.items()},
        item_ids=tuple(catalog),
        item_attributes=tuple(attrs[raw] for raw in catalog) if attrs is not None else None,
        item_names=tuple(titles.get(raw, "") for raw in catalog) if titles else (),
        cases={s: cs for s, cs in cases.items() if targeted[s]},
        item_codes=item_codes,
        notes=tuple(notes),
    )


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="prorl-json",
        summary="ProRL's released guidance cases (JSON *.val/*.test/*.datamaps, e.g. ML-1M) from --data-dir",
        load=load,
        config_cls=ProrlJsonConfig,
        needs_data_dir=True,
    ))
