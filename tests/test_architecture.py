"""The shape of the house (docs/architecture.md): rooms, one-way imports, no circles, the toolkit.

The import graph is read from the source (``ast``), every import counted, also those inside
functions, so a lazy import cannot hide a circle or an upward step.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "prorlbench"
PLUGINS = ROOT / "plugins"

# The rooms of prorlbench/, lowest first; a module may import only from its own room or below.
ROOMS: list[tuple[str, tuple[str, ...]]] = [
    ("contract", ("prorlbench", "prorlbench.errors", "prorlbench.api", "prorlbench.config", "prorlbench.hookspecs")),
    ("console", ("prorlbench.console",)),
    ("folder", ("prorlbench.folder",)),
    ("seq", ("prorlbench.seq",)),
    ("toolkit", ("prorlbench.toolkit", "prorlbench.executors", "prorlbench.rl")),
    ("settings", ("prorlbench.settings",)),
    ("report", ("prorlbench.report",)),
    ("registry", ("prorlbench.plugins",)),
    ("engine", ("prorlbench.engine",)),
    ("study", ("prorlbench.study",)),
    ("entry", ("prorlbench.commands", "prorlbench.cli", "prorlbench.pyapi")),
]

# The one-way flow between the subpackages (and the faces at the top level): which rooms each may
# import. Each subpackage's __init__ docstring says the same in its "May import:" line.
CONTRACT = {"prorlbench", "prorlbench.errors", "prorlbench.api", "prorlbench.config"}
ALLOWED: dict[str, set[str]] = {
    "prorlbench.console": CONTRACT,
    "prorlbench.folder": CONTRACT | {"prorlbench.console"},
    "prorlbench.seq": CONTRACT | {"prorlbench.console", "prorlbench.folder"},
    "prorlbench.executors": CONTRACT | {"prorlbench.console", "prorlbench.folder"},
    "prorlbench.rl": CONTRACT | {"prorlbench.console", "prorlbench.folder", "prorlbench.seq"},
    "prorlbench.toolkit": CONTRACT | {"prorlbench.console", "prorlbench.folder", "prorlbench.seq",
                                      "prorlbench.executors"},
    "prorlbench.settings": CONTRACT | {"prorlbench.console", "prorlbench.folder", "prorlbench.seq"},
    "prorlbench.report": CONTRACT | {"prorlbench.folder", "prorlbench.settings"},
    "prorlbench.plugins": CONTRACT | {"prorlbench.hookspecs", "prorlbench.folder", "prorlbench.executors"},
    "prorlbench.engine": CONTRACT | {"prorlbench.hookspecs", "prorlbench.plugins", "prorlbench.console",
                                     "prorlbench.folder", "prorlbench.seq", "prorlbench.settings",
                                     "prorlbench.executors", "prorlbench.report"},
    "prorlbench.study": CONTRACT | {"prorlbench.console", "prorlbench.folder", "prorlbench.settings",
                                    "prorlbench.report", "prorlbench.engine", "prorlbench.executors"},
    "prorlbench.commands": CONTRACT | {"prorlbench.plugins", "prorlbench.console", "prorlbench.folder",
                                       "prorlbench.seq", "prorlbench.settings", "prorlbench.report",
                                       "prorlbench.engine", "prorlbench.study"},
}
# The top level holds only the package faces (what plugins and users import) and the entry modules.
FACES = {"__init__", "api", "hookspecs", "toolkit", "config", "errors", "plugins"}
ENTRIES = {"cli", "pyapi"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(CORE.rglob("*.py"))}


def imports_of(path: Path, name: str) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def core_graph() -> dict[str, set[str]]:
    mods = core_modules()
    return {n: {t for t in imports_of(p, n) if t in mods and t != n} for n, p in mods.items()}


def room_of(module: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(ROOMS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (i, len(p))
    assert best is not None, f"{module} is in no room of tests/test_architecture.py"
    return best[0]


def test_core_imports_no_plugin():
    bad = []
    for name, path in core_modules().items():
        for t in imports_of(path, name):
            if t.split(".")[0] in ("prorlbench_plugins", "plugins"):
                bad.append(f"{name} imports {t}")
    assert not bad, bad


def test_no_import_circle():
    graph = core_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            # A package importing its own submodule (prorlbench.report -> .build) is not a circle.
            if m.startswith(n + "."):
                continue
            if state.get(m) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_imports_go_down_only():
    up = [f"{a} ({ROOMS[room_of(a)][0]}) imports {b} ({ROOMS[room_of(b)][0]})"
          for a, targets in core_graph().items() for b in targets
          if room_of(b) > room_of(a) and not b.startswith(a + ".")]
    assert not up, up


def test_built_in_plugins_import_only_the_toolkit_and_api():
    allowed = {"prorlbench", "prorlbench.api", "prorlbench.toolkit", "prorlbench.hookimpl"}
    bad = []
    for path in sorted(PLUGINS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("prorlbench"):
                mod = node.module or ""
                ok = mod in allowed or (path.name == "rl_family.py" and mod.startswith("prorlbench.rl"))
                if mod == "prorlbench":
                    ok = all(a.name == "hookimpl" for a in node.names)
                if not ok:
                    bad.append(f"{path.relative_to(ROOT)}: from {mod} import ...")
            if isinstance(node, ast.Import) and any(a.name.startswith("prorlbench") for a in node.names):
                bad.append(f"{path.relative_to(ROOT)}: import {[a.name for a in node.names]}")
    assert not bad, bad


def test_toolkit_names_resolve():
    import prorlbench.toolkit as toolkit

    assert toolkit.__all__ and all(hasattr(toolkit, n) for n in toolkit.__all__)


def test_only_the_rl_library_and_the_rl_plugin_use_prorlbench_rl():
    users = [name for name, path in core_modules().items() if not name.startswith("prorlbench.rl")
             and any(t == "prorlbench.rl" or t.startswith("prorlbench.rl.") for t in imports_of(path, name))]
    assert not users, users


def test_architecture_page_has_the_flow_and_the_table():
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert "dataset ──> cases ──> simulator ──> method ──> paths ──> metrics ──> results ──> report" in text
    for kind in ("dataset", "simulator", "method", "metric", "estimator", "executor"):
        assert f"| {kind} |" in text, kind


def test_the_report_never_loads_the_registry():
    for path in sorted((CORE / "report").glob("*.py")):
        targets = imports_of(path, module_name(path))
        assert "prorlbench.plugins" not in targets, path


def test_legacy_metric_metadata_matches_the_built_in_metrics():
    """Folders without metadata.json are shown as the built-in metric plugin would show them."""
    from prorlbench.report import LEGACY
    from prorlbench_plugins.metrics.core import METRICS

    assert list(LEGACY.metrics) == [m.name for m in METRICS]
    for m in METRICS:
        info = LEGACY.metrics[m.name]
        assert (info.display, info.decimals, info.headline, info.higher_is_better) == (
            m.display, m.decimals, m.headline, m.higher_is_better), m.name


KNOWN_LARGE = {"prorlbench/rl/policy.py": "reworked on branch rl (issue 10); split it there"}


def test_modules_stay_under_15_kb():
    big = {str(p.relative_to(ROOT)): p.stat().st_size for base in (CORE, PLUGINS) for p in base.rglob("*.py")
           if p.stat().st_size > 15 * 1024}
    assert set(big) <= set(KNOWN_LARGE), {k: v for k, v in big.items() if k not in KNOWN_LARGE}


def unit_of(module: str) -> str:
    """The subpackage (or top-level module) ``module`` belongs to: prorlbench.engine.cell -> prorlbench.engine."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_the_top_level_holds_only_faces_and_entry_modules():
    top = {p.stem for p in CORE.glob("*.py")}
    assert top == FACES | ENTRIES, sorted(top ^ (FACES | ENTRIES))
    packages = {p.parent.name for p in CORE.glob("*/__init__.py")}
    assert packages == {u.split(".")[1] for u in ALLOWED if (CORE / u.split(".")[1]).is_dir()}, packages


