"""Shared ``main`` of the node executables: init, spin, clean exit codes."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from zoedepth_ros.errors import ZoeDepthError
from zoedepth_ros.frame import keep_freed_memory


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Build the node with ``factory`` and spin it until SIGINT/SIGTERM.

    The process keeps freed memory for the per-frame temporaries (``keep_freed_memory``).

    Returns:
        0 on SIGINT/SIGTERM (also during start-up), 2 on a bad parameter, model or checkpoint
        at start-up (logged as one line).
    """
    keep_freed_memory()
    rclpy.init(args=args)
    node = None
    try:
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
        return 2
    except Exception:
        if rclpy.ok():
            raise
        # SIGINT/SIGTERM during start-up: rclpy shut the context down under the constructor.
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
