"""Configuration of the depth node: one frozen dataclass, one ROS parameter per field (ROS-free).

:class:`NodeConfig` holds the model and runtime settings and embeds the stream and per-frame
options (``pipeline.options``) under the names they have there: ``min_range``, not
``stream.frame.min_range``. Other nested sections become dotted parameter names
(``cloud.stride``, ``anchor.mode``). Each field carries its
parameter description, allowed range or choices and whether it may change at run time in the
field metadata, so ``ros/parameters.py`` can declare descriptors without repeating them and
``config/depth.yaml`` can be checked against them. Defaults live only here.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from zoedepth_ros.config import from_dict, param, section
from zoedepth_ros.errors import ConfigError, InputError
from zoedepth_ros.model.weights import DEFAULT_MODEL
from zoedepth_ros.pipeline.options import FrameOptions, StreamOptions

_DEVICE_PATTERN = re.compile(r'^(auto|cpu|cuda(:\d+)?|mps)$')


@dataclass(frozen=True)
class DiagnosticsConfig:
    """The ``/diagnostics`` output."""

    period_s: float = param(1.0, 'Seconds between DiagnosticArray messages on /diagnostics.',
                            low=0.1, high=60.0, read_only=True)


@dataclass(frozen=True)
class NodeConfig:
    """Every parameter of ``depth_node`` with its default."""

    model: str = param(DEFAULT_MODEL, 'Weights: a registry name (e.g. ZoeD_M12_NK, '
                        'zoedepth_demo_nk), a checkpoint file (.pt/.safetensors, original '
                        'ZoeDepth layout), a transformers folder or a .onnx file; with '
                        'random_weights a preset (e.g. zoedepth_tiny_nk) or ModelConfig YAML.',
                        read_only=True)
    model_config: str = param('', 'Preset or ModelConfig YAML of a checkpoint file that has '
                               'none beside it; empty = detect.', read_only=True)
    random_weights: bool = param(False, 'Build model (a preset or ModelConfig YAML) with '
                                  'random weights: smoke tests only, the depth is meaningless.',
                                  read_only=True)
    device: str = param('auto', 'auto | cpu | cuda | cuda:N | mps.', read_only=True)
    precision: Literal['fp32', 'fp16', 'bf16'] = param(
        'fp32', 'fp32 | fp16 | bf16 (fp16/bf16 on GPUs; stay fp32 on CPU).', read_only=True)
    preprocess: Literal['eval', 'keep_aspect', 'original_infer'] = param(
        'eval', 'eval (stretch to the network size) | keep_aspect | original_infer (keep '
        'aspect, reflect padding): preprocessing preset of the estimator.', read_only=True)
    flip: bool = param(False, 'Average with the horizontally flipped prediction (2x cost).',
                        read_only=True)
    domain: Literal['auto', 'indoor', 'outdoor'] = param(
        'auto', 'auto (router) | indoor | outdoor: metric head to use.', read_only=True)
    compile: bool = param(False, 'Run the model through torch.compile (GPU; the first frames '
                           'take minutes to compile).', read_only=True)
    onnx_providers: str = param(
        '', 'For a .onnx model (zoedepth export): onnxruntime execution providers, comma-'
        'separated in priority order, e.g. TensorrtExecutionProvider,CUDAExecutionProvider,'
        'CPUExecutionProvider; empty = CPU.', read_only=True)
    threads: int = param(0, 'Intra-op threads of torch and onnxruntime; 0 = their default (one '
                         'per core). Lower it when other processes share the cores.',
                         low=0, high=1024, read_only=True)
    workers: int = param(1, 'Threads running the model for the cameras (cameras parameter): 1 '
                         "runs every camera's newest frame as one batch (GPU); on a CPU, one "
                         'per core with threads 1 runs cameras in parallel.',
                         low=1, high=64, read_only=True)
    stream: StreamOptions = section(StreamOptions, inline=True)
    diagnostics: DiagnosticsConfig = section(DiagnosticsConfig)

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
        if onnx and self.frame.anchor.head_selection == 'sparse':
            raise ConfigError(f'{self.model} returns the routed head only: anchor.head_selection '
                              'sparse needs a PyTorch model')

    @property
    def frame(self) -> FrameOptions:
        """The per-frame options."""
        return self.stream.frame

    @property
    def providers(self) -> list[str]:
        """``onnx_providers`` as a list (empty = onnxruntime's CPU provider)."""
        return [name.strip() for name in self.onnx_providers.split(',') if name.strip()]


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: dotted name, where it lives in NodeConfig, default and checks."""

    name: str
    path: tuple[str, ...]
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


def _specs_of(cls: type, prefix: str, path: tuple[str, ...]) -> list[ParameterSpec]:
    """The parameters of a config dataclass: fields with a description, and those of nested
    sections (``inline`` sections keep their fields' own names)."""
    hints = typing.get_type_hints(cls)
    specs: list[ParameterSpec] = []
    for item in dataclasses.fields(cls):
        tp, meta, where = hints[item.name], item.metadata, path + (item.name,)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            inner = prefix if meta.get('inline') else f'{prefix}{item.name}.'
            specs += _specs_of(tp, inner, where)
            continue
        if 'description' not in meta:  # an internal setting, not a parameter
            continue
        choices = get_args(tp) if get_origin(tp) is Literal else ()
        specs.append(ParameterSpec(f'{prefix}{item.name}', where, item.default,
                                   str if choices else tp, meta['description'], choices,
                                   meta['low'], meta['high'], meta['read_only']))
    return specs


_SPECS: tuple[ParameterSpec, ...] = ()


def parameter_specs() -> tuple[ParameterSpec, ...]:
    """Every node parameter in declaration order (nested fields as dotted names)."""
    global _SPECS
    if not _SPECS:
        _SPECS = tuple(_specs_of(NodeConfig, '', ()))
    return _SPECS


def parameter_values(cfg: NodeConfig) -> dict[str, Any]:
    """Flat ``{parameter name: value}`` of a config."""
    values = {}
    for spec in parameter_specs():
        value: Any = cfg
        for name in spec.path:
            value = getattr(value, name)
        values[spec.name] = value
    return values


def config_from_parameters(values: Mapping[str, Any]) -> NodeConfig:
    """Build a NodeConfig from ``{parameter name: value}`` (missing names keep their
    defaults; integers given for floats are taken as floats).

    Raises:
        ConfigError: an unknown name, or a value that is not allowed.
    """
    specs = {spec.name: spec for spec in parameter_specs()}
    nested: dict[str, Any] = {}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            raise ConfigError(f'unknown parameter {name!r}; valid: {sorted(specs)}')
        node = nested
        *sections, key = spec.path
        for section_name in sections:
            node = node.setdefault(section_name, {})
        value = float(value) if isinstance(value, int) and spec.type is float else value
        spec.check(value)  # before the option types' own checks, which name no parameter
        node[key] = value
    try:
        return from_dict(NodeConfig, nested)
    except InputError as err:
        raise ConfigError(str(err)) from None


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

