"""Lifecycle variant of the depth node (``depth_lifecycle_node``).

Parameters are declared at construction; ``configure`` loads the model and creates the
publishers and subscriptions (a bad checkpoint or model name fails the transition and leaves the
node unconfigured instead of crashing), ``activate`` starts serving frames, ``deactivate``
stops it, ``cleanup`` releases the model. Topics and behaviour are those of :class:`DepthNode`.
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from zoedepth_ros.errors import ZoeDepthError
from zoedepth_ros.ros.config import config_from_parameters, parameter_specs
from zoedepth_ros.ros.depth_node import DepthNode
from zoedepth_ros.ros.entry import run_node
from zoedepth_ros.ros.parameters import declare_node_parameters, on_set_parameters


class LifecycleDepthNode(DepthNode, LifecycleNode):
    """DepthNode whose model loading and serving follow the managed-node state machine."""

    def __init__(self, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, 'depth_node', **kwargs)
        self.config = declare_node_parameters(self)
        self.estimator = None
        self.add_on_set_parameters_callback(
            on_set_parameters(lambda: self.config, self._set_config))

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = {s.name: self.get_parameter(s.name).value for s in parameter_specs()}
        try:
            self.config = config_from_parameters(values)
            self._configure()
        except ZoeDepthError as err:
            self.get_logger().error(f'configure failed: {err}')
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self.estimator = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    """Entry point ``depth_lifecycle_node`` (exit codes: see run_node)."""
    return run_node(LifecycleDepthNode, args)


if __name__ == '__main__':
    sys.exit(main())
