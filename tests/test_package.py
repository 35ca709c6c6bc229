"""The package: no global side effects on import, offline kernels, and a build installed into a fresh virtual
environment that holds only its core dependencies.

The fresh environment is made without the network: a new venv whose site-packages links exactly the
distributions the wheel's core requirements need (their own requirements followed, as installed here: the
tested set of requirements.txt), then the wheel installed with pip (``--no-index --no-deps``). What it
proves: the package builds from the checkout; the wheel carries what the CLI needs (package data, the step
notebooks, the ``xlt`` command); every module imports, and ``xlt --help`` and a config resolution run, with
the core dependencies alone (no undeclared import, optional parts stay lazy); ``pip check`` finds the
metadata consistent; every declared range (core and extras) admits the tested version installed here, so
``pip install ".[lab]"`` into this environment installs nothing new. It does not prove that PyPI resolves
the ranges online, nor that the oldest version of each range works.
"""
import json
import os
import shutil
import subprocess
import sys
import venv
from importlib.metadata import Distribution, distributions
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from xlt_helpers.grid import notebooks
from xlt_helpers.config import OFFLINE_ENV, REPO_ROOT, data_dir

HF_SWITCHES = ("HF_", "TRANSFORMERS_")


def test_importing_the_toolkit_leaves_the_hugging_face_switches_alone():
    env = {k: v for k, v in os.environ.items() if not k.startswith(HF_SWITCHES)}
    env["HF_HUB_OFFLINE"] = "0"  # a user's own setting
    code = ("import json, os\n"
            "def hf(): return {k: v for k, v in os.environ.items() if k.startswith(('HF_', 'TRANSFORMERS_'))}\n"
            "before = hf()\n"
            "import xlt_helpers, xlt_helpers.__main__, xlt_helpers.grid.run, xlt_helpers.experiment, "
            "xlt_helpers.loading, xlt_helpers.data\n"
            "from huggingface_hub import constants\n"
            "print(json.dumps([before, hf(), constants.HF_HUB_OFFLINE]))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    before, after, hub_offline = json.loads(out.stdout)
    assert before == after == {"HF_HUB_OFFLINE": "0"} and hub_offline is False


def test_the_kernels_of_a_grid_are_offline_unless_xlt_online(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                          "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell('out = ""', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import json, os\njson.dump({k: os.environ.get(k) for k in "
                                          f"{sorted(OFFLINE_ENV)!r}}}, open(out, 'w'))")]
    nbformat.write(nb, tmp_path / "env.ipynb")
    monkeypatch.setattr(notebooks, "NOTEBOOKS", tmp_path)
    for key in (*OFFLINE_ENV, "XLT_ONLINE"):
        monkeypatch.delenv(key, raising=False)
    notebooks.execute_notebook("env.ipynb", tmp_path / "offline.ipynb", {"out": str(tmp_path / "offline.json")})
    assert json.loads((tmp_path / "offline.json").read_text()) == OFFLINE_ENV
    assert not any(k in os.environ for k in OFFLINE_ENV)  # the runner's own process is unchanged
    monkeypatch.setenv("XLT_ONLINE", "1")
    notebooks.execute_notebook("env.ipynb", tmp_path / "online.ipynb", {"out": str(tmp_path / "online.json")})
    assert json.loads((tmp_path / "online.json").read_text()) == {k: None for k in OFFLINE_ENV}


# ---- a fresh environment with the core dependencies only ------------------------------------------------------

SOURCES = ("pyproject.toml", "README.md", "xlt_helpers", "notebooks")  # what a build reads


def build_wheel(out: Path) -> Path:
    """The package's wheel, built from a copy of the checkout's sources (a build writes into its source
    folder) with this environment's setuptools: no download."""
    src = out / "src"
    src.mkdir(parents=True)
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO_ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(src)], check=True, env=clean_env())
    return next(out.glob("xlt_helpers-*.whl"))


