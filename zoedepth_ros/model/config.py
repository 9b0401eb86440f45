"""Model configuration: ``ModelConfig`` (one frozen dataclass per ``config/model/*.yaml``), its
backbone sections (BEiT-DPT, MiDaS v2.1 small) and the named presets (the released ZoeDepth
models, ZoeDepth on MiDaS v2.1 small, and tiny test models of the same code paths).

Field names follow the original ZoeDepth configs so that they carry over.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from zoedepth_ros.config import from_dict, load_config
from zoedepth_ros.errors import ConfigError


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

    kind: Literal['beit'] = 'beit'
    """Backbone family; a ``backbone`` section is a BEiT trunk unless it says otherwise."""
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

    @property
    def bottleneck_features(self) -> int:
        """Channels of the decoder's bottleneck (layer4_rn)."""
        return self.features

    @property
    def fused_features(self) -> tuple[int, int, int, int]:
        """Channels of the fusion outputs r4, r3, r2, r1."""
        return (self.features,) * 4


@dataclass(frozen=True)
class EfficientNetConfig:
    """EfficientNet-Lite3 encoder and MiDaS v2.1 small ("expand" RefineNet) decoder sizes."""

    kind: Literal['efficientnet_lite3'] = 'efficientnet_lite3'
    width: float = 1.0
    """Channel multiplier on Lite3's widths: 1.0 is MiDaS v2.1 small (the only width its
    released weights fit); smaller values give slimmer CPU models of the same code path."""
    features: int = 64
    """Decoder width of the finest stage; the stages have 1, 2, 4 and 8 times it."""
    head_features: int = 32

    def __post_init__(self) -> None:
        if not 0 < self.width <= 4:
            raise ConfigError(f'backbone.width must be in (0, 4], got {self.width}')
        if self.features < 2 or self.features % 2:
            raise ConfigError(f'backbone.features must be even and >= 2, got {self.features}')

    @property
    def stage_features(self) -> tuple[int, int, int, int]:
        """Decoder widths of layer1_rn..layer4_rn (MiDaS "expand")."""
        return self.features, 2 * self.features, 4 * self.features, 8 * self.features

    @property
    def bottleneck_features(self) -> int:
        return self.stage_features[3]

    @property
    def fused_features(self) -> tuple[int, int, int, int]:
        """r4, r3, r2 halve their stage's width in the out_conv; r1 keeps it."""
        stages = self.stage_features
        return stages[3] // 2, stages[2] // 2, stages[1] // 2, stages[0]


TrunkConfig = BackboneConfig | EfficientNetConfig
"""Any backbone section: what ``ModelConfig.trunk`` returns."""


MIDAS_BACKBONES: dict[str, TrunkConfig] = {
    'DPT_BEiT_L_384': BackboneConfig(),
    'DPT_BEiT_L_512': BackboneConfig(img_size=512),
    'DPT_BEiT_B_384': BackboneConfig(embed_dim=768, depth=12, num_heads=12, hooks=(2, 5, 8, 11),
                                     reassemble_features=(96, 192, 384, 768)),
    'MiDaS_small': EfficientNetConfig(),
}
"""MiDaS backbones by their original ``midas_model_type`` name: the v3.1 BEiT trunks and
MiDaS v2.1 small (EfficientNet-Lite3)."""


