# convfuzz — every target sets up its own venv first (torch pinned to the CPU build on disk
# before anything else, so pip never resolves a multi-GB CUDA build).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0
STAMP   := $(VENV)/.installed

.PHONY: install fuzz test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,mine,analyze,passes]"
	touch $(STAMP)

install: $(STAMP)

# A short campaign on the embedded default (local worker processes, both exporters).
fuzz: $(STAMP)
	$(BIN)/convfuzz fuzz --time 60 --seed 0 --out runs/make-fuzz

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check fuzzer tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
