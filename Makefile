# careblocks: the two set-up commands of the README.
#   make demo   install everything, then run the embedded default study (Bogotá, Fontibón)
#   make test   install everything, then run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
export CAREBLOCKS_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: demo test install system-deps bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

# GDAL's ogrinfo and Chromium are used by the output tests (GeoPackage re-read by GDAL,
# the map opened in a real headless browser). Debian packages; installed when missing.
system-deps:
	@if ! command -v ogrinfo >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing Debian packages gdal-bin and chromium"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends gdal-bin chromium >/dev/null; \
	fi

demo: $(STAMP)
	$(VENV)/bin/careblocks run

test: $(STAMP) system-deps
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(PY) benchmarks/walk_access.py
	$(PY) benchmarks/transit.py
	$(PY) benchmarks/site_selection.py
	$(PY) benchmarks/demand.py

clean:
	rm -rf $(VENV) out .pytest_cache
