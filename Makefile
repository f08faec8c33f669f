# The two commands README.md opens with. Each creates or refreshes .venv by itself.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench chaos worker-chaos docs catalogues screenshots shell constraints clean

# The versions of constraints.txt: those the test suite passed with.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Renewly needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]' -c constraints.txt
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/renewly demo

# Two processes (pytest-xdist), as many as the 2-core machines the suite is timed on have: more
# would share the same cores and squeeze the tests that time processes racing each other.
# --dist loadgroup: each test goes to whichever process is free, except a module marked
# xdist_group, whose tests share an expensive module fixture (a demo, a timeline) that each
# process would otherwise build again. Bytecode is written even where PYTHONDONTWRITEBYTECODE is
# set: without it pytest rewrote every test module's asserts again in each process and every
# `renewly` the tests start compiled src/ afresh (__pycache__ is ignored by git).
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/python -m pytest -n 2 --dist loadgroup

bench: $(STAMP)
	$(VENV)/bin/python bench/renewal.py --quick

# The reliability suite (docs/reliability.md): races, kill -9 and a faulty gateway on both
# engines, a few minutes on 2 cores; then hostile command-line inputs, where that part exists.
chaos: $(STAMP)
	$(VENV)/bin/python bench/chaos.py
	$(VENV)/bin/python bench/chaos_inputs.py

# Three `renewly worker` on PostgreSQL over 10,000 accounts and three simulated months, then 20
# seeded kill -9 runs, each against a one-process reference (docs/performance.md); a long run.
worker-chaos: $(STAMP)
	$(VENV)/bin/python bench/worker_chaos.py

# A shell with .venv/bin first on the PATH, to type `renewly` as README.md does (`exit` leaves it).
shell: $(STAMP)
	@echo "renewly is on the PATH of this shell; exit to leave it"
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)" $${SHELL:-/bin/sh}

docs: $(STAMP)
	$(VENV)/bin/python -m renewly.cli.reference > docs/cli.md

# The portal's and the console's main pages in French and English, as PNG files (README.md shows
# two): the demo's database, served in this process, shot by Debian's Chromium (/usr/bin/chromium).
screenshots: $(STAMP)
	$(VENV)/bin/python bench/screenshots.py

# The gettext catalogues after a template's or a label's sentence changed (docs/texts.md): the
# template (messages.pot) from the sources, then each language's messages.po brought up to date;
# translate what is new in them (tests/config/test_catalogues.py fails until every msgstr is there).
catalogues: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output -o src/renewly/locale/messages.pot .
	$(VENV)/bin/pybabel update -i src/renewly/locale/messages.pot -d src/renewly/locale --ignore-obsolete \
		--no-fuzzy-matching

# After upgrading .venv (pip install -U ...) and passing the whole suite with it: pin what passed.
constraints: $(STAMP)
	sed -n '/^#/p' constraints.txt > constraints.txt.new
	$(VENV)/bin/python -m pip freeze --exclude-editable >> constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) renewly-demo.db* renewly-demo-gateway.db*
