# Two commands for a fresh machine: `make demo` (set up + the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow docs lint bench site site-png clean

$(STAMP): pyproject.toml constraints-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-dev.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints-dev.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dlskills train

test: $(STAMP)
	$(PY) -m pytest -q -n 2

# every docs/README block at full scale, every printed output compared
docs: $(STAMP)
	DLSKILLS_DOCS_SCALE=full $(PY) -m pytest -q docs README.md

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks conftest.py
	$(VENV)/bin/ruff format --check src tests benchmarks conftest.py

bench: $(STAMP)
	$(VENV)/bin/dlskills bench

# the reading list as a static site in build/site (open build/site/index.html)
site: $(STAMP)
	$(VENV)/bin/dlskills report --site build/site

# docs/figures/site.png, the README's screenshot (needs chromium: apt-get install chromium)
site-png: $(STAMP)
	$(PY) tests/report/test_site_browser.py docs/figures/site.png

clean:
	rm -rf $(VENV) build dist *.egg-info
