# Two entry points for a fresh machine: `make demo` and `make test` (see README).
# `make test-jazzy` runs the same suite at ROS 2 Jazzy's library levels (rclpy 7.1.6,
# numpy 1.26.4, OpenCV 4.6.0) in a second venv; CI (.ci/run) runs both.
VENV ?= .venv
VENV_JAZZY ?= .venv-jazzy
PY := $(VENV)/bin/python
PY_JAZZY := $(VENV_JAZZY)/bin/python
STAMP := $(VENV)/.requirements-installed
STAMP_JAZZY := $(VENV_JAZZY)/.requirements-installed
OUT ?= outputs/demo
PYTEST_ARGS ?= -n 2
# The real launch, launch_ros and ros2cli (ros2 launch/run/param/topic/node/lifecycle) and
# sensor_msgs_py have no wheels on the package index: this folder holds them, built unmodified
# from the upstream sources, one set per environment (rolling/ for the Kilted wheels, jazzy/).
# Without it, setup installs everything else and the tests that drive `ros2 ...` skip.
ROS2_CLI_WHEELS ?= ../shared/ros2-cli

.PHONY: setup setup-jazzy demo demo-model test test-fast test-jazzy test-all lint bench clean

# A venv is reused while its requirement files are unchanged (make compares timestamps).
$(STAMP): requirements.txt requirements-common.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

$(STAMP_JAZZY): requirements-jazzy.txt requirements-common.txt
	test -x $(PY_JAZZY) || python3 -m venv $(VENV_JAZZY)
	$(PY_JAZZY) -m pip install -q --upgrade pip
	$(PY_JAZZY) -m pip install -q -r requirements-jazzy.txt
	touch $(STAMP_JAZZY)

# $(call ros2_cli,PYTHON,SET): the ROS 2 command-line wheels of SET, when the folder exists
# (their PyPI dependencies are in requirements-common.txt).
define ros2_cli
	@if [ -d $(ROS2_CLI_WHEELS)/$(2) ]; then \
	  $(1) -m pip install -q --no-deps $(ROS2_CLI_WHEELS)/$(2)/*.whl; \
	else echo "no $(ROS2_CLI_WHEELS)/$(2): the tests of the ros2 command line will skip"; fi
endef

setup: $(STAMP)
	$(call ros2_cli,$(PY),rolling)
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .

setup-jazzy: $(STAMP_JAZZY)
	$(call ros2_cli,$(PY_JAZZY),jazzy)
	$(PY_JAZZY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .

demo: setup
	$(PY) -m zoedepth_ros.cli.demo --output $(OUT)

# The bundled demo model, reproduced: synthetic scenes (seed 0 to train, seed 1 held out), the
# relative stage, the metric NK stage, the std stage, float16 bundle, held-out evaluation (about
# 2.7 hours on 2 CPU cores; the recipes are config/train/demo_relative.yaml, demo_nk.yaml and
# demo_std.yaml).
SYNTH := $(PY) -m zoedepth_ros.cli.main synth --domain both --size 160x120 --workers 2
demo-model: setup
	test -d outputs/synth_train || $(SYNTH) --count 3000 --seed 0 --output outputs/synth_train
	test -d outputs/synth_heldout || $(SYNTH) --count 300 --seed 1 --output outputs/synth_heldout
	$(PY) -m zoedepth_ros.cli.main train --config config/train/demo_relative.yaml
	$(PY) -m zoedepth_ros.cli.main train --config config/train/demo_nk.yaml
	$(PY) -m zoedepth_ros.cli.main train --config config/train/demo_std.yaml
	$(PY) -m zoedepth_ros.cli.main export --checkpoint zoedepth_ros/assets/models/zoedepth_demo_nk.pt \
		--half --model outputs/runs/demo_std/best.pt
	$(PY) -m zoedepth_ros.cli.main eval --model zoedepth_ros/assets/models/zoedepth_demo_nk.pt \
		--dataset folder --split all --no-flip --root outputs/synth_heldout/indoor \
		--root outputs/synth_heldout/outdoor -o outputs/demo_model_heldout.json

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

# Inner loop: everything but the tests marked slow (torchrun DDP, resume, demo, node overload).
test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS) -m "not slow"

# The whole suite again at Jazzy's levels; a second ROS domain range keeps it apart.
test-jazzy: setup-jazzy
	HF_HUB_OFFLINE=1 ZOEDEPTH_TEST_DOMAIN_BASE=40 $(PY_JAZZY) -m pytest $(PYTEST_ARGS)

test-all: test test-jazzy

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# One dated report of this machine: benchmarks/reports/<machine>/<date>.md and .json (about
# 30 minutes on 2 cores; benchmarks/README.md says what each step measures).
bench: setup
	$(PY) -m pip install -q -r benchmarks/requirements-bench.txt  # benchmark-only
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) $(VENV_JAZZY) build *.egg-info outputs
