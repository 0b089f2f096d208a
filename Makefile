# smartcare: `make run` sets up and serves, `make test` sets up and tests, `make bench` benchmarks.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
APT_TEST := chromium bcftools tabix samtools

.PHONY: install run demo test lint pytest bench apt-test clean

install: $(VENV)/.installed

# medspaCy's metadata pins spaCy<3.8 and numpy<2, so it goes in last with --no-deps; its real
# dependencies are in the `hospital` extra.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel
	$(PIP) install -q -e '.[all]'
	$(PIP) install -q --no-deps medspacy==1.3.1 pyrush==1.0.13 medspacy-quickumls==3.2
	touch $@

demo: install
	$(VENV)/bin/smartcare demo load

run: demo
	$(VENV)/bin/smartcare serve --host $(HOST) --port $(PORT)

apt-test:
	@missing=""; for p in $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "apt-get install$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

# pytest exit code 5 (no tests collected) is a failure here, as is any other non-zero code.
pytest: install apt-test
	export SMARTCARE_TEST_PG_URL=$$(PY=$(PY) scripts/ensure_postgres.sh) && \
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

test: lint pytest

bench: install
	$(PY) -m benchmarks all

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
