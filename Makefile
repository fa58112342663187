# The two commands: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
DISTS := ./platform $(sort $(wildcard ./plugins/*/)) $(sort $(wildcard ./hardware_drivers/*/))
STAMP := $(VENV)/.installed
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(patsubst %/,%,$(DISTS)))
# Debian packages the tests and the demo need (socat: serial boards on pty pairs;
# xmlsec1: the test SAML identity provider, pysaml2, signs with it).
SYSTEM_PACKAGES := socat xmlsec1

.PHONY: install demo test bench bench-import bench-directory bench-drivers system-packages clean

install: system-packages $(STAMP)

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): $(PYPROJECTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(UV) pip install --python $(PY) -q $(foreach d,$(patsubst %/,%,$(DISTS)),-e $(d)) -e ".[test]"
	@touch $@

demo: install
	$(VENV)/bin/pigeonhole demo

# The suite runs in three worker processes (each with its own databases); PYTEST_ARGS= runs it serially.
PYTEST_ARGS ?= -n 3 --dist loadfile

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/pickup.py

# 100,000 contacts through `pigeonhole import contacts`, on PostgreSQL and SQLite (directory, #6).
bench-import: install
	$(PY) benchmarks/directory_import.py

# Contact search on 100,000 contacts, on PostgreSQL and SQLite (directory, #6).
bench-directory: install
	$(PY) benchmarks/directory_search.py

# Lock drivers against the wire time at their baud rates, and a door command
# serve -> agent -> Modbus TCP driver -> simulator, p50/p99 (hardware, #4).
bench-drivers: install
	$(PY) benchmarks/drivers.py

clean:
	rm -rf $(VENV) var
