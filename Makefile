# The README's first two commands: `make demo` and `make test`. Both set up .venv from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
STAMP  := $(VENV)/.installed

.PHONY: setup setup-speech setup-r setup-postgres demo test test-all bench clean

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
	@$(PY) -c 'import deepstation, sklearn, pydantic, rich, sktime, statsmodels, soundfile, mlflow, sqlalchemy, ray.train.torch, ray.serve, onnxruntime, onnxscript, jupyterlab, nbclient' || { echo "setup: the stack did not install"; exit 1; }
	@command -v espeak-ng >/dev/null || $(MAKE) --no-print-directory setup-speech
	@touch $(STAMP)

# builtin:speech synthesises its utterances with espeak-ng, a Debian package.
setup-speech:
	@echo "setup: installing espeak-ng (Debian) for builtin:speech"
	@{ apt-get install -y -q espeak-ng >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q espeak-ng >/dev/null 2>&1; }; } \
	  || echo "setup: could not install espeak-ng; run 'sudo apt-get install espeak-ng' (only builtin:speech needs it)"

# The R kernel for JupyterLab and the doctor: R and IRkernel from Debian, registered in this environment.
setup-r: setup
	@command -v R >/dev/null && R -q -s -e 'library(IRkernel)' >/dev/null 2>&1 || { echo "setup: installing r-base-core and r-cran-irkernel (Debian)"; \
	  apt-get install -y -q --no-install-recommends r-base-core r-cran-irkernel >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
	  apt-get install -y -q --no-install-recommends r-base-core r-cran-irkernel >/dev/null 2>&1; } || { echo "setup: could not install R; run 'sudo apt-get install r-base-core r-cran-irkernel'"; exit 1; }; }
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" R -q -s -e 'IRkernel::installspec(name = "ir", displayname = "R", prefix = "$(CURDIR)/$(VENV)")' >/dev/null
	@echo "setup: R kernel registered in $(VENV)"

# PostgreSQL for a team's tracking store and for the tests that use a real server (started on a free port).
setup-postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "setup: installing postgresql (Debian)"; \
	  apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1; } \
	  || { echo "setup: could not install postgresql; the PostgreSQL tests will skip"; exit 0; }; }

demo: setup
	$(VENV)/bin/deepstation demo

test: setup
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_loop.py
	$(PY) benchmarks/bench_cli.py
	$(PY) benchmarks/bench_accuracy.py
	$(PY) benchmarks/bench_tasks.py
	$(PY) benchmarks/bench_forecast.py
	$(PY) benchmarks/bench_ucr.py
	$(PY) benchmarks/bench_doctor.py
	$(PY) benchmarks/bench_scale.py
	$(PY) benchmarks/bench_serve.py

clean:
	rm -rf $(VENV) runs .pytest_cache
