# noisead — set-up, demo, tests, training and benchmarks.
# `make demo` and `make test` do all the set-up on a fresh machine.

PY      := .venv/bin/python
PIP     := .venv/bin/pip
NOISEAD := .venv/bin/noisead
SHARED  ?= ../shared
DATA    ?= data
STAMP   := .venv/.installed

.PHONY: venv demo test test-fast lint data train train-dncnn17 train-restormer train-campaign \
        train-campaign-select fit decision check-default \
        evaluate tables bench bench-outputs bench-throughput \
        scene-splices large-splices clean browser-deps gpu-data train-gpu

venv: $(STAMP)

# torch is pinned first so that pip takes the CPU build on this disk, not a CUDA one.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(NOISEAD) analyze src/noisead/examples/spliced.png -o demo-output --redo
	@echo "heatmap, mask, overlay and fingerprint written to demo-output/ (spliced.*.png)"

browser-deps:
	bash scripts/install_browser_test_deps.sh

test: venv browser-deps
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -x --ignore=tests/serve/test_browser.py

lint: venv
	.venv/bin/ruff check src tests scripts benchmarks experiments

# --- data, training, evaluation (long; results go to docs/BENCHMARKS.md) ---------------

HOLDOUT_REAL := Canon-EOS-80D,NIKON-D90,SONY-ILCE-7M2,Apple-iPhone-XR,Hewlett-Packard-Photosmart-M627,SAMSUNG-GT-P5210
HOLDOUT_SIM  := simcam20,simcam21,simcam22,simcam23

data: venv
	$(NOISEAD) data simulate-cameras $(SHARED)/scenes/cvip -o $(DATA)/simcams --models 24 --seed 0 --downscale 1 --workers 2
	$(PY) scripts/build_benchmarks.py --shared $(SHARED) --data $(DATA) --holdout $(HOLDOUT_REAL),$(HOLDOUT_SIM)

# The shipped default: DnCNN-small (10 x 32), DBL with patch-standardized fingerprints.
# Resumes from runs/dncnn-small/checkpoint.safetensors when interrupted.
train: venv
	$(NOISEAD) train-extractor $(SHARED)/cameras $(DATA)/simcams -o runs/dncnn-small \
	  --config configs/train_dncnn_small.json --holdout $(HOLDOUT_REAL),$(HOLDOUT_SIM)
	$(MAKE) fit

fit: venv
	$(NOISEAD) fit-detector --cameras $(SHARED)/cameras $(DATA)/simcams --run runs/dncnn-small \
	  --holdout $(HOLDOUT_REAL),$(HOLDOUT_SIM) --per-camera 3 --max-side 512 --mode reference \
	  --name default --val $(DATA)/val --evidence all \
	  -o src/noisead/weights/default.safetensors

# The decision's operating point (docs/BENCHMARKS.md, "The decision"): scores untouched
# photos of validation and held-out cameras under three conditions (resumable, recorded
# in runs/false-alarms/), refits the image calibration on the validation photos, chooses
# the 1% threshold there, measures it on held-out cameras, writes both into the default.
DECISION_SCORES := benchmarks/results/decision-scores-reference.jsonl
decision: venv
	$(PY) scripts/measure_false_alarms.py --shared $(SHARED) --data $(DATA) \
	  --holdout $(HOLDOUT_REAL),$(HOLDOUT_SIM) --out runs/false-alarms --write \
	  --record $(DECISION_SCORES) --doc docs/BENCHMARKS.md

# Does make fit's recipe rebuild the shipped default bit for bit from its own extractor?
check-default: venv
	$(PY) scripts/check_default_reproduces.py --shared $(SHARED) --data $(DATA) \
	  --decision-scores $(DECISION_SCORES)

# The first default (DnCNN 17 x 64 from the AWGN denoiser, raw DBL distances), for comparison.
train-dncnn17: venv
	$(NOISEAD) train-extractor $(SHARED)/cameras $(DATA)/simcams -o runs/dncnn-default \
	  --model dncnn --init-from $(SHARED)/weights/dncnn_gray_awgn25.safetensors \
	  --config configs/train_dncnn_default.json --holdout $(HOLDOUT_REAL),$(HOLDOUT_SIM)

# Restormer-tiny (2 levels, width 16) on two CPU cores (run it again to resume its
# checkpoint), then its detector (the refinement block and the fingerprint as taps) and its
# test tables (docs/BENCHMARKS.md, the comparison extractor).
train-restormer: venv
	$(NOISEAD) train-extractor $(SHARED)/cameras $(DATA)/simcams -o runs/restormer-tiny \
	  --config configs/train_restormer_tiny.json --holdout $(HOLDOUT_REAL),$(HOLDOUT_SIM)
	$(PY) scripts/fit_default.py --shared $(SHARED) --data $(DATA) --run runs/restormer-tiny \
	  --holdout $(HOLDOUT_REAL),$(HOLDOUT_SIM) --per-camera 3 --max-side 512 --mode reference \
	  --name restormer-tiny-refine --taps refinement,fingerprint --val $(DATA)/val \
	  --out runs/restormer-tiny/detector-refine.safetensors
	$(PY) scripts/evaluate_all.py --max-images 12 --data $(DATA) --shared $(SHARED) \
	  --model runs/restormer-tiny/detector-refine.safetensors --out runs/eval-restormer \
	  --methods noisead-reference --sets splice-png,splice-jpeg,generative-png,generative-jpeg \
	  --sweep-sets splice-jpeg --jpeg 95,90 --resize 0.9

