"""Shared ``main`` of the node executables: init, spin, clean exit codes, signal discipline."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from zoedepth_ros.errors import ZoeDepthError
from zoedepth_ros.frame import keep_freed_memory

FORCE_EXIT_SIGNAL = 3
"""The signal count that ends the process at once, whatever it is doing."""


class StopSignals:
    """SIGINT/SIGTERM handler: the first stops the node, the second is ignored, the third kills.

    A terminal's Ctrl-C reaches a launched node twice: once from the terminal (SIGINT to the
    whole process group) and once from ``ros2 launch``, which forwards its own SIGINT. The
    second one lands while the node shuts down (destroying the node, joining the worker,
    interpreter exit), where the default handler would raise ``KeyboardInterrupt`` inside that
    cleanup and print a traceback. So only the first one raises; the second is counted and
    ignored; the third (launch escalates to SIGTERM after its ``sigterm_timeout``, or a user
    insists) ends a node that hangs with exit code 128 + signal.

    rclpy's own handler (installed by ``rclpy.init``) runs first and wakes the executor; it
    then chains to this one.
    """

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def install(self) -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self)

    def release(self) -> None:
        """Ignore both signals for the rest of the process: the node has stopped, and only the
        interpreter's exit remains. Python restores the default handlers (death by the signal,
        exit code -2 in launch's report) during its finalization, but leaves ignored ones."""
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)

    def __call__(self, number: int, frame: FrameType | None) -> None:
        self.count += 1
        name = signal.Signals(number).name
        if self.count == 1:
            self.first = name
            raise KeyboardInterrupt
        if self.count >= FORCE_EXIT_SIGNAL:
            os.write(2, f'[depth_node] {name}: signal {self.count} while stopping, forced exit '
                        f'(code {128 + number})\n'.encode())
            os._exit(128 + number)


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Build the node with ``factory`` and spin it until SIGINT/SIGTERM.

    The process keeps freed memory for the per-frame temporaries (``keep_freed_memory``).
    Signals follow :class:`StopSignals`; the last line logged is ``finished cleanly`` (naming
    the signal), also in the node's ROS log file, which outlives a ``ros2 launch`` that was
    stopped with SIGTERM (launch then exits without waiting for its nodes).

    Returns:
        0 on SIGINT/SIGTERM (also during start-up), 2 on a bad parameter, model or checkpoint
        at start-up (logged as one line).
    """
    keep_freed_memory()
    signals = StopSignals()
    node = None
    code = 0
    try:
        signals.install()
        rclpy.init(args=args)
        # The executor exists before the node is visible in the graph, so a SIGTERM sent as
        # soon as it appears cannot interrupt the executor's own construction.
        executor = SingleThreadedExecutor()
        node = factory()
        executor.add_node(node)
        executor.spin()
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
        if code == 0:
            why = f'stopped by {signals.first}' if signals.first else 'context shut down'
            logger.info(f'{why}: finished cleanly')
        rclpy.try_shutdown()
        signals.release()
    return code
