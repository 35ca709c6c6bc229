# Two commands do everything on a fresh clone: `make report` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
GRID   ?= papermill_runs/grids/default.yaml
PYTEST ?= -q
JOBS   ?= auto

.PHONY: setup report test test-fast bench bench-data gpu-check lab clean-runs

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

setup: $(VENV)/.installed

## Run the default grid (English, demo scale) and render papermill_runs/reports/<grid>/report.html
report: setup
	$(PY) -m xlt_helpers run $(GRID)

## The whole suite (what CI runs): unit and property tests, plus a papermill execution of every notebook at
## `test` scale, in parallel on the available cores (pytest-xdist; JOBS=1 runs it in one process)
test: setup
	$(PY) -m pytest -n $(JOBS) --dist loadgroup $(PYTEST)

## The fast tier, about a minute: pure functions, configuration, data formats, statistics (no test marked slow)
test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST)

## Training, evaluation and transformation throughput against a plain transformers baseline
bench: setup
	$(PY) benchmarks/bench_train.py

## Pretraining-corpus preparation, before and after streaming, on a corpus far larger than the staged one
bench-data: setup
	$(PY) benchmarks/bench_data.py

## A few hundred pretraining steps of each GPU scale on one CUDA GPU (refuses without one)
gpu-check: setup
	$(PY) benchmarks/gpu_check.py

## JupyterLab on notebooks/ with the project's kernel (python3 of the virtual environment)
lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean-runs:
	rm -rf papermill_runs/test papermill_runs/demo papermill_runs/reports
