"""Shared fixtures: one runs/cache folder per test session, so grids share pretrained models and parsers.

Two speeds: a test marked ``slow`` (pretraining, fine-tuning, notebooks, subprocesses) runs only in the full
suite (``make test``); the rest is the fast tier (``make test-fast``: pure functions, configuration, data
formats, statistics). A test that runs a grid (it uses ``shared_runs``) is slow without saying so.

In parallel (``make test``: pytest-xdist, ``--dist loadgroup``) every test that uses ``shared_runs`` runs in
one worker, so that the grids still share their pretrained models; the other tests spread over the rest.
"""
import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "shared_runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("shared_runs"))


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    """Point XLT_RUNS_DIR and XLT_CACHE_DIR at one session folder for every grid executed by the tests."""
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("session_runs")
    mp.setenv("XLT_RUNS_DIR", str(base / "runs"))
    mp.setenv("XLT_CACHE_DIR", str(base / "cache"))
    yield base
    mp.undo()