def test_imports_between_rooms_follow_the_one_way_flow():
    bad = []
    for a, targets in core_graph().items():
        ua = unit_of(a)
        if ua not in ALLOWED:
            continue
        for b in targets:
            ub = unit_of(b)
            if ub != ua and ub not in ALLOWED[ua]:
                bad.append(f"{a} imports {b}: {ua} may import only {sorted(ALLOWED[ua])}")
    assert not bad, bad


def test_the_flow_has_no_circle_between_rooms():
    """ALLOWED itself is one-way: no room may import a room that may import it, directly or not."""
    def reach(u: str, seen: set[str]) -> set[str]:
        for v in ALLOWED.get(u, set()):
            if v not in seen:
                seen.add(v)
                reach(v, seen)
        return seen

    for u in ALLOWED:
        assert u not in reach(u, set()), u


def test_each_room_says_what_lives_there_and_what_it_may_import():
    import re

    for u, allowed in ALLOWED.items():
        path = CORE / u.split(".")[1] / "__init__.py"
        if not path.exists():
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        m = re.search(r"May import: (.*?)(?:\.|\n\(.*)\s*$", doc, re.S)
        assert m, (path, "no 'May import:' line")
        said = " ".join(m.group(1).split())
        named = set(re.findall(r"prorlbench\.\w+", said)) | {f"prorlbench.{w}" for w in re.findall(r"(?<![.\w])(\w+)(?=,|$| )", said)
                                                          if (CORE / w).is_dir() or (CORE / f"{w}.py").exists()}
        if "the contract" in said:
            named |= CONTRACT
        assert named == allowed, (path, sorted(named ^ allowed))


def test_architecture_page_shows_every_room_and_the_allowed_imports():
    """docs/architecture.md's tree has a line per room, and its "may import" table is ALLOWED."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text()
    for pkg in sorted(p.parent.name for p in CORE.glob("*/__init__.py")):
        assert re.search(rf"^   {pkg}/ ", text, re.M), f"no tree line for {pkg}/"
    shown = {}
    for m in re.finditer(r"^   (\w+) +-> ([\w, ]+?)(?: +\(.*\))?$", text, re.M):
        names = {w.strip() for w in m.group(2).split(",")}
        room = {f"prorlbench.{n}" for n in names - {"contract"}} | (CONTRACT if "contract" in names else set())
        shown[f"prorlbench.{m.group(1)}"] = room
    assert shown == ALLOWED