@dataclass(frozen=True)
class ModelConfig:
    """A ZoeDepth model. Field names follow the original configs so they carry over."""

    name: Literal['ZoeDepth', 'ZoeDepthNK'] = 'ZoeDepth'
    version_name: Literal['v1'] = 'v1'
    midas_model_type: str = 'DPT_BEiT_L_384'
    backbone: BackboneConfig | EfficientNetConfig | None = None
    """Explicit trunk sizes; ``None`` takes them from ``midas_model_type``. Its ``kind`` must
    be the family of ``midas_model_type`` (beit, or efficientnet_lite3 for MiDaS_small)."""
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
    metric_stride: int = 1
    """Not in the original: the finest attractor layer and the log-binomial run on their
    features average-pooled by this factor (1 = the original, full decoder resolution; 2 = a
    quarter of the pixels, the depth then upsampled like any network output). A CPU option
    for models trained with it: the per-bin work of these two is most of a small backbone's
    time."""
    legacy_hub_kitti_range: bool = False
    """Reproduce the original hub's ZoeD_K build, whose range silently became 0.001-10 m."""
    pretrained_resource: str | None = None
    """Weights named by the original config (``url::...`` or ``local::...``); informational."""

    def __post_init__(self) -> None:
        if self.backbone is None and self.midas_model_type not in MIDAS_BACKBONES:
            raise ConfigError(
                f'midas_model_type {self.midas_model_type!r} is not supported; expected one of '
                f'{sorted(MIDAS_BACKBONES)} or an explicit backbone section')
        known = MIDAS_BACKBONES.get(self.midas_model_type)
        if self.backbone is not None and known is not None and known.kind != self.backbone.kind:
            raise ConfigError(
                f'the backbone section is a {self.backbone.kind} trunk but midas_model_type '
                f'{self.midas_model_type} needs kind {known.kind} (set backbone.kind)')
        if self.metric_stride not in (1, 2, 4):
            raise ConfigError(f'metric_stride must be 1, 2 or 4, got {self.metric_stride}')
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
    def trunk(self) -> TrunkConfig:
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


FOCAL_REFERENCE = (518.8579 / 640.0, 721.5377 / 1216.0)
"""Focal length in image widths (fx / width) of the cameras the official heads learned their
scale from: indoor NYU Depth v2 (Kinect, fx 518.9 px, 640 wide) and outdoor KITTI (fx 721.5
px, kb-cropped to 1216 wide). The focal-length correction divides by these."""

NODE_MIN_RANGE_M = 0.1
NODE_MAX_RANGE_M = 80.0
"""The published depth's default valid interval (the node's ``min_range`` / ``max_range``
parameters, and what ``bag eval --out-bag`` writes), metres."""

NK_BINS = (BinConf('nyu', 64, 1e-3, 10.0), BinConf('kitti', 64, 1e-3, 80.0))

# The small BEiT of the reference vectors: same code path as BEiT-L-384, 3-5 M parameters.
TINY_BACKBONE = BackboneConfig(img_size=256, embed_dim=128, depth=8, num_heads=4,
                               hooks=(1, 3, 5, 7), reassemble_features=(32, 64, 96, 128),
                               features=64, head_features=32)


def zoed_n() -> ModelConfig:
    """ZoeD_M12_N: indoor (NYU), BEiT-L-384, softplus bins, 0.001-10 m."""
    return ModelConfig(name='ZoeDepth', img_size=(384, 512), bin_centers_type='softplus',
                       max_depth=10.0)


def zoed_k() -> ModelConfig:
    """ZoeD_M12_K: outdoor (KITTI), normed bins, trained with 0.001-80 m (not the hub's 10)."""
    return ModelConfig(name='ZoeDepth', img_size=(384, 768), bin_centers_type='normed',
                       max_depth=80.0)


def zoed_nk() -> ModelConfig:
    """ZoeD_M12_NK: indoor + outdoor heads with the learned router."""
    return ModelConfig(name='ZoeDepthNK', img_size=(384, 512), bin_centers_type='softplus',
                       bin_conf=NK_BINS)


def zoedepth_tiny_n() -> ModelConfig:
    return ModelConfig(name='ZoeDepth', backbone=TINY_BACKBONE, img_size=(384, 512),
                       bin_centers_type='softplus', max_depth=10.0)


def zoedepth_tiny_k() -> ModelConfig:
    return ModelConfig(name='ZoeDepth', backbone=TINY_BACKBONE, img_size=(384, 768),
                       bin_centers_type='normed', max_depth=80.0)


