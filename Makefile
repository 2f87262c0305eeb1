# deploykit: `make run` and `make test` set everything up on a fresh Debian 12
# machine with Python 3.11 (a .venv, and nginx/systemd/openssl via apt-get when
# missing), then do their job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck unit workers collection test-fleet test-fleet-mutants test-stress bench setup system-packages clean docs docs-serve dist

setup: $(STAMP) system-packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the distribution was called "deploykit" before it became deploykit-asgi: drop that copy
	$(BIN)/python -m pip uninstall --quiet --yes deploykit 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# nginx -t, systemd-analyze and openssl are real validators the tests run;
# debootstrap + systemd-nspawn boot the real systemd host (tests/realhost); ssh and ip reach
# the molecule hosts (make test-fleet); wrk is for make bench; stress-ng is the CPU hog of make test-stress;
# pebble (with pebble-challtestsrv) is the ACME server tests/realhost/test_acme.py issues certificates from.
system-packages:
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$$missing debootstrap"; \
	command -v systemd-nspawn >/dev/null 2>&1 || missing="$$missing systemd-container"; \
	command -v ssh >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing="$$missing iproute2"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v stress-ng >/dev/null 2>&1 || missing="$$missing stress-ng"; \
	command -v pebble >/dev/null 2>&1 || missing="$$missing pebble"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# The main job: the example app's stack, here and without root or systemd: nginx on
# http://127.0.0.1:8080/ in front of `deploykit serve` on a unix socket; Ctrl-C stops both.
run: setup
	$(BIN)/deploykit up -c examples/deploykit.toml

lint: setup
	$(BIN)/ruff check deploykit tests molecule ansible
	$(BIN)/ruff format --check deploykit tests molecule ansible

typecheck: setup
	$(BIN)/mypy

# On UNIT_WORKERS pytest-xdist workers, each running whole modules (the real-host ones that share
# one booted host as one unit, handed out first): tests/conftest.py. UNIT_WORKERS=0: one process.
UNIT_WORKERS ?= 3
unit: setup
	$(BIN)/pytest -n $(UNIT_WORKERS) --dist loadfile --no-loadscope-reorder --cov --cov-report=term

# The raw-socket HTTP suite again: through the supervisor and 4 forked workers,
# and under Gunicorn with deploykit's worker classes (each pass on UNIT_WORKERS workers, as `unit`).
workers: setup
	SERVE_TEST_TARGET=deploykit-workers $(BIN)/pytest -q -n $(UNIT_WORKERS) --dist loadfile tests/server
	SERVE_TEST_TARGET=gunicorn $(BIN)/pytest -q -rs -n $(UNIT_WORKERS) --dist loadfile tests/server

# The Ansible collection deploykit.stack (ansible/collections/ansible_collections/deploykit/stack):
# ansible-lint with the production profile (offline, see .ansible-lint) over it, the example inventory
# and molecule/; then `ansible-galaxy collection build` into build/ansible/ (gitignored).
COLLECTIONS := ansible/collections
COLLECTION  := $(COLLECTIONS)/ansible_collections/deploykit/stack
COLLECTION_OUT := build/ansible
collection: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" ANSIBLE_COLLECTIONS_PATH="$(CURDIR)/$(COLLECTIONS)" $(BIN)/ansible-lint --nocolor ansible molecule
	rm -f $(COLLECTION_OUT)/deploykit-stack-*.tar.gz
	$(BIN)/ansible-galaxy collection build $(COLLECTION) --output-path $(COLLECTION_OUT)

# The collection as built by `collection` (installed from its tarball into build/ansible/collections)
# on two real Debian 12 systemd hosts reached over SSH: molecule's create, converge, idempotence,
# failed rollouts, verify, destroy (molecule/default). Needs root.
test-fleet: collection
	@if [ "$$(id -u)" != 0 ]; then echo "test-fleet: skipped: booting the molecule hosts (systemd-nspawn) needs root"; \
	else rm -rf $(COLLECTION_OUT)/collections && \
	  $(BIN)/ansible-galaxy collection install --offline -p $(COLLECTION_OUT)/collections $(COLLECTION_OUT)/deploykit-stack-*.tar.gz && \
	  PATH="$(CURDIR)/$(BIN):$$PATH" ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 DEPLOYKIT_MOLECULE_TREE="$(CURDIR)/build" \
	  $(BIN)/molecule test; fi

# Not part of `make test`: proof that those checks catch a broken role (molecule/mutants.py, ~4 min).
test-fleet-mutants: setup
	$(BIN)/python molecule/mutants.py

# The docs site (docs/, mkdocs.yml) into site/; --strict turns every warning (a broken link, a
# missing page) into a failure. The generated pages' staleness is tests/docs' job.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# The distribution: sdist + wheel, twine's metadata check, then the wheel alone in a clean venv
# (its dependencies resolved from the wheel's metadata, from pip's cache or PyPI) where
# `deploykit --version` must run outside the checkout. The venv gets no pip of its own (the dev
# venv's pip installs into it) and nothing is byte-compiled: ~10 s of CPU in all.
WHEEL_VENV := .cache/wheel-venv
dist: setup
	rm -rf build/lib build/bdist.* dist $(WHEEL_VENV)  # setuptools would reuse stale copies from build/lib
	$(BIN)/python -m build --no-isolation --sdist --wheel --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*
	$(PYTHON) -m venv --without-pip $(WHEEL_VENV)
	$(BIN)/python -m pip --python $(WHEEL_VENV)/bin/python install --quiet --no-compile dist/*.whl
	cd / && $(CURDIR)/$(WHEEL_VENV)/bin/deploykit --version | grep -E '^deploykit [0-9]'

test: lint typecheck collection unit docs dist workers test-fleet

# Not part of `make test` (slow): the timing-sensitive suites (tests/server in its three passes as
# `unit` and `workers` run it, tests/server_workers, server_ws, apply, up) STRESS_ROUNDS times in a row
# while `stress-ng --cpu 2` competes for the cores; then every test that failed in any round (tests/stress.py).
# The trap stops the hog however the run ends.
STRESS_ROUNDS ?= 3
test-stress: setup
	@stress-ng --cpu 2 --quiet & hog=$$!; \
	trap 'kill $$hog 2>/dev/null; wait $$hog 2>/dev/null' EXIT; trap 'exit 130' INT TERM HUP; \
	$(BIN)/python -m tests.stress --rounds $(STRESS_ROUNDS) --out .stress

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'  # the peers granian and hypercorn, and py-spy
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .stress site dist $(WHEEL_VENV) $(COLLECTION_OUT)
