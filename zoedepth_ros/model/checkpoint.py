"""Checkpoints: the original ZoeDepth layout <-> our module names; load strictly, save.

Our module tree (encoder / decoder / heads / router) differs from the original attribute
paths (``core.core.pretrained.model...``). One explicit prefix table maps between them; it
is bijective for every preset (tested against the released key lists). Loading never
downloads: resolve names to files with :mod:`zoedepth_ros.model.weights` first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file
from timm.models.beit import gen_relative_position_index

from zoedepth_ros.errors import CheckpointError
from zoedepth_ros.io.atomic import atomic_write
from zoedepth_ros.model.config import BackboneConfig, ModelConfig

if TYPE_CHECKING:
    from zoedepth_ros.model.zoedepth import ZoeDepth

UNUSED_INDEX_SUFFIX = 'attn.relative_position_index'
"""timm 0.6 saved this buffer (24 keys in the releases); it is regenerated, never loaded."""

MIDAS_PREFIXES = ('pretrained.', 'scratch.')
"""Top-level keys of a MiDaS checkpoint (the ZoeDepth core without ``core.core.``)."""

OFFICIAL_WEIGHTS_HINT = (
    'Official weights: https://github.com/isl-org/ZoeDepth/releases/tag/v1.0 '
    '(ZoeD_M12_N.pt, ZoeD_M12_K.pt, ZoeD_M12_NK.pt); pass the file with --weights or let '
    '`zoedepth infer --model ZoeD_M12_NK` download it once into the cache.')


def _encoder_prefixes(cfg: ModelConfig) -> list[tuple[str, str]]:
    """The MiDaS ``pretrained`` part: BEiT trunk + readouts + reassemble, or the four
    EfficientNet stages (same structure on both sides)."""
    if not isinstance(cfg.trunk, BackboneConfig):  # MiDaS v2.1 small
        return [(f'core.core.pretrained.layer{i}.', f'encoder.layer{i}.') for i in range(1, 5)]
    pairs = [('core.core.pretrained.model.', 'encoder.backbone.')]
    for i in range(4):
        post = f'core.core.pretrained.act_postprocess{i + 1}.'
        pairs += [(post + '0.project.', f'encoder.readout.{i}.project.'),
                  (post + '3.', f'decoder.reassemble.{i}.project.'),
                  (post + '4.', f'decoder.reassemble.{i}.resample.')]
    return pairs


def key_prefixes(cfg: ModelConfig) -> list[tuple[str, str]]:
    """(original prefix, our prefix) pairs for a model built from ``cfg``."""
    pairs = _encoder_prefixes(cfg) + [
        ('core.core.scratch.output_conv.', 'decoder.head.'),
        ('conv2.', 'bottleneck.'),
        ('seed_projector._net.', 'seed_projector.')]
    for i in range(4):
        fusion = f'core.core.scratch.refinenet{i + 1}.'
        pairs += [
            (f'core.core.scratch.layer{i + 1}_rn.', f'decoder.layer_rn.{i}.'),
            (fusion + 'resConfUnit1.', f'decoder.fusion.{i}.skip_unit.'),
            (fusion + 'resConfUnit2.', f'decoder.fusion.{i}.main_unit.'),
            (fusion + 'out_conv.', f'decoder.fusion.{i}.out_conv.'),
            (f'projectors.{i}._net.', f'projectors.{i}.'),
        ]
    if cfg.name == 'ZoeDepthNK':
        pairs += [('patch_transformer.embedding_convPxP.', 'router.embedding.'),
                  ('patch_transformer.transformer_encoder.', 'router.transformer.'),
                  ('mlp_classifier.', 'router.classifier.')]
        for conf in cfg.heads:
            d = conf.name
            pairs += [(f'seed_bin_regressors.{d}._net.', f'heads.{d}.seed_regressor.mlp.'),
                      (f'conditional_log_binomial.{d}.', f'heads.{d}.log_binomial.')]
            pairs += [(f'attractors.{d}.{i}._net.', f'heads.{d}.attractors.{i}.mlp.')
                      for i in range(4)]
    else:
        d = cfg.heads[0].name
        pairs += [('seed_bin_regressor._net.', f'heads.{d}.seed_regressor.mlp.'),
                  ('conditional_log_binomial.', f'heads.{d}.log_binomial.')]
        pairs += [(f'attractors.{i}._net.', f'heads.{d}.attractors.{i}.mlp.') for i in range(4)]
    return pairs


def _rename(keys: list[str], pairs: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Map keys through the longest matching prefix; returns (mapping, keys with no rule)."""
    ordered = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)
    mapping, unmatched = {}, []
    for key in keys:
        for source, target in ordered:
            if key.startswith(source):
                mapping[key] = target + key[len(source):]
                break
        else:
            unmatched.append(key)
    return mapping, unmatched


