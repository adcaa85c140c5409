# The two commands of the README: `make tutorial` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.edvr-installed
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with .ci/nbval_sanitize.cfg

.PHONY: install lint test test-fast tutorial lab lock strip check-notebooks bench bench-train clean browser-deps docs

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(PY) || (echo "creating $(VENV) with $(PYTHON)" && $(PYTHON) -m venv $(VENV))
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-lock.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

install: $(STAMP)

## Lint (ruff, configured in pyproject.toml: the library, tests, tools, benchmarks and the notebooks' code cells).
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## Lint, then unit tests + every notebook under nbval in smoke mode (what CI runs), the real-browser test included.
test: $(STAMP) browser-deps lint
	EDVR_SMOKE=1 $(PY) -m pytest tests notebooks $(NBVAL) -p no:cacheprovider -ra

## Unit tests only, skipping slow ones (for quick iterations).
test-fast: $(STAMP)
	EDVR_SMOKE=1 $(PY) -m pytest tests -m "not slow and not browser" -q -p no:cacheprovider

## Debian chromium for tests/test_browser.py (JupyterLab driven by Playwright); never `playwright install`.
## A failed apt does not stop `make test`: the browser test is then skipped, with its reason in the summary.
CHROMIUM := /usr/bin/chromium
browser-deps:
	@if [ -x $(CHROMIUM) ]; then echo "browser-deps: $(CHROMIUM) is there (used by tests/test_browser.py)"; else \
	  echo "browser-deps: $(CHROMIUM) is missing; tests/test_browser.py needs it to drive JupyterLab in a real browser."; \
	  sudo=""; if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; fi; \
	  echo "browser-deps: installing Debian's chromium: $$sudo apt-get update && $$sudo apt-get install -y chromium"; \
	  if $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q chromium \
	     && [ -x $(CHROMIUM) ]; then echo "browser-deps: installed $(CHROMIUM)"; else \
	    echo ""; \
	    echo "!!! browser-deps: COULD NOT INSTALL chromium (apt-get failed: no root/sudo, no network or no package)."; \
	    echo "!!! The real-browser test tests/test_browser.py will be SKIPPED; the rest of 'make test' still runs."; \
	    echo "!!! Fix: 'sudo apt-get install chromium' (Debian/Ubuntu), then 'make test' again."; \
	    echo ""; \
	  fi; \
	fi

## README results: docs/ (figures + metrics table) and README's results block, by code; EDVR_WEIGHTS=FILE for a checkpoint.
docs: $(STAMP)
	$(VENV)/bin/edvr docs --output docs --readme README.md $(if $(EDVR_WEIGHTS),--weights $(EDVR_WEIGHTS),)

## Every notebook, in order, in full mode; executed copies + HTML under outputs/notebooks, and
## docs/tutorial_results.md from the figures the notebooks' "Reading the results" cells checked (full mode only).
tutorial: $(STAMP)
	$(VENV)/bin/edvr notebooks run --output outputs/notebooks

## JupyterLab on notebooks/ (adds --allow-root when run as root).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

## Re-pin requirements-lock.txt from the current .venv.
lock: $(STAMP)
	$(PY) -m pip freeze --all --exclude-editable | grep -v -e '^edvr' -e '^pip==' | sort -f > requirements-lock.tmp
	(echo "# Exact versions that \`make\` and CI install (Python 3.11, linux x86_64). Regenerate with \`make lock\`."; cat requirements-lock.tmp) > requirements-lock.txt
	rm requirements-lock.tmp

## Remove outputs from committed notebooks / check their conventions.
strip: $(STAMP)
	$(VENV)/bin/edvr notebooks strip
check-notebooks: $(STAMP)
	$(VENV)/bin/edvr notebooks check

## Speed of EDVR-M against the reference (BasicSR 1.4.2, installed on demand into .reference_venv/);
## writes docs/performance.md / .json. ~10-15 min on 2 idle CPU cores; run it on an otherwise idle machine.
bench: $(STAMP)
	$(PY) -m benchmarks.edvr_speed --install-reference

## End-to-end training speed: `edvr train` against BasicSR's train.py on its EDVR-M woTSA option file (3 and 0 loader
## workers); writes docs/performance.md / docs/performance_train.json. ~8 min on 2 idle CPU cores; run it on an idle machine.
bench-train: $(STAMP)
	$(PY) -m benchmarks.train_speed --install-reference --workers 3 0

clean:
	rm -rf outputs .pytest_cache
