# Two entry points for a fresh machine: `make demo` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
OUT ?= outputs/demo
PYTEST_ARGS ?= -n 2

.PHONY: setup demo test test-fast lint bench clean

# The venv is reused while requirements.txt is unchanged (make compares timestamps).
$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .

demo: setup
	$(PY) -m zoedepth_ros.cli.demo --output $(OUT)

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

# Inner loop: everything but the tests marked slow (torchrun DDP, resume, demo, node overload).
test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS) -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) -m pip install -q -r benchmarks/requirements-bench.txt  # benchmark-only
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_pointcloud.py
	$(PY) benchmarks/bench_node.py

clean:
	rm -rf $(VENV) build *.egg-info outputs
