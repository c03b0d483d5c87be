# The README's two commands: `make repro` and `make test`. Both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONHASHSEED := 0

.PHONY: setup repro test perf clean-reports

setup: $(STAMP)

# facenet-pytorch (MTCNN, weights shipped in the wheel) declares torch<2.3 and numpy<2 but runs
# beside torch 2.14.1 and numpy 2; --no-deps keeps pip from downgrading torch. Its own needs
# (requests, tqdm, pillow, torchvision) are pinned in pyproject.toml.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	$(VENV)/bin/python -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

repro: setup
	mkdir -p data
	dvc repro

test: setup
	pytest

clean-reports:
	rm -rf reports artifacts
