# Two commands: `make dev` runs the whole system locally, `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Translations: the catalogues (.po) are written by people and kept in git; the compiled ones
# (.mo) are built from them here, whenever a .po is newer.
TRANSLATIONS := mailer/translations
CATALOGUES := $(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGUES:.po=.mo)

.PHONY: dev test lint install migrate requirements clean translations

# Only these local targets run the development configuration (its public secret key, the
# debugger); anything else that starts Mailer without MAILER_CONFIG gets production.
migrate dev: export MAILER_CONFIG ?= development

$(INSTALLED): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(INSTALLED)

$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po $(INSTALLED)
	$(BIN)/pybabel compile --statistics -d $(TRANSLATIONS) -l $*

install: $(INSTALLED) $(COMPILED)

# After changing strings in the code: extract them, merge them into every catalogue (new ones
# appear untranslated, changed ones "fuzzy"), then compile. Translate, and run it again.
translations: $(INSTALLED)
	$(BIN)/pybabel extract --no-location --sort-output -F babel.cfg -k _l -k lazy_pgettext:1c,2 -k lazy_ptext:1c,2 -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update --no-wrap --ignore-obsolete -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS)
	$(BIN)/pybabel compile --statistics -d $(TRANSLATIONS)

migrate: install
	mkdir -p instance
	$(BIN)/flask db upgrade
	$(BIN)/flask roles seed

dev: migrate
	$(BIN)/flask dev create-admin
	@echo "Mailer: http://127.0.0.1:5000  (Ctrl-C stops everything)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile.dev start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two processes (pytest-xdist): the journeys and the worker tests mostly wait, so they overlap
# with the rest. TEST_PROCESSES=0 runs everything in one process (for --pdb, say).
TEST_PROCESSES ?= 2

test: install
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadgroup $(PYTEST_ARGS)

# requirements*.in name the dependencies Mailer chooses; this compiles them into the pinned
# requirements*.txt (with the reason each transitive pin is there). Existing pins are kept:
# `make requirements UPGRADE="--upgrade-package NAME"` moves one package, UPGRADE=--upgrade all.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make requirements" $(BIN)/pip-compile --quiet --allow-unsafe \
	--no-strip-extras --no-emit-index-url --no-emit-find-links $(UPGRADE)

requirements: $(INSTALLED)
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) .pytest_cache
