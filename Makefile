# The README's first two commands: `make train` (the main job) and `make test`.
# Both create .venv and install linrec with every extra it needs; nothing else must be
# installed beforehand (Python 3.10+ with venv and pip).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := test,testing,bench,model,dask,xarray,docs,peers,data
# The CPU build of PyTorch (a local wheel on this project's machines); a bare `torch`
# requirement would otherwise pull a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: venv train demo digits evaluate test test-gpu-stand-in lint nvcc-check bench gpu-wheels docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

train: $(STAMP)
	$(PY) -m linrec train

demo: $(STAMP)
	$(PY) -m linrec demo

evaluate: $(STAMP)
	$(PY) -m linrec evaluate

digits: $(STAMP)
	$(PY) -m linrec digits

lint: $(STAMP)
	$(PY) -m ruff check linrec tests benchmarks
	$(VENV)/bin/lint-imports

# Two pytest workers, one test file each at a time (pytest-xdist): most of a fresh
# clone's test time is Numba compiling kernels on one thread, so a second worker takes
# it from 32 to 24 minutes on the project's 2-core machine (one run each, 2026-12-02).
# The gufuncs compile at import and are cached on disk: built first in one process, since
# two workers building them at once can write mismatched cache files and crash the next
# import (Numba issue 10128, a fresh clone's CI run on 2026-12-03).
test: $(STAMP) lint
	$(PY) -c "import linrec.cpu.gufuncs"
	$(PY) -m pytest -q -n 2 --dist loadfile --doctest-modules linrec/cpu/kernels.py \
		linrec/cpu/gufuncs.py tests
	$(MAKE) test-gpu-stand-in

# The GPU suite rehearsed on the CPU stand-in for CuPy (tests/fake_cupy); 4 fake SMs make
# the plans cut long rows into segments early and keep the channel tests small.
test-gpu-stand-in: $(STAMP)
	LINREC_FAKE_CUPY=1 LINREC_FAKE_CUPY_SMS=4 $(PY) -m pytest -q -p no:cacheprovider \
		tests/test_fake_cupy.py tests/test_cuda_gpu.py tests/test_small_path.py

nvcc-check: $(STAMP)
	$(PY) -m pytest -q tests/test_cuda_compile.py tests/test_cuda_emulated.py

bench: $(STAMP)
	$(PY) benchmarks/cpu_scan.py
	$(PY) benchmarks/cpu_sweep.py

# Wheels of the pure-Python packages the GPU machine lacks (Python 3.12, no network),
# carried there in .whl/ and installed by benchmarks/gpu_check.sh; see docs/cuda.md.
GPU_WHEELS := array-api-compat==1.16.0 accelerated-scan==0.3.1 pytest-timeout==2.4.0
gpu-wheels: $(STAMP)
	rm -rf .whl
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--platform manylinux2014_x86_64 --dest .whl $(GPU_WHEELS)

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis docs/_build .whl
