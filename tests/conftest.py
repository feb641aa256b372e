"""Shared pytest fixtures."""

from __future__ import annotations

import os

# The tests use tiny models, for which one torch thread is fastest; on a shared 2-core machine two
# threads per process fight over the cores and made the suite many times slower. Set before torch
# is imported, so CLI subprocesses inherit it too. A user's own setting wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` next to the repository (real MovieLens and ProRL files); skips when absent."""
    path = SHARED_DATA.resolve()
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (a fresh clone has no ../shared/data)")
    return path
