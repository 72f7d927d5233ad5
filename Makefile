# deltaflow developer entry points. Public targets: demo, test (see README "Quick start").
# Needs only python3 (with venv + pip) on PATH.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PIP_FLAGS ?= --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help demo test lint format docs bench clean venv

help:
	@echo "make demo   - set up $(VENV) and run examples/demo.py"
	@echo "make test   - set up $(VENV), run the lint checks and pytest"
	@echo "make lint   - ruff check and format check, mypy and pyright (types), lint-imports (no cycles)"
	@echo "make format - ruff format + ruff check --fix"
	@echo "make docs   - build the documentation site (API reference included) into site/"
	@echo "make bench  - run benchmarks/run.py (ARGS='--rows 100000 --pathway-python ...')"
	@echo "make clean  - remove $(VENV) and caches"

# The venv itself; created once.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip

# Reinstall only when pyproject.toml is newer than the last install. The demo needs only the
# package's own dependencies; tests and lint need the dev extra (which includes them).
DEMO_STAMP := $(VENV)/.installed-demo

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) -e .
	@touch $(DEMO_STAMP)

venv: $(STAMP)

demo: $(DEMO_STAMP)
	$(PY) examples/demo.py

# The checks CI runs before the tests (mypy and pyright read their settings from
# pyproject.toml; pyright is told which Python has the dependencies).
LINT_CHECKS = $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy \
	&& $(VENV)/bin/pyright --pythonpath $(PY) && $(VENV)/bin/lint-imports

lint: $(STAMP)
	$(LINT_CHECKS)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# pytest exits 5 when it collects no test at all; that is reported, not treated as a failure.
test: $(STAMP)
	$(LINT_CHECKS)
	@rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5), not a failure"; rc=0; fi; \
	exit $$rc

# The pages of docs/ plus the API reference from docstrings; --strict: a broken link or
# reference fails the build (tests/test_docs_site.py runs the same build).
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) build dist site .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
