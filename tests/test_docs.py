"""Documentation meta-tests: every hook is documented with its signature, and the README's
commands are the ones CI runs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from prorlbench import hookspecs

ROOT = Path(__file__).resolve().parents[1]


def hooks() -> dict[str, inspect.Signature]:
    return {n: inspect.signature(f) for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
            if getattr(f, "prorlbench_spec", None) is not None}


def test_every_hook_is_documented_with_its_signature():
    text = (ROOT / "docs" / "plugins.md").read_text()
    assert hooks()
    for name, sig in hooks().items():
        params = ", ".join(sig.parameters)
        heading = f"### `{name}({params})`"
        assert heading in text, f"docs/plugins.md lacks a section '{heading}'"


def test_plugin_docs_cover_discovery():
    text = (ROOT / "docs" / "plugins.md").read_text()
    for needle in ("--plugins-dir", "PRORLBENCH_PLUGINS", "[project.entry-points.prorlbench]",
                   "prorlbench list", "registered twice"):
        assert needle in text, needle


def test_readme_quick_start_matches_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    install = "pip install -e '.[test]'"
    test = "python -m pytest -q"
    assert install in readme and test in readme and "prorlbench run --methods random,pop" in readme
    assert install in ci and test in ci
    assert re.search(r"set -euo pipefail", ci)
    assert "docs/plugins.md" in readme


def test_ci_script_is_valid_bash():
    import subprocess

    ci = ROOT / ".ci" / "run"
    assert ci.stat().st_mode & 0o111, ".ci/run must be executable"
    subprocess.run(["bash", "-n", str(ci)], check=True)
