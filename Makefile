# Two commands on a fresh machine with Python 3.11+:
#   make run   - the service on embedded SQLite with demo data (GraphiQL at http://127.0.0.1:8000/graphql;
#                make run PORT=8080 HOST=0.0.0.0 MEMBERS=2000)
#   make test  - the whole test suite (SQLite; PostgreSQL and Redis too when they answer)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
MEMBERS ?= 10000
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: run test install schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/loyalty demo --members $(MEMBERS) --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python scripts/run_tests.py

schema: $(STAMP)
	$(BIN)/loyalty schema > schema.graphql

clean:
	rm -rf $(VENV) loyalty.db loyalty.db-shm loyalty.db-wal *.egg-info
