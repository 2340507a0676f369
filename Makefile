# The README's first two commands: `make train` (the main job) and `make test`.
# Both create .venv and install linrec with every extra it needs; nothing else must be
# installed beforehand (Python 3.10+ with venv and pip).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := test,testing,bench,model,dask,xarray,docs

.PHONY: venv train demo digits test lint nvcc-check bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

train: $(STAMP)
	$(PY) -m linrec train

demo: $(STAMP)
	$(PY) -m linrec demo

digits: $(STAMP)
	$(PY) -m linrec digits

lint: $(STAMP)
	$(PY) -m ruff check linrec tests benchmarks
	$(VENV)/bin/lint-imports

test: $(STAMP) lint
	$(PY) -m pytest -q --doctest-modules linrec/cpu/kernels.py linrec/cpu/gufuncs.py tests

nvcc-check: $(STAMP)
	$(PY) -m pytest -q tests/test_cuda_compile.py tests/test_cuda_emulated.py

bench: $(STAMP)
	$(PY) benchmarks/cpu_scan.py
	$(PY) benchmarks/cpu_sweep.py

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis docs/_build
