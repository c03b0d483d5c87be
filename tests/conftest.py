"""Shared fixtures. Real face data is read in place from ../shared/data/real, never copied."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """../shared/data/real beside the checkout; skips when absent, fails instead when CI requires it."""
    if not REAL_DATA.is_dir():
        if os.environ.get("FACEBENCH_REQUIRE_REAL_DATA") == "1":
            pytest.fail(f"FACEBENCH_REQUIRE_REAL_DATA=1 but {REAL_DATA} does not exist")
        pytest.skip(f"real face data not found at {REAL_DATA}")
    return REAL_DATA
