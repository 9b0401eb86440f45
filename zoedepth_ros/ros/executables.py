"""The node executables (``depth_node``, ``depth_lifecycle_node``): signals first.

Importing the node takes seconds (torch, timm, rclpy). The console scripts install the stop
signal handler before that import, so a Ctrl-C while the executable starts is a clean stop too
(exit code 0, one line, no traceback); then :func:`~zoedepth_ros.ros.entry.run_node` runs the
node under the same handler.
"""

from __future__ import annotations

import sys

from zoedepth_ros.ros.signals import StopSignals


def _installed() -> StopSignals:
    signals = StopSignals()
    signals.install()
    return signals


def _stopped_while_starting(signals: StopSignals, err: BaseException) -> int:
    """Exit code 0 for a stop signal that interrupted the import; anything else re-raises.

    The handler raises ``KeyboardInterrupt``, but one raised inside a C extension's module
    initialisation (rclpy's, torch's) reaches the importer as an ``ImportError``
    ('initialization failed'): the signal count, not the exception's type, tells.
    """
    if signals.count == 0:
        raise err
    sys.stderr.write(f'[depth_node]: stopped by {signals.first} while starting: finished '
                     'cleanly\n')
    signals.release()
    return 0


def depth_node() -> int:
    """Entry point ``depth_node`` (exit codes: see run_node)."""
    signals = _installed()
    try:
        from zoedepth_ros.ros.depth_node import DepthNode
        from zoedepth_ros.ros.entry import run_node
    except (KeyboardInterrupt, ImportError) as err:
        return _stopped_while_starting(signals, err)
    return run_node(DepthNode, signals=signals)


def depth_lifecycle_node() -> int:
    """Entry point ``depth_lifecycle_node`` (exit codes: see run_node)."""
    signals = _installed()
    try:
        from zoedepth_ros.ros.entry import run_node
        from zoedepth_ros.ros.lifecycle_node import LifecycleDepthNode
    except (KeyboardInterrupt, ImportError) as err:
        return _stopped_while_starting(signals, err)
    return run_node(LifecycleDepthNode, signals=signals)
