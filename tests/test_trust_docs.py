"""docs/reliability.md and the README's "When things go wrong" match the code: every command and
option they name exists."""

from __future__ import annotations

import re
from pathlib import Path

from prorlbench.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _options(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {o for a in sub._actions for o in a.option_strings}


def test_documented_commands_and_options_exist():
    text = (ROOT / "docs" / "reliability.md").read_text() + (ROOT / "README.md").read_text()
    uses = re.findall(r"prorlbench (run|rescore|paths|report|list)\b([^\n`]*)", text)
    assert {c for c, _ in uses} >= {"run", "rescore", "paths"}
    for command, rest in uses:
        for flag in re.findall(r"(--[a-z][a-z-]+)", rest):
            assert flag in _options(command), (command, flag)
    for flag in ("--cell-timeout", "--wait"):
        assert flag in _options("run") and flag in text
    for key in ("cell_timeout", "wait"):
        assert f"[run] {key}" in text


def test_readme_links_the_reliability_page():
    assert "docs/reliability.md" in (ROOT / "README.md").read_text()
