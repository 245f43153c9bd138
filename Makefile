# The course in two commands (Debian/Ubuntu; as root, missing system packages are installed):
#   make lab    set everything up, then JupyterLab on notebooks/
#   make test   set everything up, then lint, unit, integration, notebook and browser tests
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Trust the host's CA bundle in the offline stand-in images, so `pip install` inside
# containers works behind a TLS-inspecting proxy (needed on such networks; 0 to disable).
TRUST_HOST_CA ?= 1
# Never pull images; build stand-ins from Debian packages instead (this repo's .ci/run sets it).
OFFLINE ?= 0

# The engines `make test` runs the integration tests and notebooks on (see testbed/test_run.py;
# `make test ENGINE=28.5+containerd` picks one; empty: testbed.engines.MATRIX, the three of
# docs/TESTING.md). Specs: python -m testbed.engines list.
ENGINES ?=
ifdef ENGINE
ENGINES := $(ENGINE)
export LABKIT_ENGINE := $(ENGINE)
endif

export VENV PYTHON
export LABKIT_ENGINES := $(ENGINES)
export LABKIT_TRUST_HOST_CA := $(TRUST_HOST_CA)
ifeq ($(OFFLINE),1)
export LABKIT_OFFLINE := 1
endif

.PHONY: help venv engine engine-stop images registry doctor lab test ci bench lint dind dind-stop

help:
	@echo "make lab | test | test-quick | bench | lint | venv | engine | engine-stop | images | registry | doctor"
	@echo "make test-concurrency LEARNERS=N   N learners at once on one engine of its own"
	@echo "make notebooks   regenerate every notebook's stored outputs from one clean run on a"
	@echo "                 DinD engine of its own (ENGINE=SPEC, default: python -m testbed.engines;"
	@echo "                 OUT=DIR writes them elsewhere)"
	@echo "make classroom | classroom-stop | classroom-status | test-classroom | dind | dind-stop | badges"
	@echo "                 (docs/INSTRUCTORS.md, docs/TESTING.md, docs/CI.md)"

venv:
	@scripts/venv.sh

engine:
	@scripts/engine.sh start

engine-stop:
	@scripts/engine.sh stop

images: venv engine
	$(BIN)/labkit prepare $(if $(filter 1,$(TRUST_HOST_CA)),--trust-host-ca)

registry: images
	$(BIN)/labkit registry start

doctor: venv
	$(BIN)/labkit doctor

# A DinD engine for the tests (python -m testbed.dind --help): LABKIT_ENGINE=SPEC,
# LABKIT_DIND_STATE=DIR, LABKIT_DIND_HOST for a CI service's engine.
dind: images
	@$(BIN)/python -m testbed.dind start

dind-stop: venv
	@$(BIN)/python -m testbed.dind stop

lab:
	@scripts/lab.sh

# Every stage, side by side where the machine allows, one summary of their times at the end
# (testbed/test_run.py). `make test-quick`: lint, unit tests and the notebooks on one engine.
test:
	@scripts/test.sh

.PHONY: test-quick
test-quick:
	@scripts/test.sh --quick

# What CI services run (.github/workflows/ci.yml, .gitlab-ci.yml): `make test` in the
# environment each one gives, made right by scripts/ci.sh (GitHub: root through sudo;
# GitLab: the dind service as the engine). `make ci ENGINE=20.10` as for `make test`.
ci:
	@scripts/ci.sh

# N learners at once on ONE engine of its own, each its own LABKIT_USER, each running every
# notebook in order under nbval; pass/fail and wall time per learner (testbed/concurrency.py).
# Not part of `make test` (time). ENGINE=SPEC picks the engine (default: testbed.engines').
LEARNERS ?= 8
.PHONY: test-concurrency
test-concurrency: images
	@$(BIN)/python -m testbed.concurrency --learners "$(LEARNERS)" \
		$(if $(ENGINE),--engine "$(ENGINE)") --notebooks "$(NOTEBOOKS)"

# The lab's steps through labkit vs the docker CLI (and the cached rebuild against its goal),
# layer analysis vs `docker save`, and the warm course's cell times against its goals,
# on the oldest and the newest engine of the matrix, each a DinD engine of its own that is
# removed afterwards (e.g. make bench BENCH_ARGS="--rounds 3"; python -m testbed.bench --help).
BENCH_ARGS ?=
bench: venv
	@$(BIN)/python -m testbed.bench $(BENCH_ARGS)

# ruff over the repository, and mypy (strict on labkit and testbed; [tool.mypy] in pyproject.toml).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# Every notebook's stored outputs from one clean run, in order, on a fresh DinD engine of its
# own that is removed afterwards (python -m testbed.notebooks store). ENGINE=SPEC picks the
# engine (default: testbed.engines'); OUT=DIR writes the executed notebooks there instead of
# notebooks/.
.PHONY: notebooks
notebooks: images
	@$(BIN)/python -m testbed.notebooks store $(if $(ENGINE),--engine "$(ENGINE)") \
		$(if $(OUT),--out "$(OUT)")

# The README's Codespaces and Binder badges for this repository's GitHub path: from the
# origin remote, or `make badges REPO=owner/name` (scripts/badges.py; its --check runs in tests).
.PHONY: badges
badges:
	$(PYTHON) scripts/badges.py $(if $(REPO),--repo $(REPO))

# A classroom on this machine (scripts/classroom.sh, classroom/): JupyterHub with one Docker
# engine per learner, e.g. `make classroom LEARNERS=30`; `make classroom-stop` removes all of
# it (CLEAN=1: its images and records too). `make test-classroom`: three learners through the
# hub's REST API, the first through every notebook (tests/classroom/; its time is in
# docs/MEASUREMENTS.md).
.PHONY: classroom classroom-stop classroom-status test-classroom
LEARNERS ?= 3
classroom: images
	@LEARNERS=$(LEARNERS) scripts/classroom.sh start

classroom-stop:
	@CLEAN=$(CLEAN) scripts/classroom.sh stop

classroom-status:
	@scripts/classroom.sh status

test-classroom: images
	$(BIN)/pytest -q -p no:cacheprovider tests/classroom