def to_ours(keys: list[str], cfg: ModelConfig) -> tuple[dict[str, str], list[str]]:
    """Original key -> our key for every key that has a rule; also the keys without one."""
    return _rename(keys, key_prefixes(cfg))


def to_original(keys: list[str], cfg: ModelConfig) -> tuple[dict[str, str], list[str]]:
    """Our key -> original key (inverse of :func:`to_ours`)."""
    return _rename(keys, [(ours, orig) for orig, ours in key_prefixes(cfg)])


def _summary(label: str, keys: list[str], limit: int = 6) -> str:
    shown = ', '.join(keys[:limit]) + (', ...' if len(keys) > limit else '')
    return f'{len(keys)} {label} key(s): {shown}'


def strip_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    """Take ``ckpt['model']`` if present and strip DataParallel/DDP ``module.`` prefixes."""
    if 'model' in state and isinstance(state['model'], dict):
        state = state['model']
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a ``.pt``/``.pth`` (``{"model": ...}`` or bare) or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint {path} does not exist. {OFFICIAL_WEIGHTS_HINT}')
    try:
        if path.suffix == '.safetensors':
            return load_file(str(path))
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f'cannot read checkpoint {path}: {err}') from None
    if not isinstance(state, dict):
        raise CheckpointError(f'{path} holds a {type(state).__name__}, expected a state dict')
    return strip_prefixes(state)


def refuse_midas_layout(state: dict[str, Any], source: str) -> None:
    """Raise if ``state`` is a MiDaS relative-depth checkpoint rather than a ZoeDepth model."""
    if state and all(k.startswith(MIDAS_PREFIXES) for k in state):
        raise CheckpointError(
            f'{source} is a MiDaS relative-depth checkpoint (keys pretrained.*, scratch.*), not '
            'a ZoeDepth model: it initialises the core of a model for training (model.init: '
            'midas:<file>, model.checkpoint.load_backbone_checkpoint)')


def load_original_state(model: ZoeDepth, state: dict[str, torch.Tensor],
                        source: str = 'checkpoint') -> None:
    """Load an original-layout state dict strictly; errors name every mismatch."""
    state = strip_prefixes(state)
    refuse_midas_layout(state, source)
    state = {k: v for k, v in state.items() if not k.endswith(UNUSED_INDEX_SUFFIX)}
    mapping, unexpected = to_ours(list(state), model.cfg)
    own = model.state_dict()
    renamed = {mapping[k]: v for k, v in state.items() if k in mapping}
    unexpected += [k for k in mapping if mapping[k] not in own]
    inverse, _ = to_original(list(own), model.cfg)
    missing = [inverse.get(k, k) for k in own if k not in renamed]
    mismatched = [f'{inverse.get(k, k)} {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in renamed.items() if k in own and v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = [_summary(label, keys) for label, keys in
                 (('missing', missing), ('unexpected', sorted(unexpected)),
                  ('shape-mismatched', mismatched)) if keys]
        raise CheckpointError(f'{source} does not fit model {model.cfg.name} '
                              f'({len(own)} keys): ' + '; '.join(parts))
    model.load_state_dict(renamed, strict=True)


def load_checkpoint(model: ZoeDepth, path: str | os.PathLike[str]) -> ZoeDepth:
    """Load an original-layout weights file (``.pt``/``.safetensors``) into ``model``."""
    load_original_state(model, read_state_dict(path), source=str(path))
    return model


