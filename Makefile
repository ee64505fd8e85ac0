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
# the map opened in a real headless browser); QGIS (python3-qgis + qgis-providers, for the
# system Python) opens the written QGIS project. Debian packages, installed when missing;
# apt waits for the dpkg lock instead of failing when another install is running.
APT := apt-get -o DPkg::Lock::Timeout=600
system-deps:
	@if ! command -v ogrinfo >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
	    || ! /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then \
	  echo "installing Debian packages gdal-bin, chromium, python3-qgis and qgis-providers"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO $(APT) update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO $(APT) install -y -qq --no-install-recommends \
	    gdal-bin chromium python3-qgis qgis-providers >/dev/null; \
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
	$(PY) benchmarks/dask_cluster.py

clean:
	rm -rf $(VENV) out .pytest_cache
