"""Typed configuration: frozen dataclasses built from YAML/dicts, with checked overrides.

Every YAML file in ``config/`` maps onto exactly one frozen dataclass. Defaults live in the
dataclasses. Building from a mapping checks every key (an unknown key is an error that lists
the valid ones), converts lists to tuples and nested mappings to nested dataclasses, and
checks ``Literal`` choices. Overrides are ``dotted.key=value`` strings whose value is parsed
with :func:`ast.literal_eval` (bare words stay strings).

The model configuration lives here too because every other part builds on it.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import tempfile
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from zoedepth_ros.errors import ConfigError

T = TypeVar('T')


# --------------------------------------------------------------------------------------------
# Generic machinery


def _type_name(tp: Any) -> str:
    return getattr(tp, '__name__', None) or str(tp).replace('typing.', '')


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` to the annotated type ``tp`` or raise ConfigError naming ``where``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f'{where}: {value!r} is not one of {list(choices)}')
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f'{where}: {value!r} matches none of {[_type_name(a) for a in args]}')
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{where}: expected a list, got {value!r}')
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f'{where}[{i}]') for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f'{where}: expected {len(args)} values, got {len(value)}')
        return tuple(_convert(v, a, f'{where}[{i}]') for i, (v, a) in enumerate(zip(value, args)))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f'{where}: expected a mapping for {tp.__name__}, got {value!r}')
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f'{where}: expected true/false, got {value!r}')
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f'{where}: expected a number, got {value!r}')
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f'{where}: expected an integer, got {value!r}')
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f'{where}: expected a string, got {value!r}')
        return value
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: dict[str, Any], where: str = '') -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f'{where}: ' if where else ''
        raise ConfigError(
            f'{prefix}unknown key(s) {unknown} for {cls.__name__}; valid keys: {names}')
    hints = _hints(cls)
    kwargs = {k: _convert(v, hints[k], f'{where}.{k}' if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f'{where or cls.__name__}: {err}') from None


def to_dict(cfg: Any) -> Any:
    """Plain YAML-safe structure (dicts, lists, scalars) of a config dataclass."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg


