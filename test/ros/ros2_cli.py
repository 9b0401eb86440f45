"""Helpers for tests through the real ROS 2 command line (``ros2 launch``, ``run``, ``param``).

A colcon workspace holds a copy of the tracked sources, built by this environment's Python
(colcon from PyPI), as on a machine whose ROS 2 comes with the same interpreter. Commands run
in the environment a user's shell has after ``. install/setup.bash``, with the venv's
``ros2`` on the PATH. launch, launch_ros and ros2cli have no wheels on the package index:
``make setup`` installs them from ``ROS2_CLI_WHEELS`` (default ``../shared/ros2-cli``, wheels
built from the upstream sources), and without that folder the tests that need them skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from node_harness import REPO, wait_until

WHEELS = Path(os.environ.get('ROS2_CLI_WHEELS', REPO.parent / 'shared' / 'ros2-cli'))
TOOLS = ('ros2cli', 'ros2launch', 'launch_ros', 'ros2param', 'ros2lifecycle', 'ros2topic')


def missing_tools(modules: tuple[str, ...] = TOOLS) -> str | None:
    """Why the ROS 2 command-line tests cannot run here, or None when they can."""
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    if not absent:
        return None
    return (f'the ROS 2 command-line tools are not installed ({", ".join(absent)}): `make setup` '
            f'installs them from {WHEELS} (wheels of launch, launch_ros, ros2cli and '
            'sensor_msgs_py built from the upstream sources), which this checkout lacks')


def require_tools(modules: tuple[str, ...] = TOOLS) -> None:
    reason = missing_tools(modules)
    if reason:
        pytest.skip(reason, allow_module_level=True)


def tracked_files() -> list[str]:
    done = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                          cwd=REPO, capture_output=True, text=True)
    if done.returncode == 0 and done.stdout.strip():
        return [name for name in done.stdout.splitlines() if (REPO / name).is_file()]
    skip = ('.git', '.venv', 'outputs', 'build', 'install', 'log')  # a tree without git
    return [str(p.relative_to(REPO)) for p in REPO.rglob('*')
            if p.is_file() and not p.relative_to(REPO).parts[0].startswith(skip)
            and '__pycache__' not in p.parts]


def build_workspace(root: Path) -> Path:
    """``colcon build`` of the tracked sources in ``root/src``; returns ``root/install``."""
    source = root / 'src' / 'zoedepth_ros'
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    env = dict(os.environ, COLCON_HOME=str(root / '.colcon'))
    done = subprocess.run([sys.executable, '-m', 'colcon', 'build', '--base-paths', 'src',
                           '--event-handlers', 'console_direct-'], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root / 'install'


def sourced_environment(install: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a shell that ran ``. install/setup.bash`` (venv tools first)."""
    base = dict(os.environ, **(extra or {}))
    base['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{base.get("PATH", "")}'
    done = subprocess.run(['bash', '-c', f'. "{install}/setup.bash" && env -0'], env=base,
                          capture_output=True, check=True)
    pairs = (item.split('=', 1) for item in done.stdout.decode().split('\0') if '=' in item)
    return dict(pairs)


class Ros2:
    """``ros2`` commands in a sourced workspace environment."""

    def __init__(self, install: Path, log_dir: Path, extra: dict[str, str] | None = None):
        self.install = install
        self.env = sourced_environment(install, dict(extra or {}, ROS_LOG_DIR=str(log_dir),
                                                     PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1'))
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[str]] = []

    def run(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``ros2 *args``; asked again while it answers "Node not found" (a ``--no-daemon``
        call discovers the graph from scratch and can miss a node on a busy machine)."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = subprocess.run(['ros2', *args], env=self.env, capture_output=True,
                                  text=True, timeout=timeout_s)
            if 'Node not found' not in done.stderr or time.monotonic() > deadline:
                return done

    def start(self, *args: str, output: Path) -> subprocess.Popen[str]:
        """``ros2 ...`` in its own session (as a terminal starts it), output to ``output``."""
        log = open(output, 'w')  # noqa: SIM115 - the child holds it; closed with the file object
        process = subprocess.Popen(['ros2', *args], env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        log.close()
        self.started.append(process)
        return process

    def wait_for_node(self, name: str, lifecycle: bool = False) -> None:
        """Until ``ros2 node list`` (or ``ros2 lifecycle nodes``) lists ``name``: a CLI call
        made before discovery answers "Node not found"."""
        verb = ['lifecycle', 'nodes'] if lifecycle else ['node', 'list']

        def listed() -> bool:
            done = self.run(*verb, '--no-daemon', '--spin-time', '1.0')
            return name in done.stdout.split()

        wait_until(listed, what=f'{name} in ros2 {" ".join(verb)}')

    def stop_all(self, sig: int = signal.SIGINT, timeout_s: float = 30.0) -> list[int]:
        """Signal each started process group as a terminal's Ctrl-C does; their exit codes."""
        codes = []
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, sig)
            try:
                codes.append(process.wait(timeout=timeout_s))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                codes.append(process.wait())
        self.started.clear()
        subprocess.run(['ros2', 'daemon', 'stop'], env=self.env, capture_output=True,
                       timeout=30)
        return codes


def params_file(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({'/**': {'ros__parameters': values}}))
    return path


def settle(seconds: float) -> None:
    """A pause that lets messages in flight arrive (never used to wait for a condition)."""
    time.sleep(seconds)
