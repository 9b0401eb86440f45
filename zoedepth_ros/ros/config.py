"""Configuration of the depth node: one frozen dataclass, one ROS parameter per field (ROS-free).

Nested sections become dotted parameter names (``cloud.stride``). Each field carries its
parameter description, allowed range or choices and whether it may change at run time in the
field metadata, so ``ros/parameters.py`` can declare descriptors without repeating them and
``config/depth.yaml`` can be checked against them. Defaults live only here.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from zoedepth_ros.config import from_dict, to_dict
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.model.config import FOCAL_REFERENCE, NODE_MAX_RANGE_M, NODE_MIN_RANGE_M
from zoedepth_ros.model.weights import DEFAULT_MODEL

_DEVICE_PATTERN = re.compile(r'^(auto|cpu|cuda(:\d+)?|mps)$')


def _param(default: Any, description: str, *, low: float | None = None,
           high: float | None = None, read_only: bool = False) -> Any:
    metadata = {'description': description, 'low': low, 'high': high, 'read_only': read_only}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class CloudConfig:
    """The ``points`` output."""

    enabled: bool = _param(True, 'Publish the PointCloud2 (only while someone subscribes).')
    stride: int = _param(2, 'Use every stride-th pixel in u and v (intrinsics scaled); 1 = all.',
                         low=1, high=64)
    organized: bool = _param(True, 'Organised H x W cloud with NaN invalid points '
                             '(depth_image_proc layout); false = dense 1 x N valid points.')
    color: bool = _param(True, 'Add the packed rgb field from the input image.')


@dataclass(frozen=True)
class DiagnosticsConfig:
    """The ``/diagnostics`` output."""

    period_s: float = _param(1.0, 'Seconds between DiagnosticArray messages on /diagnostics.',
                             low=0.1, high=60.0, read_only=True)


@dataclass(frozen=True)
class ExtrinsicConfig:
    """Fixed pose of the ``sparse_points`` frame in the camera's optical frame."""

    enabled: bool = _param(False, 'Transform sparse_points with this fixed extrinsic (sensor '
                           'frame -> camera optical frame) instead of tf2; without it and '
                           'without tf2 the cloud must be in the optical frame.')
    x: float = _param(0.0, 'Translation x, metres.', low=-100.0, high=100.0)
    y: float = _param(0.0, 'Translation y, metres.', low=-100.0, high=100.0)
    z: float = _param(0.0, 'Translation z, metres.', low=-100.0, high=100.0)
    qx: float = _param(0.0, 'Rotation quaternion x.', low=-1.0, high=1.0)
    qy: float = _param(0.0, 'Rotation quaternion y.', low=-1.0, high=1.0)
    qz: float = _param(0.0, 'Rotation quaternion z.', low=-1.0, high=1.0)
    qw: float = _param(1.0, 'Rotation quaternion w.', low=-1.0, high=1.0)


@dataclass(frozen=True)
class AnchorConfig:
    """Metric anchoring from sparse depth (``sparse_depth`` Image, ``sparse_points`` cloud)."""

    mode: Literal['off', 'scale', 'scale_shift'] = _param(
        'scale', 'off | scale (robust global depth scale per frame) | scale_shift (scale and '
        'shift in inverse depth); applies only while sparse samples arrive.', read_only=True)
    min_samples: int = _param(10, 'Fewer valid samples (or inliers) in a frame: no fit.',
                              low=2, high=1_000_000)
    inlier_threshold: float = _param(0.2, 'Samples whose relative residual exceeds this '
                                     'after the robust fit are outliers.', low=0.001, high=10.0)
    time_constant_s: float = _param(0.5, 'Smoothing time constant of the scale; 0 = every '
                                    "frame's own fit.", low=0.0, high=3600.0)
    jump_ratio: float = _param(1.5, 'A fit off the smoothed scale by more than this factor is '
                               'a jump (reset once it persists for jump_frames).',
                               low=1.01, high=100.0)
    jump_frames: int = _param(3, 'Consecutive jumping frames that reset the smoothing.',
                              low=1, high=1000)
    hold_s: float = _param(1.0, 'Keep applying the last scale this long when samples stop.',
                           low=0.0, high=3600.0)
    sync_tolerance_s: float = _param(0.05, 'Largest stamp difference between an image and the '
                                     'sparse message paired with it (nearest in time).',
                                     low=0.0, high=10.0)
    extrinsic: ExtrinsicConfig = field(default_factory=ExtrinsicConfig)


