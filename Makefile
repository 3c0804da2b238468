# The two commands a newcomer needs: `make serve` and `make test`.
# Both build their own virtualenv in .venv from nothing but this repo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test test-fast lint venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,postgres,redis,geoip]'
	touch $(STAMP)

venv: $(STAMP)

# ./meshproxy.toml when there is one (cp meshproxy.example.toml meshproxy.toml), else defaults.
serve: $(STAMP)
	$(BIN)/meshproxy serve $(if $(wildcard meshproxy.toml),--config meshproxy.toml)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/pytest -q

# Everything but the tests marked slow (soak, cluster, SIGKILL): the default while working.
test-fast: lint
	$(BIN)/pytest -q -m "not slow"
