"""Declare one ROS parameter per NodeConfig field and check run-time changes."""

from __future__ import annotations

from collections.abc import Callable

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from zoedepth_ros.errors import ConfigError
from zoedepth_ros.ros.config import (
    NodeConfig,
    ParameterSpec,
    config_from_parameters,
    parameter_specs,
    updated_config,
)

_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER,
          float: Parameter.Type.DOUBLE, str: Parameter.Type.STRING}


def descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    """ParameterDescriptor with description, range, choices and read-only flag of ``spec``."""
    result = ParameterDescriptor(name=spec.name, type=_TYPES[spec.type].value,
                                 description=spec.description, read_only=spec.read_only)
    if spec.choices:
        result.additional_constraints = f'one of: {", ".join(spec.choices)}'
    if spec.type is float and spec.low is not None and spec.high is not None:
        result.floating_point_range = [FloatingPointRange(
            from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    if spec.type is int and spec.low is not None and spec.high is not None:
        result.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high),
                                             step=1)]
    return result


def declare_node_parameters(node: Node) -> NodeConfig:
    """Declare every NodeConfig parameter on ``node`` and build the effective config.

    Raises:
        ConfigError: a value given at start-up is not allowed (e.g. min_range >= max_range).
        rclpy.exceptions.InvalidParameterTypeException / InvalidParameterValueException: a
            value of the wrong type (``10`` for a float) or outside the declared range.
    """
    for spec in parameter_specs():
        node.declare_parameter(spec.name, spec.default, descriptor(spec))
    values = {spec.name: node.get_parameter(spec.name).value for spec in parameter_specs()}
    return config_from_parameters(values)


def on_set_parameters(get_config: Callable[[], NodeConfig],
                      set_config: Callable[[NodeConfig], None]
                      ) -> Callable[[list[Parameter]], SetParametersResult]:
    """Callback for ``add_on_set_parameters_callback`` that validates and applies changes.

    Parameters that are not NodeConfig fields (use_sim_time, qos_overrides...) pass through.
    """
    names = {spec.name for spec in parameter_specs()}

    def callback(parameters: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in names}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            config = updated_config(get_config(), changes)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        set_config(config)
        return SetParametersResult(successful=True)

    return callback
