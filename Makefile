# The README's first two commands: `make demo` (the main job) and `make test`.
# Both create .venv and install linrec with what it needs; nothing else must be installed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := test,testing,bench,model,dask,xarray,docs

.PHONY: venv demo train test lint nvcc-check bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m linrec demo

train: $(STAMP)
	$(PY) -m linrec train

lint: $(STAMP)
	$(PY) -m ruff check linrec tests benchmarks

test: $(STAMP) lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/cpu_scan.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
