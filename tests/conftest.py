"""Shared fixtures.

Real city data is read in place from ``CAREBLOCKS_DATA_DIR`` (default ``../shared/data``).
When it is missing the tests that need it fail loudly (never skip): CI always has it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from careblocks.config import data_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from screenshot_map import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (one browser set-up: the map screenshots')


@pytest.fixture(scope="session")
def data() -> Path:
    """The real city data folder; fails (not skips) when it is missing."""
    d = data_dir()
    if not (d / "README.md").exists():
        pytest.fail(
            f"real city data not found at {d}: set CAREBLOCKS_DATA_DIR to the shared data folder",
            pytrace=False,
        )
    return d


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep network caches of tests out of the user's cache folder (one per session)."""
    cache = tmp_path_factory.getbasetemp() / "careblocks-cache"
    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(cache))
    # stage caches (timetable, catchments, selection, ...) off unless a test turns them on:
    # a test that patches a stage's code must not get another test's cached result
    monkeypatch.setenv("CAREBLOCKS_STAGE_CACHE", "0")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
