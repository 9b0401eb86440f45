"""Shared ``main`` of the node executables: init, spin, clean exit codes, signal discipline."""

from __future__ import annotations

import faulthandler
from collections.abc import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from zoedepth_ros.errors import ZoeDepthError
from zoedepth_ros.pipeline.predict import keep_freed_memory
from zoedepth_ros.ros.signals import StopSignals

SIGNAL_SETTLE_S = 2.0
"""Seconds to wait, after the context was shut down from outside, for the Python half of the
signal that did it (see :class:`~zoedepth_ros.ros.signals.StopSignals`). Only a context shut
down with no signal at all (``rclpy.shutdown`` from another thread) waits this long."""

EXIT_REPORT_S = 8.0
"""Seconds of a hung interpreter exit before the stacks are printed (launch sends SIGTERM,
ignored by then, after 5 s and SIGKILL after 10 s)."""


def run_node(factory: Callable[[], Node], args: list[str] | None = None,
             signals: StopSignals | None = None) -> int:
    """Build the node with ``factory`` and spin it until SIGINT/SIGTERM.

    The process keeps freed memory for the per-frame temporaries (``keep_freed_memory``).
    Signals follow :class:`~zoedepth_ros.ros.signals.StopSignals` (``signals``: already
    installed by the console script, see :mod:`zoedepth_ros.ros.executables`); the last line
    logged is ``finished cleanly`` (naming the signal), also in the node's ROS log file, which
    outlives a ``ros2 launch`` that was stopped with SIGTERM (launch then exits without waiting
    for its nodes).

    Returns:
        0 on SIGINT/SIGTERM (also during start-up), 2 on a bad parameter, model or checkpoint
        at start-up (logged as one line).
    """
    if signals is None:
        signals = StopSignals()
        signals.install()
    node = None
    code = 0
    try:
        try:
            keep_freed_memory()
            rclpy.init(args=args)
            # The executor exists before the node is visible in the graph, so a SIGTERM sent
            # as soon as it appears cannot interrupt the executor's own construction.
            executor = SingleThreadedExecutor()
            node = factory()
            executor.add_node(node)
            executor.spin()
        finally:
            # Start-up or spin ended, however: before any handler below runs a Python call, a
            # late signal is counted from here on, never raised into the error or the cleanup.
            signals.raising = False
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ZoeDepthError, ParameterException) as err:
        rclpy.logging.get_logger('depth_node').error(f'cannot start: {err}')
        code = 2
    except Exception:
        if rclpy.ok() and signals.count == 0:
            code = 1
            raise
        # SIGINT/SIGTERM during start-up: rclpy shut the context down under the constructor.
    finally:
        logger = node.get_logger() if node is not None else rclpy.logging.get_logger('depth_node')
        if node is not None:
            node.destroy_node()
        if code == 0 and signals.first is None and not rclpy.ok():
            signals.settle(SIGNAL_SETTLE_S)  # rclpy's half of a signal may come first
        if code == 0:
            why = f'stopped by {signals.first}' if signals.first else 'context shut down'
            logger.info(f'{why}: finished cleanly')
        rclpy.try_shutdown()
        signals.release()
        # Only the interpreter's exit is left. Should it hang, the threads' stacks go to
        # stderr (launch's log) before launch's SIGKILL: a report to act on, not a silent kill.
        faulthandler.dump_traceback_later(EXIT_REPORT_S, exit=False)
    return code
