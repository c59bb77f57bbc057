# convfuzz — every target sets up its own venv first (torch pinned to the CPU build on disk
# before anything else, so pip never resolves a multi-GB CUDA build).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0
STAMP   := $(VENV)/.installed
# OpenVINO (+180 MB) and TensorFlow + tf2onnx (`tf`, +1.4 GB, ~11 s from a warm wheel cache)
# are in; ExecuTorch (~550 MB) and LiteRT (~1.2 GB, jax) are opt-in, e.g.
# `make install EXTRAS=dev,mine,analyze,passes,cluster,openvino,executorch,litert`: their
# tests skip without them (CI's fresh install stays minutes shorter).
EXTRAS  ?= dev,mine,analyze,passes,cluster,openvino,tf

.PHONY: install fuzz test test-fast lint bench experiment clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# A short campaign on the embedded default (local worker processes, both exporters).
fuzz: $(STAMP)
	$(BIN)/convfuzz fuzz --time 60 --seed 0 --out runs/make-fuzz

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The inner loop: unit tests only (no sandbox, no exporter, no process; tests/conftest.py
# fails an unmarked test that starts one). `make test` still runs everything.
test-fast: $(STAMP)
	CONVFUZZ_UNIT=1 $(BIN)/python -m pytest -q -m "not slow and not integration"

lint: $(STAMP)
	$(BIN)/ruff check fuzzer tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

# The experiment of issue 8: a `real` and a `random` arm of equal budget and the same fixed
# seed on each target family, then `convfuzz analyze` over all four stores into docs/results/
# and docs/results.md. Time budgets fix the stream (same seed, same Cases) but not how far
# into it a run gets; set EXP_CASES for a budget in Cases that reproduces exactly.
EXP_SECONDS        ?= 1200
EXP_DYNAMO_SECONDS ?= 300
EXP_CASES          ?=
EXP_SEED           ?= 1
EXP_WORKERS        ?= 1
EXP_DIR            ?= runs/experiment
SEEDS              ?= seeds
RESULTS            ?= docs/results
RESULTS_MD         ?= docs/results.md
EXP_ARM = $(BIN)/convfuzz fuzz --seed $(EXP_SEED) --workers $(EXP_WORKERS) --seeds $(SEEDS) \
	$(if $(EXP_CASES),--cases $(EXP_CASES))

experiment: $(STAMP)
	@test -f $(SEEDS)/ngrams.json || { echo "no mined seeds in $(SEEDS)/ (run: convfuzz mine --out $(SEEDS))"; exit 2; }
	rm -rf $(EXP_DIR)  # a store would resume its stream: start every arm afresh
	for arm in real random; do \
	  $(EXP_ARM) --source $$arm --time $(EXP_SECONDS) -t torchscript-17/ort-all \
	    --out $(EXP_DIR)/$$arm-torchscript || exit $$?; \
	  $(EXP_ARM) --source $$arm --time $(EXP_DYNAMO_SECONDS) -t dynamo/ort-all \
	    --out $(EXP_DIR)/$$arm-dynamo || exit $$?; \
	done
	$(BIN)/convfuzz analyze $(EXP_DIR)/real-torchscript $(EXP_DIR)/random-torchscript \
	  $(EXP_DIR)/real-dynamo $(EXP_DIR)/random-dynamo --seeds $(SEEDS) --out $(RESULTS) \
	  --markdown $(RESULTS_MD) --note "Budget (make experiment): per arm $(EXP_SECONDS) s \
	on torchscript-17/ort-all and $(EXP_DYNAMO_SECONDS) s on dynamo/ort-all$(if $(EXP_CASES), \
	(at most $(EXP_CASES) Cases per campaign)), seed $(EXP_SEED), $(EXP_WORKERS) worker(s), \
	$(shell nproc) cores."

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
