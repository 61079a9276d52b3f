# The course's commands. Quick start (README): `make book`, then `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JB_BUILD := $(BIN)/jupyter-book build . -W --keep-going
CH ?=

.PHONY: help install book test lint chapter chapters check-pairing timings benchmark student student-notebooks clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)  ## create .venv with every pinned requirement and dropoutlib (editable)

book: $(STAMP)  ## install, then build the site into _build/html (warnings are errors)
	$(JB_BUILD)

test: $(STAMP)  ## every test on both cores: lint, unit tests, pairing, strict nbval, site build, real-browser tests
	bash tools/ensure_chromium.sh
	$(BIN)/ruff check conftest.py dropoutlib tests tools book benchmarks
	$(BIN)/python tools/chapters.py check
	$(JB_BUILD)
	$(BIN)/python -m pytest tests book -n 2 --dist loadscope --durations=10  # strict nbval: pyproject.toml

lint: $(STAMP)  ## ruff on the library, the tests, the tools and the notebooks
	$(BIN)/ruff check conftest.py dropoutlib tests tools book benchmarks

chapter: $(STAMP)  ## sync one chapter to its notebook and execute it: make chapter CH=chapters/01-overfitting.md
	@test -n "$(CH)" || (echo "usage: make chapter CH=chapters/NN-slug.md" && exit 2)
	$(BIN)/python tools/chapters.py run $(CH)

chapters: $(STAMP)  ## sync and execute every chapter (refreshes all stored outputs)
	$(BIN)/python tools/chapters.py run

check-pairing: $(STAMP)  ## fail if a chapter's source and its notebook differ in any cell
	$(BIN)/python tools/chapters.py check

timings: $(STAMP)  ## execute every notebook in a fresh kernel and print a table of times
	$(BIN)/python tools/chapters.py time

benchmark: $(STAMP)  ## time copy, native, from-scratch and fused dropout (2^20..2^27, fp32 and bf16) into benchmarks/results
	$(BIN)/python benchmarks/dropout_speed.py

student: $(STAMP)  ## build the student edition of the site, every solution removed, into _build/student/html
	$(BIN)/python tools/student.py site

student-notebooks: $(STAMP)  ## write the exercise notebooks (solutions replaced by stubs) into _build/student-notebooks
	$(BIN)/python tools/student.py notebooks

clean:  ## remove the built site and caches (keeps .venv)
	rm -rf _build .pytest_cache .ruff_cache .hypothesis test-artifacts