def load_backbone_checkpoint(model: ZoeDepth, path: str | os.PathLike[str]) -> ZoeDepth:
    """Load a MiDaS checkpoint (keys ``pretrained.*``, ``scratch.*``: v3.1 BEiT or v2.1 small,
    e.g. ``midas_v21_small_256.pt``) into the core.

    The metric heads keep their current weights. Strict over the core: every encoder and
    decoder weight must be present with the right shape.
    """
    state = read_state_dict(path)
    core = {f'core.core.{k}': v for k, v in state.items()
            if k.startswith(MIDAS_PREFIXES) and not k.endswith(UNUSED_INDEX_SUFFIX)}
    if not core:
        raise CheckpointError(f'{path} holds no MiDaS keys (pretrained.*, scratch.*); '
                              f'found e.g. {list(state)[:3]}')
    mapping, unexpected = to_ours(list(core), model.cfg)
    renamed = {mapping[k]: v for k, v in core.items() if k in mapping}
    return load_core_state(model, renamed, str(path), unexpected)


CORE_PREFIXES = ('encoder.', 'decoder.')
"""Our keys of the relative-depth core (MiDaS's ``pretrained`` and ``scratch``)."""


def load_core_state(model: ZoeDepth, core: dict[str, torch.Tensor], source: str,
                    unexpected: list[str] | None = None) -> ZoeDepth:
    """Load ``core`` (our keys, :data:`CORE_PREFIXES` only) into ``model``'s encoder and
    decoder; the metric heads and router keep their weights.

    Raises:
        CheckpointError: naming the core keys that are missing, unexpected or shape-mismatched.
    """
    own = model.state_dict()
    missing = [k for k in own if k.startswith(CORE_PREFIXES) and k not in core]
    unexpected = list(unexpected or []) + [k for k in core if k not in own]
    mismatched = [f'{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in core.items() if k in own and v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(f'{source} does not fit the model core: ' + '; '.join(
            _summary(label, keys) for label, keys in (('missing', missing),
                                                      ('unexpected', unexpected),
                                                      ('shape-mismatched', mismatched)) if keys))
    model.load_state_dict({**own, **core}, strict=True)
    return model


def original_key_shapes(model: ZoeDepth) -> dict[str, tuple[int, ...]]:
    """Original-layout key -> shape of ``model`` (works on the meta device), index buffers
    excluded."""
    own = model.state_dict()
    mapping, unmatched = to_original(list(own), model.cfg)
    if unmatched:
        raise CheckpointError(_summary('unmapped', unmatched))
    return {mapping[k]: tuple(v.shape) for k, v in own.items()}


def original_state_dict(model: ZoeDepth) -> dict[str, torch.Tensor]:
    """State dict in the original layout, including the timm 0.6 index buffers.

    The index buffers (BEiT only) are written so that the original code (timm 0.6, strict
    loading) reads our checkpoints; they are regenerated for the stored table's window.
    """
    own = model.state_dict()
    mapping, unmatched = to_original(list(own), model.cfg)
    if unmatched:
        raise CheckpointError(_summary('unmapped', unmatched))
    state = {mapping[k]: v.detach().cpu() for k, v in own.items()}
    trunk = model.cfg.trunk
    if not isinstance(trunk, BackboneConfig):
        return state
    window = trunk.img_size // trunk.patch_size
    index = gen_relative_position_index((window, window))
    for block in range(trunk.depth):
        state[f'core.core.pretrained.model.blocks.{block}.{UNUSED_INDEX_SUFFIX}'] = index.clone()
    return state


def save_checkpoint(model: ZoeDepth, path: str | os.PathLike[str],
                    extra: dict[str, Any] | None = None,
                    dtype: torch.dtype | None = None) -> Path:
    """Write ``{"model": original-layout state dict, **extra}`` atomically; ``dtype`` casts
    the floating-point tensors (e.g. float16 halves a bundled file; loading casts back)."""
    state = original_state_dict(model)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    payload: dict[str, Any] = {'model': state}
    payload.update(extra or {})
    return atomic_torch_save(payload, Path(path))


def atomic_torch_save(payload: Any, path: Path) -> Path:
    """``torch.save`` under a temporary name in the target directory, then rename."""
    return atomic_write(path, lambda handle: torch.save(payload, handle))
