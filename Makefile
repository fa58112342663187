# The two commands: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
DISTS := ./platform $(sort $(wildcard ./plugins/*/)) $(sort $(wildcard ./hardware_drivers/*/))
STAMP := $(VENV)/.installed
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(patsubst %/,%,$(DISTS)))
# Debian packages the tests and the demo need (socat: serial boards on pty pairs).
SYSTEM_PACKAGES := socat

.PHONY: install demo test bench system-packages clean

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

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/pickup.py

clean:
	rm -rf $(VENV) var
