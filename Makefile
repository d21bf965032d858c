# mssante-check — the two commands a newcomer needs: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo test lint lab-up lab-down lab-status clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## install: Python dependencies in .venv and the lab's Debian packages (apt-get, needs root)
install: $(STAMP)
	$(BIN)/python -m lab install

## demo: install, start the lab, run the post-deployment suite on it, show the report
demo: install
	$(BIN)/python -m lab up
	$(BIN)/pytest suites/post_deploy --env lab; status=$$?; \
	  echo; echo "Report: reports/runs/latest/summary.md (HTML: reports/runs/latest/report.html)"; \
	  exit $$status

## test: install, then run the suite's own tests (they start and break the lab themselves)
test: install
	$(BIN)/pytest tests

## lint: ruff and mypy as pyproject.toml configures them (only the venv needed, no lab)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

lab-up: install
	$(BIN)/python -m lab up

lab-down:
	$(BIN)/python -m lab down

lab-status:
	$(BIN)/python -m lab status

clean: lab-down
	rm -rf reports/runs reports/evidence
