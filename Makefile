# Two commands do all the set-up on a fresh machine (Python 3.11):
#   make run   - create .venv, install, launch the app on the embedded default models
#   make test  - create .venv, install, run the whole test suite
#   make api   - serve the REST API (uvicorn; CLINICAL_NLP_API_HOST/PORT/WORKERS, docs at /docs)
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run api test lint bench clean-venv

$(STAMP): requirements.txt
	@command -v $(PY) >/dev/null || { echo "Python 3.11 is required ($(PY) not found)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/streamlit run app.py --server.headless true

api: setup
	$(BIN)/python -m api

test: setup
	bash .ci/system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	for f in bench/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