@dataclass(frozen=True)
class FocalConfig:
    """Focal-length correction without any sensor."""

    enabled: bool = _param(False, "Rescale depth by the camera's focal length in image widths "
                           "(fx / width from camera_info) over the training cameras'.")
    reference_indoor: float = _param(FOCAL_REFERENCE[0], "fx / width of the indoor head's "
                                     'training camera (NYU Depth v2: 518.86 / 640).',
                                     low=0.01, high=100.0)
    reference_outdoor: float = _param(FOCAL_REFERENCE[1], "fx / width of the outdoor head's "
                                      'training camera (KITTI: 721.54 / 1216).',
                                      low=0.01, high=100.0)


@dataclass(frozen=True)
class NodeConfig:
    """Every parameter of ``depth_node`` with its default."""

    model: str = _param(DEFAULT_MODEL, 'Weights: a registry name (e.g. ZoeD_M12_NK, '
                        'zoedepth_demo_nk), a checkpoint file (.pt/.safetensors, original '
                        'ZoeDepth layout), a transformers folder or a .onnx file; with '
                        'random_weights a preset (e.g. zoedepth_tiny_nk) or ModelConfig YAML.',
                        read_only=True)
    model_config: str = _param('', 'Preset or ModelConfig YAML of a checkpoint file that has '
                               'none beside it; empty = detect.', read_only=True)
    random_weights: bool = _param(False, 'Build model (a preset or ModelConfig YAML) with '
                                  'random weights: smoke tests only, the depth is meaningless.',
                                  read_only=True)
    device: str = _param('auto', 'auto | cpu | cuda | cuda:N | mps.', read_only=True)
    precision: Literal['fp32', 'fp16', 'bf16'] = _param(
        'fp32', 'fp32 | fp16 | bf16 (fp16/bf16 on GPUs; stay fp32 on CPU).', read_only=True)
    preprocess: Literal['eval', 'keep_aspect', 'original_infer'] = _param(
        'eval', 'eval (stretch to the network size) | keep_aspect | original_infer (keep '
        'aspect, reflect padding): preprocessing preset of the estimator.', read_only=True)
    flip: bool = _param(False, 'Average with the horizontally flipped prediction (2x cost).',
                        read_only=True)
    domain: Literal['auto', 'indoor', 'outdoor'] = _param(
        'auto', 'auto (router) | indoor | outdoor: metric head to use.', read_only=True)
    compile: bool = _param(False, 'Run the model through torch.compile (GPU; the first frames '
                           'take minutes to compile).', read_only=True)
    onnx_providers: str = _param(
        '', 'For a .onnx model (zoedepth export): onnxruntime execution providers, comma-'
        'separated in priority order, e.g. TensorrtExecutionProvider,CUDAExecutionProvider,'
        'CPUExecutionProvider; empty = CPU.', read_only=True)
    input_transport: Literal['raw', 'compressed'] = _param(
        'raw', 'raw: subscribe image (sensor_msgs/Image); compressed: subscribe '
        'image/compressed (jpeg/png sensor_msgs/CompressedImage).', read_only=True)
    sync_mode: Literal['cache', 'approx', 'exact'] = _param(
        'cache', 'cache: use the newest camera_info for every image; approx: pair each image '
        'with the camera_info nearest in stamp within sync_slop_s; exact: equal stamps only.',
        read_only=True)
    sync_slop_s: float = _param(0.05, 'Largest image/camera_info stamp difference in approx '
                                'mode, seconds (about half a frame period).', low=0.0, high=10.0)
    fov_deg: float = _param(60.0, 'Horizontal field of view for intrinsics while no '
                            'camera_info has arrived; 0.0 = wait for camera_info.',
                            low=0.0, high=179.0)
    min_range: float = _param(NODE_MIN_RANGE_M, 'Nearest valid depth, metres (closer pixels '
                              'become NaN).', low=0.0, high=1000.0)
    max_range: float = _param(NODE_MAX_RANGE_M, 'Farthest valid depth, metres (farther pixels '
                              'become NaN).', low=0.001, high=1000.0)
    max_rel_std: float = _param(0.0, 'Invalidate pixels whose std/depth exceeds this; 0.0 = off.',
                                low=0.0, high=100.0)
    max_input_pixels: int = _param(3840 * 2160, 'Drop input images with more pixels than this '
                                   '(compressed ones before decoding).', low=1, high=1 << 30)
    frame_id: str = _param('', "Frame id of every output; empty = the input image's (it must "
                           'be the camera optical frame).')
    output_encoding: Literal['32FC1', '16UC1'] = _param(
        '32FC1', '32FC1 (metres, NaN invalid) | 16UC1 (millimetres, 0 invalid).')
    publish_std: bool = _param(True, 'Publish depth/std (32FC1 standard deviation, metres).')
    publish_preview: bool = _param(False, 'Publish depth/preview (bgr8 colour map for viewing).')
    always_run: bool = _param(False, 'Run inference even when no output has a subscriber.')
    cloud: CloudConfig = field(default_factory=CloudConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    anchor: AnchorConfig = field(default_factory=AnchorConfig)
    focal: FocalConfig = field(default_factory=FocalConfig)

    def __post_init__(self) -> None:
        values = parameter_values(self)
        for spec in parameter_specs():
            spec.check(values[spec.name])
        if not _DEVICE_PATTERN.match(self.device):
            raise ConfigError(f'device {self.device!r} is not valid; expected auto, cpu, cuda, '
                              'cuda:N or mps')
        onnx = self.model.endswith('.onnx')
        if self.onnx_providers and not onnx:
            raise ConfigError(f'onnx_providers is set but model {self.model!r} is not a .onnx '
                              'file')
        if onnx and (self.compile or self.precision != 'fp32'):
            raise ConfigError(f'{self.model} runs with onnxruntime as exported (fp32): set '
                              'precision fp32 and compile false')
        if self.min_range >= self.max_range:
            raise ConfigError(f'min_range {self.min_range} must be smaller than max_range '
                              f'{self.max_range}')

    @property
    def providers(self) -> list[str]:
        """``onnx_providers`` as a list (empty = onnxruntime's CPU provider)."""
        return [name.strip() for name in self.onnx_providers.split(',') if name.strip()]


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: dotted name, default and checks."""

    name: str
    default: Any
    type: type
    description: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    read_only: bool = False

    def check(self, value: Any) -> None:
        """Raise ConfigError unless ``value`` is allowed for this parameter."""
        if self.choices and value not in self.choices:
            raise ConfigError(f'{self.name}: {value!r} is not one of {list(self.choices)}')
        if self.low is not None and value < self.low:
            raise ConfigError(f'{self.name}: {value} is below the minimum {self.low}')
        if self.high is not None and value > self.high:
            raise ConfigError(f'{self.name}: {value} is above the maximum {self.high}')


def _specs_of(cls: type, prefix: str) -> list[ParameterSpec]:
    hints = typing.get_type_hints(cls)
    specs: list[ParameterSpec] = []
    for item in dataclasses.fields(cls):
        tp = hints[item.name]
        if dataclasses.is_dataclass(tp):
            specs += _specs_of(tp, f'{prefix}{item.name}.')
            continue
        meta = item.metadata
        choices = get_args(tp) if get_origin(tp) is Literal else ()
        base = str if choices else tp
        specs.append(ParameterSpec(f'{prefix}{item.name}', item.default, base,
                                   meta['description'], choices, meta['low'], meta['high'],
                                   meta['read_only']))
    return specs


_SPECS: tuple[ParameterSpec, ...] = ()


def parameter_specs() -> tuple[ParameterSpec, ...]:
    """Every node parameter in declaration order (nested fields as dotted names)."""
    global _SPECS
    if not _SPECS:
        _SPECS = tuple(_specs_of(NodeConfig, ''))
    return _SPECS


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``{dotted name: value}`` of nested mappings (a params file's sections)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update({f'{key}.{name}': item for name, item in flatten(value).items()})
        else:
            flat[key] = value
    return flat


def parameter_values(cfg: NodeConfig) -> dict[str, Any]:
    """Flat ``{dotted name: value}`` of a config."""
    return flatten(to_dict(cfg))


def config_from_parameters(values: Mapping[str, Any]) -> NodeConfig:
    """Build a NodeConfig from ``{dotted name: value}`` (missing names keep their defaults)."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        node = nested
        *sections, key = name.split('.')
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise ConfigError(f'parameter {name!r}: {section!r} is not a section')
        node[key] = float(value) if isinstance(value, int) and _is_float(name) else value
    return from_dict(NodeConfig, nested)


def _is_float(name: str) -> bool:
    return any(spec.name == name and spec.type is float for spec in parameter_specs())


def updated_config(cfg: NodeConfig, changes: Mapping[str, Any]) -> NodeConfig:
    """Apply run-time parameter changes, refusing read-only and unknown ones.

    Raises:
        ConfigError: naming the parameter and what is allowed.
    """
    specs = {spec.name: spec for spec in parameter_specs()}
    for name in changes:
        if name not in specs:
            raise ConfigError(f'unknown parameter {name!r}; valid: {sorted(specs)}')
        if specs[name].read_only:
            raise ConfigError(f'{name} is read-only; restart the node to change it')
    return config_from_parameters({**parameter_values(cfg), **changes})
