# Every target builds (or refreshes) the project's own .venv from requirements.txt first.
#
# make test [TEST_WORKERS=0]                the test suite (CI runs exactly this), one pytest
#                                           worker per core (0: one process)
# make reproduce-table                      table1 profile, local pool, then the table; finished
#                                           runs are skipped, unfinished ones resume
# make reproduce-table PROFILE=smoke        seconds per run, in results/smoke/ (git-ignored)
# make reproduce-table PROFILE=paper SEEDS=5 DOMAINS=Hopper,Walker ALGOS=qprop-c,trpo
# make reproduce-table BACKEND=ray          same runs as Ray tasks (RAY_ADDRESS=... for a cluster)
# make reference-returns                   what a zero action and random actions earn per domain
#                                           -> results/reference_returns.md/.csv (seconds)
# make table / make plot                    re-read $(RESULTS)/$(PROFILE)/runs (and the profile's
#                                           extra rows); write $(RESULTS)/$(PROFILE)/table*.md,
#                                           figures/; no training
# make bench                                speed benchmarks on this machine
# make bench-memory                         extra memory of a checkpoint and a resume at
#                                           Humanoid size -> results/bench/checkpoint_memory_*.md
# make bench-peers                          our TRPO vs sb3-contrib's (PyTorch) TRPO, steps/s;
#                                           builds a separate .venv-peers (torch) first
# make crosscheck                           one TRPO update + GAE, ours vs sb3-contrib, numerically
# make campaign / campaign-stop / campaign-status / campaign-collect   the campaigns (end)
# make stability                           issue 14: the critic's divergences and fixes, per
#                                           stable* profile -> results/<profile>/stability.md
# make parity [WORKERS=2]                   learning parity: our TRPO, its ablation chain and
#                                           sb3-contrib's TRPO -> results/parity.md (hours)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PEERS_VENV := .venv-peers
PEERS_PY := $(PEERS_VENV)/bin/python
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: install test bench bench-memory bench-peers crosscheck parity lint clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# TEST_WORKERS: pytest-xdist workers (auto: one per core; 0: in this process). loadscope keeps a
# module's tests on one worker, so its module-scoped fixtures (a smoke sweep) run once.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope tests

lint: $(STAMP)
	$(VENV)/bin/ruff check qprop_tf tests reproduce

bench: $(STAMP)
	$(PY) -m reproduce.bench.speed

bench-memory: $(STAMP)
	$(PY) -m reproduce.bench.checkpoint_memory

# torch, stable-baselines3 and sb3-contrib live only in .venv-peers (requirements-peers.txt).
$(PEERS_STAMP): requirements-peers.txt
	test -x $(PEERS_PY) || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PY) -m pip install --quiet --upgrade pip
	$(PEERS_PY) -m pip install --quiet -r requirements-peers.txt
	touch $(PEERS_STAMP)

# One TRPO update and GAE on identical inputs, ours against sb3-contrib's: results/crosscheck.md
crosscheck: $(STAMP) $(PEERS_STAMP)
	$(PY) -m reproduce.crosscheck --peer-python $(PEERS_PY)

bench-peers: $(STAMP) $(PEERS_STAMP)
	$(PY) -m reproduce.bench.peers --peer-python $(PEERS_PY)

# reproduce/configs/parity.toml; runs with DONE are skipped, the report is written even when
# some runs failed (the target then fails). RESULTS and WORKERS are set below.
parity: $(STAMP) $(PEERS_STAMP)
	$(PY) -m reproduce.parity --peer-python $(PEERS_PY) --results $(RESULTS) $(if $(WORKERS),--workers $(WORKERS))

clean-venv:
	rm -rf $(VENV) $(PEERS_VENV)

# ---- reproduce/ harness ------------------------------------------------------------
# Each profile has its own tree: $(RESULTS)/$(PROFILE)/runs, table*.md, figures/.
PROFILE ?= table1
BACKEND ?= local
RESULTS ?= results
DOMAINS ?=
ALGOS ?=
SEEDS ?=
WORKERS ?=

SWEEP_ARGS = --profile $(PROFILE) --backend $(BACKEND) --results $(RESULTS) \
	$(if $(DOMAINS),--domains $(DOMAINS)) $(if $(ALGOS),--algos $(ALGOS)) \
	$(if $(SEEDS),--seeds $(SEEDS)) $(if $(WORKERS),--workers $(WORKERS))

.PHONY: reproduce-table sweep table plot sweep-dry-run reference-returns

sweep: $(STAMP)
	$(PY) -m reproduce.sweep $(SWEEP_ARGS)

# The table is written even when some runs failed; the target then still fails.
reproduce-table: $(STAMP)
	$(PY) -m reproduce.sweep $(SWEEP_ARGS); status=$$?; \
	$(PY) -m reproduce.table --results $(RESULTS) --profile $(PROFILE) \
		$(if $(SEEDS),--seeds $(SEEDS)); \
	exit $$status

