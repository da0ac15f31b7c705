# Every target creates .venv and installs into it when missing, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Two install levels: `run` needs the package only; `test`/`bench`/`lint` add pytest, hypothesis, ruff and
# the torch oracle (pinned to 2.13.0, a CPU build: never an unpinned torch).
BASE   := $(VENV)/.installed-base
FULL   := $(VENV)/.installed-full

.PHONY: run test sweep bench bench-compare bench-peers bench-detection lint docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(BASE): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(FULL): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,oracle]'
	touch $@ $(BASE)

run: $(BASE)
	$(VENV)/bin/gradcheck run cases

# One pytest-xdist worker more than the CPUs: the timeout tests wait on worker processes that start or hang
# on purpose, and a waiting worker would leave its CPU idle (with -n auto, 2 workers kept the CPUs ~60% busy).
JOBS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) + 1)')

test: $(FULL)
	$(PY) -m pytest -n $(JOBS)

# The 20-seed no-false-alarm sweep of the four 102.8M-weight catalogue cases (~6 min; make test runs them
# at seed 0) and of the two 16.8M-weight ones (make test runs seeds 1-5; every other case over 20 seeds),
# and the full-size FC-as-conv equality of seed 001.
sweep: $(FULL)
	GRADCHECK_SWEEP_HUGE=1 $(PY) -m pytest -n auto tests/test_cases.py tests/test_fc_as_conv.py \
		-k "over_20_seeds_huge or fc-as-conv-4096-4096 or vgg16_7x7x512"

bench: $(FULL)
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-group-by=group --benchmark-autosave

# The same, compared with the last saved `make bench` run: fails when a benchmark's best time (min, the
# statistic least moved by a busy machine) is 30% slower. Nothing is saved, so the baseline stays put.
bench-compare: $(FULL)
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-group-by=group --benchmark-compare \
		--benchmark-compare-fail=min:30%

# Ours against torch.autograd.gradcheck, a one-coordinate-per-forward NumPy loop and torch's forward+backward
# (each measurement in its own process; the 100M-weight target 3 included): a markdown table on stdout
# and in .benchmarks/peers.md.
bench-peers: $(FULL)
	$(PY) benchmarks/peers.py --vgg

# The detection floor: the smallest relative error on one element of dW each checker catches (ours with
# central, richardson and complex step; torch.autograd.gradcheck default and fast_mode), asserted in the
# order claimed; the tables on stdout and in .benchmarks/detection.md (~1.5 min; `python
# benchmarks/detection.py --quick` for a short scan without the asserts).
bench-detection: $(FULL)
	GRADCHECK_DETECTION=1 $(PY) -m pytest benchmarks/test_detection.py -q -s -p no:cacheprovider

lint: $(FULL)
	$(VENV)/bin/ruff check gradcheck layers tests benchmarks docs

# The README's pictures (docs/*.png, committed): heat maps and error-vs-eps plots of planted bugs.
docs: $(BASE)
	$(PY) docs/make_pictures.py

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks .hypothesis build *.egg-info
