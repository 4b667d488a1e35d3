# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint format clean bench bench-gpu

$(VENV)/.installed-base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed-base

$(VENV)/.installed-bench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[bench]'
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(PY) examples/quickstart.py

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check mlc ir backends tests examples benchmarks
	$(VENV)/bin/ruff format --check mlc ir backends tests examples benchmarks

test: $(VENV)/.installed-test lint
	$(PY) -m pytest -n 2 tests
	$(PY) -m pytest -q --doctest-modules mlc ir backends

# mlc against NumPy, numexpr, Numba, jax.jit (and torch.compile if installed): benchmarks/README.md.
# Extra flags go through BENCH_ARGS, e.g. `make bench BENCH_ARGS="--quick --only gelu"`.
bench: $(VENV)/.installed-bench
	$(PY) -m benchmarks.run $(BENCH_ARGS)
bench-gpu: $(VENV)/.installed-bench
	$(PY) -m benchmarks.gpu $(BENCH_ARGS)

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format mlc ir backends tests examples benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
