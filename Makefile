# Thin entry points; every target builds the one shared virtualenv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR := build/demo
DEMO_PROJECT := $(DEMO_DIR)/realtime-app
# Answers for the demo project, e.g. make demo DEMO_ARGS="use_chat=true"
DEMO_ARGS ?=
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-k hooks"
PYTEST_ARGS ?=

.PHONY: demo test lint bench autobahn clean help

help:
	@echo "make demo   generate a project with the default answers and serve it on http://127.0.0.1:8080"
	@echo "            (other answers: make demo DEMO_ARGS=\"use_chat=true\")"
	@echo "make test   run every test of the template (hooks, all feature combinations, their own suites)"
	@echo "make lint   ruff over the template's tests"
	@echo "make bench  benchmark the generated server beside aiohttp, websockets, waitress and sse-starlette (bench/RESULTS.md)"
	@echo "make autobahn  the Autobahn|Testsuite WebSocket conformance run against the default bake"
	@echo "make clean  remove the virtualenv and generated projects"

$(BIN)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(BIN)/.installed
	rm -rf $(DEMO_DIR)
	$(BIN)/cookiecutter . --no-input --output-dir $(DEMO_DIR) $(DEMO_ARGS)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e $(DEMO_PROJECT)
	$(BIN)/python -m realtime_app

# The hooks are Jinja templates until rendered: tests/test_hooks.py lints them rendered.
lint: $(BIN)/.installed
	$(BIN)/ruff check tests

test: lint
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

# The generated server side by side with its peers; writes bench/RESULTS.md and bench/results.png.
# Needs Node.js 18+ (the load client). Quicker trial: make bench BENCH_ARGS=--quick
BENCH_ARGS ?=
bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# WebSocket protocol conformance: Autobahn|Testsuite cases 1-7 and 9 (bench/autobahn/README.md).
autobahn: $(BIN)/.installed
	$(BIN)/python bench/autobahn/run.py --require-ok --summary build/autobahn.md

clean:
	rm -rf $(VENV) build
