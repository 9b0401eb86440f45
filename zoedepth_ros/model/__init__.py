"""ZoeDepth models: named presets and ``build_model`` (random init, never touches disk/network)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from zoedepth_ros.config import BackboneConfig, BinConf, ModelConfig
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.model.bins import LogBinomial
from zoedepth_ros.model.zoedepth import DepthOutput, ZoeDepth, network_size

__all__ = ['PRESETS', 'DepthOutput', 'ZoeDepth', 'build_model', 'get_config', 'network_size']

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


PRESETS: dict[str, Callable[[], ModelConfig]] = {
    'ZoeD_N': zoed_n,
    'ZoeD_K': zoed_k,
    'ZoeD_NK': zoed_nk,
    'zoedepth_tiny_n': zoedepth_tiny_n,
    'zoedepth_tiny_k': zoedepth_tiny_k,
    'zoedepth_tiny_nk': zoedepth_tiny_nk,
}


def get_config(name: str) -> ModelConfig:
    """The ModelConfig of a preset, e.g. ``get_config('ZoeD_NK')``."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f'unknown model preset {name!r}; expected one of {sorted(PRESETS)}'
                          ) from None


def build_model(name_or_cfg: str | ModelConfig, initialize: bool = True) -> ZoeDepth:
    """Build a model in eval mode (load weights with model.checkpoint).

    Args:
        name_or_cfg: preset name or ModelConfig.
        initialize: random initialisation (timm's scheme). False allocates the parameters
            uninitialised, which is several times faster for BEiT-L; only for callers that
            load every weight right after (constant buffers are filled either way).
    """
    cfg = get_config(name_or_cfg) if isinstance(name_or_cfg, str) else name_or_cfg
    if initialize:
        return ZoeDepth(cfg).eval()
    with torch.device('meta'):
        model = ZoeDepth(cfg)
    model = model.to_empty(device='cpu')
    model.encoder.reset_buffers()
    for module in model.modules():
        if isinstance(module, LogBinomial):
            module.reset_buffers()
    return model.eval()