def load_config(path: str | os.PathLike[str], cls: type[T]) -> T:
    """Load a YAML file into dataclass ``cls``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f'cannot read config file {path}: {err.strerror}') from None
    except yaml.YAMLError as err:
        raise ConfigError(f'{path} is not valid YAML: {err}') from None
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a mapping at the top level')
    return from_dict(cls, data, where=path.name)


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        lowered = text.strip().lower()
        if lowered in ('true', 'false'):
            return lowered == 'true'
        if lowered in ('none', 'null'):
            return None
        return text


def apply_overrides(cfg: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Return a copy of ``cfg`` with ``dotted.key=value`` overrides applied and type-checked."""
    data = to_dict(cfg)
    for item in overrides:
        key, sep, text = item.partition('=')
        if not sep or not key:
            raise ConfigError(f'override {item!r} must look like key=value (e.g. optim.lr=1e-4)')
        node = data
        parts = key.strip().split('.')
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f'override {item!r}: no section {part!r}')
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            valid = sorted(node) if isinstance(node, dict) else []
            raise ConfigError(f'override {item!r}: unknown key {parts[-1]!r}; valid keys: {valid}')
        node[parts[-1]] = _parse_value(text)
    return from_dict(type(cfg), data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_config(cfg: Any, path: str | os.PathLike[str]) -> None:
    """Write the resolved configuration as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


# --------------------------------------------------------------------------------------------
# Model configuration


@dataclass(frozen=True)
class BinConf:
    """One metric head's depth range (original key ``bin_conf`` entries)."""

    name: Literal['nyu', 'kitti']
    n_bins: int = 64
    min_depth: float = 1e-3
    max_depth: float = 10.0


@dataclass(frozen=True)
class BackboneConfig:
    """BEiT trunk and DPT decoder sizes (MiDaS v3.1 layout)."""

    img_size: int = 384
    """Square training size of the trunk; fixes the stored relative-position table window."""
    patch_size: int = 16
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    layer_norm_eps: float = 1e-6
    num_classes: int = 1000
    """Size of the unused ImageNet head kept so that checkpoint key sets match."""
    hooks: tuple[int, ...] = (5, 11, 17, 23)
    reassemble_features: tuple[int, ...] = (256, 512, 1024, 1024)
    features: int = 256
    head_features: int = 32

    def __post_init__(self) -> None:
        if len(self.hooks) != 4 or len(self.reassemble_features) != 4:
            raise ConfigError('backbone.hooks and backbone.reassemble_features need 4 entries')
        if max(self.hooks) >= self.depth:
            raise ConfigError(f'backbone.hooks {self.hooks} exceed depth {self.depth}')
        if self.embed_dim % self.num_heads:
            raise ConfigError('backbone.embed_dim must be divisible by backbone.num_heads')


MIDAS_BACKBONES: dict[str, BackboneConfig] = {
    'DPT_BEiT_L_384': BackboneConfig(),
    'DPT_BEiT_L_512': BackboneConfig(img_size=512),
    'DPT_BEiT_B_384': BackboneConfig(embed_dim=768, depth=12, num_heads=12, hooks=(2, 5, 8, 11),
                                     reassemble_features=(96, 192, 384, 768)),
}
"""MiDaS v3.1 BEiT backbones by their original ``midas_model_type`` name."""


@dataclass(frozen=True)
class ModelConfig:
    """A ZoeDepth model. Field names follow the original configs so they carry over."""

    name: Literal['ZoeDepth', 'ZoeDepthNK'] = 'ZoeDepth'
    version_name: Literal['v1'] = 'v1'
    midas_model_type: str = 'DPT_BEiT_L_384'
    backbone: BackboneConfig | None = None
    """Explicit trunk sizes; ``None`` takes them from ``midas_model_type``."""
    img_size: tuple[int, int] = (384, 512)
    force_keep_ar: bool = True
    """Keep the aspect ratio when resizing to ``img_size`` ("minimal"); else stretch."""
    n_bins: int = 64
    bin_centers_type: Literal['normed', 'softplus'] = 'softplus'
    bin_embedding_dim: int = 128
    min_depth: float = 1e-3
    max_depth: float = 10.0
    bin_conf: tuple[BinConf, ...] = ()
    """ZoeDepthNK only: one entry per head (``nyu`` indoor, ``kitti`` outdoor)."""
    n_attractors: tuple[int, ...] = (16, 8, 4, 1)
    attractor_alpha: float = 1000.0
    """Accepted for compatibility; the released models run with 300 (see model/bins.py)."""
    attractor_gamma: float = 2.0
    attractor_kind: Literal['mean', 'sum'] = 'mean'
    attractor_type: Literal['inv', 'exp'] = 'inv'
    min_temp: float = 0.0212
    max_temp: float = 50.0
    memory_efficient: bool = True
    output_distribution: Literal['logbinomial'] = 'logbinomial'
    inverse_midas: bool = False
    seed_mlp_dim: int | None = None
    """Hidden width of the seed bin regressor; None = 256 (ZoeDepth) or embedding/2 (NK)."""
    projector_mlp_dim: int | None = None
    """Hidden width of the projectors; None = 128 (ZoeDepth) or embedding/2 (NK)."""
    attractor_mlp_dim: int = 128
    clb_bottleneck_factor: int | None = None
    """Log-binomial MLP bottleneck; None = 2 (ZoeDepth) or 4 (NK)."""
    legacy_hub_kitti_range: bool = False
    """Reproduce the original hub's ZoeD_K build, whose range silently became 0.001-10 m."""
    pretrained_resource: str | None = None
    """Weights named by the original config (``url::...`` or ``local::...``); informational."""

    def __post_init__(self) -> None:
        if self.backbone is None and self.midas_model_type not in MIDAS_BACKBONES:
            raise ConfigError(
                f'midas_model_type {self.midas_model_type!r} is not supported; expected one of '
                f'{sorted(MIDAS_BACKBONES)} or an explicit backbone section')
        if self.inverse_midas:
            raise ConfigError('inverse_midas=true is not supported (no released model uses it)')
        if self.name == 'ZoeDepthNK':
            names = [c.name for c in self.bin_conf]
            if sorted(names) != ['kitti', 'nyu']:
                raise ConfigError(f'ZoeDepthNK needs bin_conf entries nyu and kitti, got {names}')
            if len({c.n_bins for c in self.bin_conf}) != 1:
                raise ConfigError('all bin_conf entries must have the same n_bins')
        if len(self.n_attractors) != 4:
            raise ConfigError(f'n_attractors needs 4 entries, got {list(self.n_attractors)}')
        if not 0 < self.min_depth < self.max_depth:
            raise ConfigError(f'need 0 < min_depth < max_depth, got {self.min_depth}, '
                              f'{self.max_depth}')

    @property
    def trunk(self) -> BackboneConfig:
        return self.backbone or MIDAS_BACKBONES[self.midas_model_type]

    @property
    def heads(self) -> tuple[BinConf, ...]:
        """The metric heads: the NK bin_conf, or one head named after the training domain."""
        if self.name == 'ZoeDepthNK':
            return self.bin_conf
        if self.bin_conf:
            return self.bin_conf[:1]
        # A single head without bin_conf: outdoor when its range reaches past 10 m (ZoeD_K).
        domain: Literal['nyu', 'kitti'] = 'kitti' if self.max_depth > 10.0 else 'nyu'
        max_depth = 10.0 if self.legacy_hub_kitti_range else self.max_depth
        return (BinConf(domain, self.n_bins, self.min_depth, max_depth),)


def load_original_config(data: dict[str, Any]) -> ModelConfig:
    """Build a ModelConfig from an original ZoeDepth JSON config (its ``model`` section).

    Keys of the ``infer`` section that describe weights or the training of MiDaS
    (``train_midas``, ``use_pretrained_midas``, ``pretrained_resource``, ``force_keep_ar``) are
    taken from there too; anything else unknown is an error.
    """
    section = dict(data.get('model', data))
    infer = data.get('infer', {})
    for key in ('force_keep_ar', 'pretrained_resource'):
        if key in infer:
            section.setdefault(key, infer[key])
    for key in ('train_midas', 'use_pretrained_midas'):
        section.pop(key, None)
    if 'bin_conf' in section:
        section['bin_conf'] = [dict(c) for c in section['bin_conf']]
    return from_dict(ModelConfig, section, where='model')