def clean_env() -> dict[str, str]:
    """This process's environment without what points Python at the checkout (PYTHONPATH) or another venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def wheel_requirements(wheel: Path) -> list[Requirement]:
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(name).decode()
    from email.parser import Parser

    return [Requirement(r) for r in Parser().parsestr(text).get_all("Requires-Dist") or []]


def installed() -> dict[str, Distribution]:
    """This environment's distributions by canonical name (the tested set)."""
    return {canonicalize_name(d.metadata["Name"]): d for d in distributions()}


def closure(requirements: list[Requirement], extras: tuple[str, ...] = ()) -> dict[str, Distribution]:
    """The installed distributions ``requirements`` need (markers evaluated here; ``extras``: of the package
    itself), following each one's own requirements."""
    have, out = installed(), {}
    todo = [r for r in requirements if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ("", *extras))]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in out:
            continue
        if name not in have:
            raise LookupError(f"{req} is not installed here")
        out[name] = have[name]
        for dep in map(Requirement, have[name].requires or []):
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(dep)
    return out


def fresh_environment(root: Path, dists: dict[str, Distribution], wheel: Path) -> Path:
    """A new venv (pip from the standard library's bundle) whose site-packages links the files of ``dists``,
    with ``wheel`` installed by pip; returns its bin folder."""
    venv.create(root, with_pip=True)
    site = Path(subprocess.run([str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}  # with .dist-info
        for top in tops:
            if (base / top).exists() and not (site / top).exists():
                (site / top).symlink_to(base / top)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
                   check=True, env=clean_env())
    return root / "bin"


@pytest.mark.slow
def test_the_package_runs_in_a_fresh_environment_with_its_core_dependencies_only(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    requirements = wheel_requirements(wheel)
    have = installed()
    for req in requirements:  # every declared range admits the tested version (extras not installed: skipped)
        name = canonicalize_name(req.name)
        if name in have:
            assert have[name].version in req.specifier, f"{req} excludes the tested {have[name].version}"
    assert {"lab", "syntax", "ray", "test"} <= {str(m).split('"')[1] for r in requirements if (m := r.marker)}

    core = closure(requirements)
    assert not {"ray", "ufal-udpipe", "jupyterlab", "pytest", "selenium"} & set(core)
    bin_dir = fresh_environment(tmp_path / "venv", core, wheel)
    env = clean_env()
    env.update(XLT_RUNS_DIR=str(tmp_path / "runs"), XLT_CACHE_DIR=str(tmp_path / "cache"), XLT_DATA_DIR=str(data_dir()))

    def run(*cmd: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)

    check = run(bin_dir / "python", "-m", "pip", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    where = run(bin_dir / "python", "-c", "import xlt_helpers; print(xlt_helpers.__file__)")
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stderr  # the wheel's copy, not the checkout
    helped = run(bin_dir / "xlt", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: xlt") and "run" in helped.stdout
    cfg = run(bin_dir / "xlt", "config", "test", "--set", "pretrain.steps=3")
    assert cfg.returncode == 0, cfg.stderr
    assert json.loads(cfg.stdout)["preset"] == "test" and json.loads(cfg.stdout)["pretrain"]["steps"] == 3
    # every module imports with the core dependencies alone; the optional ones are not there
    code = ("import importlib, pkgutil, xlt_helpers\n"
            "from xlt_helpers.config import notebooks_dir\n"
            "names = [m.name for m in pkgutil.walk_packages(xlt_helpers.__path__, 'xlt_helpers.')]\n"
            "[importlib.import_module(n) for n in names]\n"
            "print(len(names), sorted(p.name for p in notebooks_dir().glob('*.ipynb'))[0])\n")
    imported = run(bin_dir / "python", "-c", code)
    assert imported.returncode == 0, imported.stderr
    n_modules, first_notebook = imported.stdout.split()
    assert int(n_modules) > 30 and first_notebook == "01_pretrain.ipynb"
    for optional in ("ray", "ufal.udpipe", "jupyterlab", "pytest"):
        assert run(bin_dir / "python", "-c", f"import {optional}").returncode != 0
    status = run(bin_dir / "xlt", "status", REPO_ROOT / "papermill_runs" / "grids" / "test.yaml")
    assert status.returncode == 0 and status.stdout.startswith("pending"), status.stderr
