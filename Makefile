# onebox: `make demo` provisions the local VPS-like target; `make test` runs every test.
# Both set up what they need on a fresh Debian machine (root): apt packages, dockerd,
# a Python virtualenv, the target and stand-in images.
PY := .venv/bin/python
PYTEST := $(PY) -m pytest
APT_PACKAGES := docker.io debootstrap pebble nmap wrk openssh-client openssl postgresql redis-server nginx restic docker-registry apache2-utils prometheus prometheus-alertmanager prometheus-blackbox-exporter chromium
export PATH := /usr/sbin:/sbin:$(PATH)

.PHONY: setup demo test unit app-tests images backup-tests e2e verify target down lint bench dist

setup: .venv/.installed
	@command -v dockerd >/dev/null && command -v debootstrap >/dev/null && command -v pebble >/dev/null \
	  && command -v nmap >/dev/null && command -v wrk >/dev/null && command -v nginx >/dev/null \
	  && command -v openssl >/dev/null && command -v restic >/dev/null \
	  && command -v docker-registry >/dev/null && command -v htpasswd >/dev/null \
	  && command -v promtool >/dev/null && command -v amtool >/dev/null && command -v prometheus-blackbox-exporter >/dev/null \
	  && command -v chromium >/dev/null \
	  && test -d /usr/lib/postgresql && command -v redis-server >/dev/null \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null)
	$(PY) -m testbed.target docker

.venv/.installed: pyproject.toml examples/app/requirements.txt examples/app/requirements-dev.txt examples/jobs/requirements.txt examples/jobs/requirements-dev.txt examples/minimal/requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]' -r examples/app/requirements-dev.txt -r examples/jobs/requirements-dev.txt
	touch $@

# The local target, the stand-in images and Pebble, then converge and verify.
demo: setup
	$(PY) -m testbed.demo

target: setup
	$(PY) -m testbed.target up

down:
	$(PY) -m testbed.target down
	$(PY) -m testbed.pebble down

# Host checks against the demo target (or any server: see README).
verify:
	$(PYTEST) tests/host --hosts=ssh://onebox-target-0 --ssh-config=.onebox/local/ssh_config-0 --onebox-group=local

test: setup lint unit app-tests images backup-tests e2e

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy onebox testbed deploys

# The wheel and sdist of the product (onebox/ only: no test bench), into dist/.
dist: .venv/.installed
	rm -rf dist
	$(PY) -m build --outdir dist .

unit:
	$(PYTEST) -q tests/unit

app-tests:
	$(PYTEST) -q examples/app/tests examples/jobs/tests examples/minimal/tests

images:
	$(PYTEST) -q tests/images

# The backup script against a throwaway compose project and a real S3 API (moto) on this machine.
backup-tests:
	$(PYTEST) -q tests/backup

e2e:
	$(PYTEST) -q --durations=30 tests/e2e

bench: setup
	$(PY) bench/converge.py
	$(PY) bench/proxy.py
