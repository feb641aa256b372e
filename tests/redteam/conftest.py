"""The red-team suite (issue 25): each case attacks one rule of the benchmark and asserts the
exact behaviour (the error, the failed cell, the refused file), not only that nothing crashed.
Every test here is marked ``redteam``; CI runs them with the rest of the suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runner_support, trust_support


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.redteam)
