# The two commands of the README: `make tutorial` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.edvr-installed
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with .ci/nbval_sanitize.cfg

.PHONY: install test test-fast tutorial lab lock strip check-notebooks bench clean

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(PY) || (echo "creating $(VENV) with $(PYTHON)" && $(PYTHON) -m venv $(VENV))
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-lock.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

install: $(STAMP)

## Unit tests + every notebook under nbval in smoke mode (what CI runs).
test: $(STAMP)
	EDVR_SMOKE=1 $(PY) -m pytest tests notebooks $(NBVAL) -p no:cacheprovider -ra

## Unit tests only, skipping slow ones (for quick iterations).
test-fast: $(STAMP)
	EDVR_SMOKE=1 $(PY) -m pytest tests -m "not slow and not browser" -q -p no:cacheprovider

## Every notebook, in order, in full mode; executed copies + HTML under outputs/notebooks.
tutorial: $(STAMP)
	$(PY) -m edvr_lib.utils.notebooks run --out outputs/notebooks

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
	$(PY) -m edvr_lib.utils.notebooks strip
check-notebooks: $(STAMP)
	$(PY) -m edvr_lib.utils.notebooks check

clean:
	rm -rf outputs .pytest_cache
