# The two commands: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
DISTS := ./platform $(sort $(wildcard ./plugins/*/)) $(sort $(wildcard ./hardware_drivers/*/))
STAMP := $(VENV)/.installed
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(patsubst %/,%,$(DISTS)))

.PHONY: install demo test bench system-packages clean

install: $(STAMP)

$(STAMP): $(PYPROJECTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(UV) pip install --python $(PY) -q $(foreach d,$(patsubst %/,%,$(DISTS)),-e $(d)) -e ".[test]"
	@touch $@

demo: install
	$(VENV)/bin/pigeonhole demo

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/pickup.py

clean:
	rm -rf $(VENV) var
