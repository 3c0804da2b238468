# The two commands a newcomer needs: `make serve` and `make test`.
# Both build their own virtualenv in .venv from nothing but this repo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The data plane compiled with mypyc (src/meshproxy/compiled.py lists it), rebuilt in place
# beside the sources whenever one of them changed. MESHPROXY_COMPILE=0: all interpreted.
COMPILED := build/.compiled
COMPILED_SOURCES := $(wildcard setup.py build-support/* src/meshproxy/compiled.py src/meshproxy/proxy/core/*.py src/meshproxy/proxy/server/*.py src/meshproxy/meter/*.py src/meshproxy/accesslog/*.py)

.PHONY: serve test test-fast lint venv compiled interpreted

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip 'setuptools>=77'
	MESHPROXY_COMPILE=0 $(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,postgres,redis,geoip]'
	touch $(STAMP)

$(COMPILED): $(STAMP) $(COMPILED_SOURCES)
ifeq ($(MESHPROXY_COMPILE),0)
	find src -name '*.so' -delete
else
	find src -name '*.so' -delete  # a module taken out of the build must not shadow its .py
	$(BIN)/python setup.py -q build_ext --inplace
	find src -name '*.so' -exec touch {} +  # built now (setuptools copies older mtimes)
endif
	mkdir -p build && touch $(COMPILED)

venv: $(COMPILED)
compiled: $(COMPILED)

# Back to interpreted modules (until the next `make compiled`, serve or test).
interpreted:
	find src -name '*.so' -delete
	rm -f $(COMPILED)

# ./meshproxy.toml when there is one (cp meshproxy.example.toml meshproxy.toml), else defaults.
serve: $(COMPILED)
	$(BIN)/meshproxy serve $(if $(wildcard meshproxy.toml),--config meshproxy.toml)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint $(COMPILED)
	$(BIN)/pytest -q

# Everything but the tests marked slow (soak, cluster, SIGKILL): the default while working.
test-fast: lint $(COMPILED)
	$(BIN)/pytest -q -m "not slow"
