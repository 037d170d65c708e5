# The README's first two commands: `make demo` and `make test`. Both set up .venv from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-all bench clean

setup: $(STAMP)

# Re-run only when the pinned stack or the package's requirements change.
$(STAMP): constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "deepstation needs Python >= 3.10 (found $$($(PYTHON) --version)); set PYTHON=python3.x"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing torch (pinned) into $(VENV)"
	@$(PIP) torch 2>&1 | grep -v "is ignored" || true
	@$(PY) -W ignore -c 'import torch' || { echo "setup: torch did not install"; exit 1; }
	@echo "setup: installing deepstation and the pinned stack"
	@$(PIP) -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	@$(PY) -c 'import deepstation, sklearn, pydantic, rich' || { echo "setup: the stack did not install"; exit 1; }
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/deepstation train examples/digits.yaml

test: setup
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_loop.py
	$(PY) benchmarks/bench_cli.py

clean:
	rm -rf $(VENV) runs .pytest_cache
