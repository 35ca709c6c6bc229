"""Shared fixtures: one runs/cache folder per test session, so grids share pretrained models and parsers."""
import pytest


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    """Point XLT_RUNS_DIR and XLT_CACHE_DIR at one session folder for every grid executed by the tests."""
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("session_runs")
    mp.setenv("XLT_RUNS_DIR", str(base / "runs"))
    mp.setenv("XLT_CACHE_DIR", str(base / "cache"))
    yield base
    mp.undo()
