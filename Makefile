# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= $(or $(WORKCARD_PORT),8000)
KEYWORDS := -k N_ -k InvalidInput -k NotFound -k Conflict -k Forbidden -k Unauthorized -k TooManyRequests -k Unavailable -k DomainError -k RowError:3 -k OfflineError -k ListError

.PHONY: demo serve test test-sqlite test-postgres bench messages lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/workcard db upgrade
	$(BIN)/workcard demo
	WORKCARD_PORT=$(PORT) $(BIN)/workcard serve

# The whole suite, on SQLite and, when WORKCARD_TEST_DATABASE_URL names a PostgreSQL server, there too.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(MAKE) test-sqlite
	@if [ -n "$$WORKCARD_TEST_DATABASE_URL" ]; then $(MAKE) test-postgres; \
	 else echo "WORKCARD_TEST_DATABASE_URL not set: PostgreSQL run skipped (.ci/run sets it)"; fi

test-sqlite: $(STAMP)
	env -u WORKCARD_TEST_DATABASE_URL $(BIN)/pytest -n 2 -p no:cacheprovider

test-postgres: $(STAMP)
	$(BIN)/pytest -n 2 -p no:cacheprovider -m "not browser"

bench: $(STAMP)
	$(BIN)/python -m benchmarks

messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output $(KEYWORDS) -o src/workcard/locale/messages.pot .
	$(BIN)/pybabel update -i src/workcard/locale/messages.pot -d src/workcard/locale -l zh_CN --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel update -i src/workcard/locale/messages.pot -d src/workcard/locale -l en --no-fuzzy-matching --ignore-obsolete

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) var build *.egg-info
