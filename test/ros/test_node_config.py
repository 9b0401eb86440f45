"""NodeConfig: parameter specs, run-time updates and the shipped config/depth.yaml."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from zoedepth_ros.config import flatten
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.pipeline.options import FrameOptions, StreamOptions
from zoedepth_ros.pointcloud import CloudOptions
from zoedepth_ros.ros.config import (
    NodeConfig,
    config_from_parameters,
    parameter_specs,
    parameter_values,
    updated_config,
)

DEPTH_YAML = Path(__file__).resolve().parents[2] / 'config' / 'depth.yaml'


def test_specs_cover_every_field_with_types_and_descriptions() -> None:
    specs = {spec.name: spec for spec in parameter_specs()}
    values = parameter_values(NodeConfig())
    assert list(specs) == list(values)
    # NodeConfig's 12 model fields (workers the last), the stream's 5, diagnostics (1) and the
    # per-frame options: 8 plain, cloud (4), anchor (11 + extrinsic 8; the internal fit
    # settings are not parameters), focal (3)
    assert len(dataclasses.fields(NodeConfig)) == 14
    assert len(specs) == 12 + 5 + 1 + 8 + 4 + 19 + 3
    assert 'anchor.huber' not in specs and specs['anchor.head_selection'].read_only
    assert specs['min_range'].path == ('stream', 'frame', 'min_range')
    assert specs['cloud.stride'].type is int and specs['cloud.stride'].default == 2
    assert specs['min_range'].type is float and specs['output_encoding'].type is str
    assert specs['output_encoding'].choices == ('32FC1', '16UC1')
    assert {n for n, s in specs.items() if s.read_only} >= {'model', 'device', 'model_config',
                                                            'random_weights'}
    assert not specs['max_range'].read_only and not specs['cloud.stride'].read_only
    for spec in specs.values():
        assert spec.description and isinstance(spec.default, spec.type)


def test_shipped_yaml_declares_every_parameter_with_its_default_and_type() -> None:
    document = yaml.safe_load(DEPTH_YAML.read_text())
    assert list(document) == ['/**']
    params = flatten(document['/**']['ros__parameters'])
    specs = {spec.name: spec for spec in parameter_specs()}
    assert sorted(params) == sorted(specs)
    for name, value in params.items():
        # ROS parameter types are strict: a float must be written as 10.0, not 10.
        assert type(value) is specs[name].type, name
        assert value == specs[name].default, name
    assert config_from_parameters(params) == NodeConfig()
    text = DEPTH_YAML.read_text()
    for name in specs:  # every key is documented by a comment line right above it
        key = name.split('.')[-1]
        lines = text.splitlines()
        index = next(i for i, line in enumerate(lines) if line.strip().startswith(f'{key}:'))
        assert lines[index - 1].strip().startswith('#') or key == 'max_range', name


def test_runtime_updates_are_checked() -> None:
    cfg = NodeConfig()
    changed = updated_config(cfg, {'cloud.stride': 4, 'max_range': 10, 'publish_preview': True})
    assert changed.frame.cloud == CloudOptions(stride=4)
    assert changed.frame.max_range == 10.0 and isinstance(changed.frame.max_range, float)
    assert changed.frame.publish_preview is True and cfg.frame.max_range == 80.0
    for changes, match in [
        ({'model': 'ZoeD_NK'}, 'model is read-only'),
        ({'device': 'cpu'}, 'device is read-only'),
        ({'min_range': 90.0}, 'min_range 90.0 must be smaller than max_range 80.0'),
        ({'cloud.stride': 0}, 'cloud.stride: 0 is below the minimum 1'),
        ({'output_encoding': 'mono8'}, "'mono8' is not one of"),
        ({'max_rel_std': -0.5}, 'below the minimum'),
        ({'cloud.colour': True}, "unknown parameter 'cloud.colour'"),
        ({'publish_std': 'yes'}, 'expected true/false'),
    ]:
        with pytest.raises(ConfigError, match=match):
            updated_config(cfg, changes)


def test_config_checks_values_when_built_directly() -> None:
    with pytest.raises(ConfigError, match="device 'gpu0' is not valid"):
        NodeConfig(device='gpu0')
    with pytest.raises(ConfigError, match='fov_deg: 200.0 is above the maximum 179.0'):
        NodeConfig(stream=StreamOptions(frame=FrameOptions(fov_deg=200.0)))
    assert NodeConfig(device='cuda:1').device == 'cuda:1'
    with pytest.raises(ConfigError, match="unknown parameter 'cloud.strid'"):
        config_from_parameters({'cloud.strid': 2})
    with pytest.raises(ConfigError, match='cloud.stride: 0 is below the minimum 1'):
        config_from_parameters({'cloud.stride': 0})  # the parameter named, not the type's


def test_onnx_backend_options_are_checked() -> None:
    cfg = NodeConfig(model='/models/nk.onnx',
                     onnx_providers='CUDAExecutionProvider, CPUExecutionProvider')
    assert cfg.providers == ['CUDAExecutionProvider', 'CPUExecutionProvider']
    assert NodeConfig().providers == []
    with pytest.raises(ConfigError, match='onnx_providers is set but model'):
        NodeConfig(onnx_providers='CPUExecutionProvider')
    with pytest.raises(ConfigError, match='precision fp32 and compile false'):
        NodeConfig(model='nk.onnx', precision='fp16')
    with pytest.raises(ConfigError, match='precision fp32 and compile false'):
        NodeConfig(model='nk.onnx', compile=True)
