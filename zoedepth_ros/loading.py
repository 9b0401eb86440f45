"""Turn a weights name or path into a ready model: resolve, pick the config, load strictly.

Accepted: a registry name (``ZoeD_M12_NK``, the bundled ``zoedepth_demo_nk``, ...), a
``.pt``/``.pth``/``.safetensors`` file in the original layout, or a transformers model
directory. The config is, in order: the one given, the registry's, the directory's
``config.json``, a ``<checkpoint>.yaml`` beside the file, or the preset whose key set and
shapes equal the checkpoint's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zoedepth_ros.config import ModelConfig, load_config
from zoedepth_ros.errors import CheckpointError
from zoedepth_ros.model import PRESETS, ZoeDepth, build_model, get_config
from zoedepth_ros.model.checkpoint import (
    UNUSED_INDEX_SUFFIX,
    load_checkpoint,
    load_original_state,
    original_key_shapes,
    read_state_dict,
)
from zoedepth_ros.weights import REGISTRY, ProgressCallback, resolve_weights


def _as_config(config: str | ModelConfig) -> ModelConfig:
    if isinstance(config, ModelConfig):
        return config
    if Path(config).is_file():
        return load_config(config, ModelConfig)
    if config in PRESETS:
        return get_config(config)
    raise CheckpointError(f'config {config!r} is neither a YAML file nor a preset '
                          f'{sorted(PRESETS)}')


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith(UNUSED_INDEX_SUFFIX)}


def guess_config(state: dict[str, torch.Tensor]) -> ModelConfig:
    """The preset whose original-layout key set and shapes equal those of ``state``."""
    wanted = _shapes(state)
    width = wanted.get('core.core.pretrained.model.cls_token', (0,))[-1]
    for name in PRESETS:
        cfg = get_config(name)
        if cfg.trunk.embed_dim != width:
            continue  # cheap filter before building the candidate on the meta device
        with torch.device('meta'):
            candidate = ZoeDepth(cfg)
        if original_key_shapes(candidate) == wanted:
            return cfg
    raise CheckpointError(
        f'the checkpoint ({len(wanted)} keys) matches none of the presets {sorted(PRESETS)}; '
        f'pass its model config (a YAML file of ModelConfig fields) with --config')


def load_model(name_or_path: str, config: str | ModelConfig | None = None,
               progress: ProgressCallback | None = None) -> ZoeDepth:
    """Build the model for ``name_or_path`` and load its weights (see module docstring)."""
    spec = REGISTRY.get(name_or_path)
    path = resolve_weights(name_or_path, progress=progress)
    if config is not None:
        cfg = _as_config(config)
    elif spec is not None:
        cfg = _as_config(str(path.with_suffix('.yaml')) if spec.bundled else spec.preset)
    elif path.is_dir():
        from zoedepth_ros.model.hf_layout import config_from_hf, read_hf_directory
        cfg = config_from_hf(read_hf_directory(path)[0])
    elif path.with_suffix('.yaml').is_file():
        cfg = load_config(path.with_suffix('.yaml'), ModelConfig)
    else:
        state = read_state_dict(path)
        model = build_model(guess_config(state), initialize=False)
        load_original_state(model, state, source=str(path))
        return model
    return load_checkpoint(build_model(cfg, initialize=False), path).eval()
