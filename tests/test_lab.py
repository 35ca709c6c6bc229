"""JupyterLab as the workbench: a real headless Chromium opens notebooks/01_pretrain.ipynb in JupyterLab,
runs every cell at `test` scale, and sees the last cell's output and the tqdm progress widget; it opens
notebooks/explore_languages.ipynb, runs it, switches its transformation dropdown and sees the view redrawn.

The notebook is copied into a temporary folder (JupyterLab autosaves what it runs, and the notebooks are
committed without outputs); runs and caches go to temporary folders too. Chromium and its driver are
Debian's (`.ci/run` installs them with apt-get when they are missing).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from xlt_helpers.config import REPO_ROOT

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
TOKEN = "xlt-lab-test"
NOTEBOOK = "01_pretrain.ipynb"
EXPLORE = "explore_languages.ipynb"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()),
    reason=f"{CHROMIUM} or {DRIVER} missing: install Debian's chromium and chromium-driver "
           "(`apt-get install -y chromium chromium-driver`, which .ci/run does)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free local port, serving a copy of notebooks/ (stopped afterwards)."""
    root = tmp_path / "notebooks"
    root.mkdir()
    for name in (NOTEBOOK, EXPLORE):
        shutil.copy(REPO_ROOT / "notebooks" / name, root / name)
    port = _free_port()
    env = {**os.environ, "XLT_RUNS_DIR": str(tmp_path / "runs"), "XLT_CACHE_DIR": str(tmp_path / "cache"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter_config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={TOKEN}", "--expose-app-in-browser",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None",
         "--LabApp.extension_manager=readonly", *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            assert server.poll() is None and time.time() < deadline, (tmp_path / "lab.log").read_text()[-3000:]
            time.sleep(0.5)
    yield url, root
    server.send_signal(signal.SIGINT)  # jupyter asks to confirm a first Ctrl-C; the second one stops it
    time.sleep(0.5)
    server.send_signal(signal.SIGINT)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    log.close()


def _browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))


def _wait(driver, script: str, timeout: float, what: str):
    """Poll ``script`` (JavaScript returning a value) until it is truthy; fail naming ``what``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _open_and_run_all(driver, url: str, notebook: str) -> None:
    """Open ``notebook`` in JupyterLab, wait for its kernel, and run all its cells."""
    driver.get(f"{url}/lab/tree/{notebook}?token={TOKEN}")
    _wait(driver, "return window.jupyterapp && document.querySelector('.jp-NotebookPanel .jp-Cell')", 120,
          "JupyterLab to open the notebook")
    _wait(driver, "const p = window.jupyterapp.shell.currentWidget;"
                  "return p && p.sessionContext && p.sessionContext.session && p.sessionContext.session.kernel"
                  " && p.sessionContext.session.kernel.status === 'idle'", 120, "the kernel to start")
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")


def test_lab_runs_the_pretraining_notebook_with_a_progress_widget(lab, tmp_path):
    url, root = lab
    driver = _browser(tmp_path / "chromium_profile")
    try:
        _open_and_run_all(driver, url, NOTEBOOK)
        last = ("const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')];"
                "const out = cells[cells.length - 1].querySelector('.jp-OutputArea-output');"
                "return out && out.innerText")
        text = _wait(driver, last, 300, "the last cell's output")
        assert "results.json" in text
        outputs = driver.execute_script("return [...document.querySelectorAll('.jp-OutputArea-output')]"
                                        ".map(e => e.innerText).join('\\n')")
        bars = driver.execute_script("return [...document.querySelectorAll('.widget-hprogress')].length")
        label = driver.execute_script("return [...document.querySelectorAll('.widget-hbox')].map(e => e.innerText)"
                                      ".join(' | ')")
        driver.execute_script("const bar = document.querySelector('.widget-hprogress');"
                              "if (bar) bar.scrollIntoView({block: 'center'})")
        time.sleep(0.5)
        driver.save_screenshot(str(tmp_path / "lab.png"))
        assert bars >= 1, "no tqdm progress widget rendered (ipywidgets missing from the kernel?)"
        assert "12/12" in label, label           # the bar reached the last of the test scale's 12 steps
        assert "Traceback" not in outputs and "Error" not in outputs, outputs[-2000:]
        assert (root.parent / "papermill_runs" / "scratch" / "pretrain" / "results.json").exists()
    finally:
        driver.quit()


def test_lab_redraws_an_exploration_notebook_when_its_transformation_changes(lab, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, root = lab
    driver = _browser(tmp_path / "chromium_profile")
    views = "const v = [...document.querySelectorAll('.widget-output')].map(e => e.innerText);"  # example, corpus
    try:
        _open_and_run_all(driver, url, EXPLORE)
        before = _wait(driver, views + "return v.length === 2 && v[0].includes('derived label') "
                                       "&& v[1].includes('overlap') && v", 300, "the example and corpus views")
        assert "T = translit+inv," in before[0] and "ᵀ" in before[0], before[0][:500]
        dropdown = driver.find_element(By.XPATH, "//div[contains(@class, 'widget-dropdown')]"
                                                 "[.//label[normalize-space()='transformation']]//select")
        Select(dropdown).select_by_visible_text("inv")
        after = _wait(driver, views + "return v[0].includes('T = inv,') && v[1].includes('T = inv') && v", 120,
                      "the views redrawn for inv")
        assert "ᵀ" not in after[0] and after[1] != before[1]        # Inversion alone keeps the script
        assert "1.000" in after[1] or "1.0" in after[1].split(), after[1][:500]  # every sub-word type shared
        driver.execute_script("document.querySelector('.widget-output').scrollIntoView({block: 'start'})")
        time.sleep(0.5)
        driver.save_screenshot(str(tmp_path / "explore.png"))
        outputs = driver.execute_script("return [...document.querySelectorAll('.jp-OutputArea-output')]"
                                        ".map(e => e.innerText).join('\\n')")
        assert "Traceback" not in outputs and "Error" not in outputs, outputs[-2000:]
    finally:
        driver.quit()