# The training campaign (docs/BENCHMARKS.md, "Training campaign"): DnCNN-small and
# Restormer-tiny from scratch with the recipe the pilots chose (configs/campaign_*.json),
# at equal CPU time in alternating legs of LEG_S s, LEGS legs each, one thread. Run it
# again to resume: finished legs are counted in runs/campaign/legs.done and every leg
# resumes its run's checkpoint. train-campaign-select then scores every saved snapshot of
# both runs on the unseen-camera validation sets (never the test sets).
LEGS  ?= 6
LEG_S ?= 1500
train-campaign: venv
	LEGS=$(LEGS) LEG_S=$(LEG_S) SHARED=$(SHARED) DATA=$(DATA) \
	  HOLDOUT=$(HOLDOUT_REAL),$(HOLDOUT_SIM) scripts/train_campaign.sh

train-campaign-select: venv
	for run in runs/campaign/dncnn-small runs/campaign/restormer-tiny; do \
	  OMP_NUM_THREADS=1 $(PY) scripts/select_snapshot.py --run $$run --shared $(SHARED) \
	    --data $(DATA) --sets splice-png,splice-jpeg,generative-png | tee $$run/selection.md; \
	done

# Four extractors trained side by side on one GPU (scripts/train_gpu.sh).
# gpu-data packs the training images losslessly into .gpu/ (under 64 MiB; needs jpegtran).
gpu-data: venv
	scripts/pack_gpu_data.sh $(SHARED) $(DATA)/simcams .gpu

train-gpu:
	scripts/train_gpu.sh .gpu runs/gpu

evaluate: venv
	$(PY) scripts/evaluate_all.py --data $(DATA) --shared $(SHARED) --out runs/eval

# The benchmark tables of docs/BENCHMARKS.md: per-set tables of the default and the
# baselines, then the thesis-shaped tables that set them beside each extractor's own
# scores (DnCNN-small with its fusions off; Restormer-tiny if make train-restormer ran).
EVAL_SMALL := $(PY) scripts/evaluate_all.py --max-images 12 --data $(DATA) --shared $(SHARED)
tables: venv
	$(EVAL_SMALL) --out runs/eval-small --doc docs/BENCHMARKS.md \
	  --methods noisead-blind,noisead-reference,noi1,ela,noise_residual_variance,noise_statistics,jpeg_lattice
	$(NOISEAD) fit-detector --cameras $(SHARED)/cameras $(DATA)/simcams --val $(DATA)/val --learned-only \
	  --calibrate-only src/noisead/weights/default.safetensors -o runs/dncnn-small-learned.safetensors
	$(EVAL_SMALL) --out runs/eval-learned --methods noisead-reference \
	  --model runs/dncnn-small-learned.safetensors
	if [ -f runs/restormer-tiny/detector-refine.safetensors ]; then \
	  $(EVAL_SMALL) --out runs/eval-restormer --methods noisead-reference \
	    --model runs/restormer-tiny/detector-refine.safetensors; \
	else echo "no runs/restormer-tiny/detector-refine.safetensors: run make train-restormer"; fi
	$(PY) scripts/thesis_tables.py --doc docs/BENCHMARKS.md

# The fusion ablation of docs/BENCHMARKS.md: learned alone / statistics alone / fused
# without learned / fused on every test set and condition (web-like included), from one
# analysis per image; the learned map's weight on the validation sets only.
.PHONY: ablation
ablation: venv
	OMP_NUM_THREADS=1 $(PY) scripts/ablation_table.py --data $(DATA) --shared $(SHARED) \
	  --out runs/ablation --doc docs/BENCHMARKS.md

bench: venv
	$(PY) benchmarks/speed.py --out docs/BENCHMARKS.md
	$(PY) benchmarks/result_files.py --out docs/BENCHMARKS.md
	$(PY) benchmarks/throughput.py --out docs/BENCHMARKS.md

# Write time and size of each kind of result file (noisead analyze --outputs).
bench-outputs: venv
	$(PY) benchmarks/result_files.py --out docs/BENCHMARKS.md

# Images per hour of noisead analyze with --workers 1,2 and on a local two-node Ray cluster.
bench-throughput: venv
	$(PY) benchmarks/throughput.py --out docs/BENCHMARKS.md

# The core pipeline's done-check: splices across held-out simulated camera pipelines.
scene-splices: venv
	$(PY) benchmarks/scene_splices.py --simcams $(DATA)/simcams --cameras $(HOLDOUT_SIM) \
	  --out docs/BENCHMARKS.md

# Large foreign regions (5-50 % of the image) between photos of two held-out camera
# models, no JPEG grid: blind mode with and without its two-part explanation.
large-splices: venv
	OMP_NUM_THREADS=1 $(PY) benchmarks/large_splices.py --shared $(SHARED) --data $(DATA) \
	  --per-bucket 12 --out docs/BENCHMARKS.md

clean:
	rm -rf demo-output .pytest_cache
