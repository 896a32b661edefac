# Two commands on a fresh machine:
#   make demo   set up .venv, then train LightGCN on MovieLens-100K and print its metrics
#   make test   set up .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; override e.g. TORCH_SPEC='torch==2.11.0' for another build.
TORCH_SPEC ?= torch==2.13.0
PIP = $(VENV)/bin/pip
PY = $(VENV)/bin/python
STAMP = $(VENV)/.pyg_recsys-installed

.PHONY: setup demo test test-full bench cuda-check clean

setup: $(STAMP)

$(STAMP): setup.py setup.cfg pyproject.toml $(wildcard csrc/*.cpp csrc/*.h csrc/ops/*.cpp csrc/ops/*.h csrc/ops/cpu/*.cpp csrc/ops/cpu/*.h csrc/ops/cuda/*.cu csrc/ops/cuda/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet "$(TORCH_SPEC)"
	MAX_JOBS=2 $(PIP) install --quiet --no-build-isolation -e ".[test,notebooks,text]"
	$(PY) -c "import pyg_recsys.typing as t; print('pyg_recsys extension:', 'built' if t.WITH_EXT else 'absent (' + str(t.EXT_ERROR) + ')')"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/pyg-recsys train lightgcn --dataset ml-100k --recipe demo --threads 2

test: setup
	$(PY) -m pytest -q -m "not slow"

test-full: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_sampler.py
	$(PY) benchmarks/bench_eval.py

# Compile check of the CUDA build (no GPU needed; skipped without nvcc): every
# .cpp syntax-checked with -DWITH_CUDA, every .cu compiled by nvcc for
# CUDA_ARCH (90: H100/H200), with setup.py's sources and flags.
CUDA_ARCH ?= 90
cuda-check: setup
	bash csrc/cuda_check.sh $(PY) $(CUDA_ARCH)

clean:
	rm -rf build *.egg-info pyg_recsys/_C*.so