def zoedepth_tiny_nk() -> ModelConfig:
    return ModelConfig(name='ZoeDepthNK', backbone=TINY_BACKBONE, img_size=(384, 512),
                       bin_centers_type='softplus', bin_conf=NK_BINS)


# A slimmer MiDaS-small trunk for tests and weak CPUs: same code path, random weights only.
SMALL_TINY_BACKBONE = EfficientNetConfig(width=0.5, features=32, head_features=16)


def zoed_small_n() -> ModelConfig:
    """ZoeDepth on MiDaS v2.1 small (EfficientNet-Lite3) at 256x320: one softplus head,
    0.001-10 m, as the original ``midas_model_type="MiDaS_small"`` builds it."""
    return ModelConfig(name='ZoeDepth', midas_model_type='MiDaS_small', img_size=(256, 320),
                       bin_centers_type='softplus', max_depth=10.0)


def zoed_small_nk() -> ModelConfig:
    """ZoeD_NK's two heads and router on MiDaS v2.1 small at 256x320."""
    return ModelConfig(name='ZoeDepthNK', midas_model_type='MiDaS_small', img_size=(256, 320),
                       bin_centers_type='softplus', bin_conf=NK_BINS)


def zoed_small_nk_cpu() -> ModelConfig:
    """ZoeD_small_NK for CPUs (>= 10 frames/s at 256x320 on 2 cores): the finest attractor and
    the log-binomial at a quarter of the pixels (``metric_stride=2``), 32 bins per head. The
    core is MiDaS v2.1 small's, so ``midas_v21_small_256`` initialises it; the heads need
    metric fine-tuning (no released weights have this head)."""
    return dataclasses.replace(zoed_small_nk(), metric_stride=2, n_bins=32, bin_conf=tuple(
        dataclasses.replace(conf, n_bins=32) for conf in NK_BINS))


def zoedepth_small_tiny_n() -> ModelConfig:
    return dataclasses.replace(zoed_small_n(), backbone=SMALL_TINY_BACKBONE)


def zoedepth_small_tiny_nk() -> ModelConfig:
    return dataclasses.replace(zoed_small_nk(), backbone=SMALL_TINY_BACKBONE)


PRESETS: dict[str, Callable[[], ModelConfig]] = {
    'ZoeD_N': zoed_n,
    'ZoeD_K': zoed_k,
    'ZoeD_NK': zoed_nk,
    'zoedepth_tiny_n': zoedepth_tiny_n,
    'zoedepth_tiny_k': zoedepth_tiny_k,
    'zoedepth_tiny_nk': zoedepth_tiny_nk,
    'ZoeD_small_N': zoed_small_n,
    'ZoeD_small_NK': zoed_small_nk,
    'ZoeD_small_NK_cpu': zoed_small_nk_cpu,
    'zoedepth_small_tiny_n': zoedepth_small_tiny_n,
    'zoedepth_small_tiny_nk': zoedepth_small_tiny_nk,
}


def get_config(name: str) -> ModelConfig:
    """The ModelConfig of a preset, e.g. ``get_config('ZoeD_NK')``."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f'unknown model preset {name!r}; expected one of {sorted(PRESETS)}'
                          ) from None


def resolve_model_config(config: str | ModelConfig) -> ModelConfig:
    """A ModelConfig from itself, a preset name, a ModelConfig YAML file or an original
    ZoeDepth JSON config (``config_zoedepth*.json``)."""
    if isinstance(config, ModelConfig):
        return config
    if config in PRESETS:
        return get_config(config)
    path = Path(config)
    if path.is_file() and path.suffix == '.json':
        try:
            return load_original_config(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f'cannot read original config {path}: {err}') from None
    if path.is_file():
        return load_config(path, ModelConfig)
    raise ConfigError(f'model config {config!r} is neither a preset {sorted(PRESETS)} nor an '
                      'existing ModelConfig YAML or original ZoeDepth JSON file')