# For table1 in results/, also TR-c-Q-Prop against TRPO with bootstrap CIs, and the README's
# generated blocks (reproduce.readme_table).
table: $(STAMP)
	$(PY) -m reproduce.table --results $(RESULTS) --profile $(PROFILE)
	@if [ "$(PROFILE)" = table1 ] && [ "$(RESULTS)" = results ]; then \
		$(PY) -m reproduce.compare --results $(RESULTS) --profile table1 --a qprop-c --b trpo \
			> /dev/null && $(PY) -m reproduce.readme_table; fi

plot: $(STAMP)
	$(PY) -m reproduce.plot --results $(RESULTS) --profile $(PROFILE)

reference-returns: $(STAMP)
	$(PY) -m reproduce.reference_returns --out $(RESULTS)/reference_returns

sweep-dry-run: $(STAMP)
	$(PY) -m reproduce.sweep $(SWEEP_ARGS) --dry-run

# Issue 15, each algorithm at its own best batch: `make sweep PROFILE=bestbatch` (one domain's
# grid at a time), `make best-batch-select` writes results/bestbatch/selection.json (the
# confirmation's algos, for each domain whose grid is complete; again as more complete), then
# `make sweep PROFILE=bestbatch-confirm`; `make best-batch` writes the report and figures.
.PHONY: best-batch best-batch-select
best-batch: $(STAMP)
	$(PY) -m reproduce.best_batch report --results $(RESULTS)

best-batch-select: $(STAMP)
	$(PY) -m reproduce.best_batch select --results $(RESULTS)

# Issue 14, the critic's stability: after `make sweep PROFILE=stable` (released base,
# Swimmer x 5), `stable-strong` (strong base, Swimmer x 5) and `stable-walker` (Walker x 3),
# `make stability` writes results/<profile>/stability.md and figures/stability_<Domain>.png
# for each of them that has runs (baseline and reference: the profile's `stability` table in
# profiles.toml), then results/stability_summary.md (divergences per profile and domain).
STABILITY_PROFILES = stable stable-strong stable-walker
.PHONY: stability
stability: $(STAMP)
	@for p in $(STABILITY_PROFILES); do if [ -d $(RESULTS)/$$p/runs ]; then \
		$(PY) -m reproduce.stability --results $(RESULTS) --profile $$p || exit 1; fi; done
	$(PY) -m reproduce.stability_summary --results $(RESULTS)

# ---- campaigns (issue 16): days of compute, in stretches, several profiles at once --------
# Each profile pinned under CAMPAIGN_ROOT has its own pin (<root>/<profile>/PIN.json, code in a
# worktree <root>/wt-<sha7>) and sweep; CAMPAIGN_PROFILE= (default: every pinned profile, or
# table1 when none is) narrows a target to one.
# make campaign [WORKERS=2] [NICE=10]   (re)start every pinned profile's sweep in the
#                                       background, where it stood (running ones are skipped);
#                                       CAMPAIGN_PROFILE=stable starts (and first pins) one
#                                       (at each profile's own priority: python -m
#                                       reproduce.campaign set --profile P --nice N --workers K)
#                                       STOP_IN=M also schedules `make campaign-stop` M
#                                       minutes from now (how a working session ends)
# make campaign-stop [STOP_IN=M]        SIGTERM each sweep and wait: every run checkpoints
#                                       (STOP_IN: later, by a detached timer)
# make campaign-status [BRIEF=1]         each profile's ledger (BRIEF: its totals on one line),
#                                       and whether its sweep is running
# make campaign-collect                 per profile: finished runs -> results/<profile>/runs (no
#                                       checkpoints), unfinished progress ->
#                                       results/<profile>/inflight, the ledger
#                                       results/<profile>/CAMPAIGN.md, then its table and figures
#                                       (one profile's failure does not skip the others')
CAMPAIGN_ROOT ?= /var/tmp/qprop-campaign
CAMPAIGN_PROFILE ?=
CAMPAIGN_ARGS = $(if $(CAMPAIGN_PROFILE),--profile $(CAMPAIGN_PROFILE)) --root $(CAMPAIGN_ROOT) \
	--results $(RESULTS)

.PHONY: campaign campaign-stop campaign-status campaign-collect

campaign: $(STAMP)
	$(PY) -m reproduce.campaign start $(CAMPAIGN_ARGS) $(if $(WORKERS),--workers $(WORKERS)) \
		$(if $(NICE),--nice $(NICE)) $(if $(STOP_IN),--stop-in $(STOP_IN))

campaign-stop:  # no $(STAMP): stopping must not reinstall the venv the sweeps run from
	$(PY) -m reproduce.campaign stop $(CAMPAIGN_ARGS) $(if $(STOP_IN),--in $(STOP_IN))

campaign-status: $(STAMP)
	$(PY) -m reproduce.campaign status $(CAMPAIGN_ARGS) $(if $(BRIEF),--brief)

campaign-collect: $(STAMP)
	$(PY) -m reproduce.campaign collect $(CAMPAIGN_ARGS)
	st=0; for p in $$($(PY) -m reproduce.campaign profiles $(CAMPAIGN_ARGS)); do \
		$(MAKE) --no-print-directory table PROFILE=$$p || st=1; \
		$(PY) -m reproduce.plot --results $(RESULTS) --profile $$p --allow-empty || st=1; \
	done; exit $$st
