"""Start ``ros2 launch`` N times and stop each as a terminal or a service manager does.

Run by test_ros2_cli.py in a sourced workspace environment::

    python stop_launches.py SIGINT 20 params.yaml > results.json

Each launch starts in its own session (process group). Once the node serves depth to a
subscriber (frames flowing, so the worker is busy when the signal lands), the whole group gets
the signal: SIGINT as Ctrl-C in a terminal, SIGTERM as ``systemctl stop``. On SIGINT, launch
forwards a second SIGINT and waits for its nodes; on SIGTERM it exits at once and leaves them
to stop on their own. This process is a child subreaper, so a node orphaned that way is
reparented here and its exit status is still known. Prints one JSON object per launch.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from node_harness import Probe, make_image, make_info, stamp_header, test_image, wait_until
from sensor_msgs.msg import CameraInfo, Image

PR_SET_CHILD_SUBREAPER = 36


def reap(pid: int, timeout_s: float) -> int | None:
    """Exit code of descendant ``pid`` (reparented here), or None if it outlives the wait."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None  # already reaped by its parent (launch waited for it)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    return None


def one_launch(sig: signal.Signals, params: str, probe: Probe, index: int) -> dict[str, object]:
    launch = subprocess.Popen(['ros2', 'launch', 'zoedepth_ros', 'depth.launch.py',
                               f'params_file:={params}'], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(launch.stdout.readline, '')),
                              daemon=True)
    reader.start()
    image_pub = probe.publisher(Image, '/camera/image_raw')
    info_pub = probe.publisher(CameraInfo, '/camera/camera_info')

    def served() -> bool:
        header = stamp_header(1000 + index, int(time.monotonic_ns() % 10**9))
        info_pub.publish(make_info(header))
        image_pub.publish(make_image(test_image(seed=index), header))
        time.sleep(0.05)
        return len(probe.received['/depth/image']) > 0

    wait_until(served, what='depth from the launched node')
    os.killpg(launch.pid, sig)
    launch_code = launch.wait(timeout=60)
    reader.join(timeout=10)
    output = ''.join(lines)
    started = re.search(r'process started with pid \[(\d+)\]', output)
    node_pid = int(started.group(1)) if started else -1
    node_code = reap(node_pid, 30.0) if node_pid > 0 else None
    if node_code is None:  # launch reaped it: its own report says how it ended
        ended = re.search(rf'process has finished cleanly \[pid {node_pid}\]', output)
        node_code = 0 if ended else None
    logs = sorted(Path(os.environ['ROS_LOG_DIR']).glob(f'*_{node_pid}_*.log'))
    probe.received['/depth/image'].clear()
    for publisher in (image_pub, info_pub):
        probe.node.destroy_publisher(publisher)
    return {'launch_code': launch_code, 'node_pid': node_pid, 'node_code': node_code,
            'output': output, 'node_log': ''.join(p.read_text() for p in logs)}


def main() -> None:
    sig, count, params = signal.Signals[sys.argv[1]], int(sys.argv[2]), sys.argv[3]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    probe = Probe('stop_launches_probe')
    probe.subscribe(Image, '/depth/image')
    try:
        for index in range(count):
            print(json.dumps(one_launch(sig, params, probe, index)), flush=True)
    finally:
        probe.close()


if __name__ == '__main__':
    main()
