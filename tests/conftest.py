"""Shared fixtures. Real face data is read in place from ../shared/data/real, never copied."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """../shared/data/real beside the checkout; the test skips when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real face data not found at {REAL_DATA}")
    return REAL_DATA


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With FACEBENCH_REQUIRE_REAL_DATA=1 (CI), a skipped `real_data` test fails instead: it must run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("real_data") and os.environ.get("FACEBENCH_REQUIRE_REAL_DATA") == "1":
        report.outcome = "failed"
        report.longrepr = f"real_data test skipped but FACEBENCH_REQUIRE_REAL_DATA=1: {report.longrepr}"
