"""Lifecycle variant of the depth node (``depth_lifecycle_node``).

Parameters, publishers and subscriptions are created at construction (inputs are ignored until
active); ``configure`` loads the model (a bad checkpoint or model name fails the transition
and leaves the node unconfigured instead of crashing), ``activate`` starts serving frames,
``deactivate`` stops it, ``cleanup`` releases the model. Topics and behaviour are those of
``depth_node`` (one camera or several): both are :class:`~zoedepth_ros.ros.cameras.RosCameras`
on a node.
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from zoedepth_ros.errors import ZoeDepthError
from zoedepth_ros.ros.cameras import RosCameras
from zoedepth_ros.ros.entry import run_node


class LifecycleDepthNode(LifecycleNode):
    """The depth node as a managed node (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('depth_node', **kwargs)
        self.cameras = RosCameras(self)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.cameras.load()
        except ZoeDepthError as err:
            self.get_logger().error(f'configure failed: {err}')
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cameras.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cameras.stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cameras.unload()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cameras.unload()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        self.cameras.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point ``depth_lifecycle_node`` (exit codes: see run_node)."""
    return run_node(LifecycleDepthNode, args)


if __name__ == '__main__':
    sys.exit(main())
