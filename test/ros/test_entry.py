"""run_node's signal discipline, on a small rclpy node whose shutdown hangs or not.

The first SIGINT/SIGTERM stops the node, the second (``ros2 launch`` forwarding the terminal's
Ctrl-C) is ignored, and a third ends a node whose shutdown hangs. The depth node itself is
stopped twenty times per signal in test_ros2_cli.py; here the shutdown's timing is controlled.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from node_harness import REPO, wait_until

from zoedepth_ros.ros.entry import EXIT_REPORT_S

NODE = """
import os, signal, sys, threading, time
from rclpy.node import Node
from zoedepth_ros.ros.entry import run_node

HANG_S = float(sys.argv[1])
EXIT_HANG = sys.argv[2:] == ['exit-hang']
LATE_SIGNAL = sys.argv[2:] == ['late-signal']

def held_at_exit():
    time.sleep(600)  # a thread that the interpreter's exit waits for

def late_signal(context):
    # rclpy's deferred signal thread shuts the context down; the Python half of the same
    # SIGINT reaches the main thread late, as on a loaded machine.
    context.shutdown()
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGINT)

class Slow(Node):
    def __init__(self):
        super().__init__('slow_stop')
        self.timer = self.create_timer(0.01, self.serving)
        if EXIT_HANG:
            threading.Thread(target=held_at_exit).start()

    def serving(self):
        print('serving', flush=True)
        self.timer.cancel()
        if LATE_SIGNAL:
            threading.Thread(target=late_signal, args=(self.context,)).start()

    def destroy_node(self):
        print('stopping', flush=True)
        time.sleep(HANG_S)  # a worker that does not let go
        super().destroy_node()

sys.exit(run_node(Slow))
"""


def _start(hang_s: float, *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, '-c', NODE, str(hang_s), *extra], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    wait_until(lambda: lines.append(process.stdout.readline()) or 'serving' in lines[-1],
               what='the node to serve')
    return process


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_during_shutdown_is_ignored(sig: signal.Signals) -> None:
    process = _start(hang_s=1.0)
    process.send_signal(sig)
    assert process.stdout.readline().strip() == 'stopping'
    process.send_signal(sig)  # as launch forwards Ctrl-C, while the node shuts down
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert f'stopped by {sig.name}: finished cleanly' in output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output


def test_a_third_signal_ends_a_node_that_hangs() -> None:
    process = _start(hang_s=600.0)
    process.send_signal(signal.SIGINT)
    assert process.stdout.readline().strip() == 'stopping'
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None  # still hanging: the second signal only counted
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=30)[0]
    assert time.monotonic() - started < 5.0
    assert process.returncode == 128 + signal.SIGTERM, output
    assert 'SIGTERM: signal 3 while stopping, forced exit' in output
    assert 'Traceback' not in output, output


@pytest.mark.parametrize('hang_s', [1.0, 0.0], ids=['during-cleanup', 'after-cleanup'])
def test_a_signal_counted_after_rclpy_stopped_the_spin_is_a_clean_stop(hang_s: float) -> None:
    """The context is shut down first and the Python handler runs later: while the node is
    destroyed (it must not raise into the cleanup) or after (the stop still names it)."""
    process = _start(hang_s, 'late-signal')
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert 'stopped by SIGINT: finished cleanly' in output, output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output


def test_a_hung_interpreter_exit_prints_the_threads_stacks() -> None:
    """After the node stopped cleanly only the interpreter's exit is left; should that hang,
    the stacks are on stderr before launch's SIGKILL (10 s), naming what holds the exit."""
    process = _start(0.0, 'exit-hang')
    process.send_signal(signal.SIGINT)
    lines: list[str] = []
    try:
        wait_until(lambda: lines.append(process.stdout.readline()) or 'held_at_exit' in lines[-1],
                   timeout_s=EXIT_REPORT_S + 20, what='the stacks of the hung exit')
    finally:
        process.kill()
        process.communicate()
    output = ''.join(lines)
    assert 'stopped by SIGINT: finished cleanly' in output
    assert f'Timeout (0:00:{EXIT_REPORT_S:02.0f})!' in output, output


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_executable_starts_is_a_clean_stop(sig: signal.Signals) -> None:
    """The console script installs the handler before importing torch and rclpy (seconds)."""
    script = ('import sys; from zoedepth_ros.ros.executables import depth_node; '
              'sys.exit(depth_node())')
    process = subprocess.Popen([sys.executable, '-c', script, '--ros-args', '-p',
                                'model:=zoedepth_demo_nk'], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    # Once the process catches SIGTERM, the handler is in (torch and rclpy still loading).
    wait_until(lambda: _catches_sigterm(process.pid), what='the stop handler')
    process.send_signal(sig)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert f'stopped by {sig.name}' in output and 'finished cleanly' in output, output
    assert 'Traceback' not in output, output


INTERRUPTED_EXTENSION = """
import os, signal, sys
from zoedepth_ros.ros.executables import depth_node

class InterruptedExtension:
    \"\"\"The signal lands while a C extension initialises, as pybind11 reports it.\"\"\"
    def find_spec(self, name, path, target=None):
        if name == 'zoedepth_ros.ros.depth_node':
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                signal.sigtimedwait([], 0)  # a call returning lets the handler run
            except KeyboardInterrupt as err:
                raise ImportError('initialization failed') from err
        return None

sys.meta_path.insert(0, InterruptedExtension())
sys.exit(depth_node())
"""


def test_a_signal_inside_a_c_extension_initialisation_is_a_clean_stop() -> None:
    """pybind11 turns the KeyboardInterrupt into ImportError('initialization failed')."""
    result = subprocess.run([sys.executable, '-c', INTERRUPTED_EXTENSION], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'stopped by SIGTERM while starting: finished cleanly' in result.stderr
    assert 'Traceback' not in result.stderr, result.stderr


def _catches_sigterm(pid: int) -> bool:
    status = Path(f'/proc/{pid}/status').read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith('SigCgt:'))
                 .split()[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))
