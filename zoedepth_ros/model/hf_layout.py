"""Read the Hugging Face ``transformers`` ZoeDepth layout (``Intel/zoedepth-*`` directories).

A directory with ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``). Two
key styles exist: transformers 4.x (``backbone.encoder.layer.N...``, the published
checkpoints) and 5.x (``backbone.beit.layers.N...``). Both are mapped back to the original
ZoeDepth layout, so one strict loader serves every format. Keys that transformers drops
(the unused ImageNet head, ``fc_norm``, the constant log-binomial buffers) are taken from
the freshly built model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file

from zoedepth_ros.config import from_dict
from zoedepth_ros.errors import CheckpointError
from zoedepth_ros.model.checkpoint import load_original_state, original_state_dict
from zoedepth_ros.model.config import BackboneConfig, BinConf, ModelConfig

if TYPE_CHECKING:
    from zoedepth_ros.model.zoedepth import ZoeDepth

_BLOCK = 'core.core.pretrained.model.blocks.'
# Backbone block parameters: original suffix -> (4.x suffix, 5.x suffix).
_BLOCK_SUFFIXES = {
    'gamma_1': ('lambda_1', 'lambda_1'),
    'gamma_2': ('lambda_2', 'lambda_2'),
    'norm1.weight': ('layernorm_before.weight', 'layernorm_before.weight'),
    'norm1.bias': ('layernorm_before.bias', 'layernorm_before.bias'),
    'norm2.weight': ('layernorm_after.weight', 'layernorm_after.weight'),
    'norm2.bias': ('layernorm_after.bias', 'layernorm_after.bias'),
    'attn.q_bias': ('attention.attention.query.bias', 'attention.q_proj.bias'),
    'attn.v_bias': ('attention.attention.value.bias', 'attention.v_proj.bias'),
    'attn.relative_position_bias_table': (
        'attention.attention.relative_position_bias.relative_position_bias_table',
        'relative_position_bias.relative_position_bias_table'),
    'attn.proj.weight': ('attention.output.dense.weight', 'attention.o_proj.weight'),
    'attn.proj.bias': ('attention.output.dense.bias', 'attention.o_proj.bias'),
    'mlp.fc1.weight': ('intermediate.dense.weight', 'mlp.fc1.weight'),
    'mlp.fc1.bias': ('intermediate.dense.bias', 'mlp.fc1.bias'),
    'mlp.fc2.weight': ('output.dense.weight', 'mlp.fc2.weight'),
    'mlp.fc2.bias': ('output.dense.bias', 'mlp.fc2.bias'),
}
_QKV = (('attention.attention.query.weight', 'attention.attention.key.weight',
         'attention.attention.value.weight'),
        ('attention.q_proj.weight', 'attention.k_proj.weight', 'attention.v_proj.weight'))
_DROPPED = ('fc_norm.', 'core.core.pretrained.model.head.', 'k_idx', 'K_minus_1')


def _head_key(key: str) -> str:
    """Original non-backbone key -> transformers key (identical in 4.x and 5.x)."""
    rules: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
        (r'^core\.core\.pretrained\.model\.cls_token$', 'backbone.embeddings.cls_token'),
        (r'^core\.core\.pretrained\.model\.patch_embed\.proj\.',
         'backbone.embeddings.patch_embeddings.projection.'),
        (r'^core\.core\.pretrained\.act_postprocess(\d)\.0\.project\.0\.',
         lambda m: f'neck.reassemble_stage.readout_projects.{int(m[1]) - 1}.0.'),
        (r'^core\.core\.pretrained\.act_postprocess(\d)\.3\.',
         lambda m: f'neck.reassemble_stage.layers.{int(m[1]) - 1}.projection.'),
        (r'^core\.core\.pretrained\.act_postprocess(\d)\.4\.',
         lambda m: f'neck.reassemble_stage.layers.{int(m[1]) - 1}.resize.'),
        (r'^core\.core\.scratch\.layer(\d)_rn\.', lambda m: f'neck.convs.{int(m[1]) - 1}.'),
        (r'^core\.core\.scratch\.refinenet(\d)\.',
         lambda m: f'neck.fusion_stage.layers.{4 - int(m[1])}.'),
        (r'^core\.core\.scratch\.output_conv\.(\d)\.',
         lambda m: f'relative_head.conv{int(m[1]) // 2 + 1}.'),
        (r'resConfUnit(\d)\.conv(\d)\.', r'residual_layer\1.convolution\2.'),
        (r'\.out_conv\.', '.projection.'),
        (r'^conv2\.', 'metric_head.conv2.'),
        (r'^mlp_classifier\.0\.', 'metric_head.mlp_classifier.linear1.'),
        (r'^mlp_classifier\.2\.', 'metric_head.mlp_classifier.linear2.'),
        (r'^(patch_transformer|projectors|seed_bin_regressors?|seed_projector|attractors|'
         r'conditional_log_binomial)', r'metric_head.\1'),
        (r'\._net\.0\.', '.conv1.'),
        (r'\._net\.2\.', '.conv2.'),
        (r'transformer_encoder\.layers\.', 'transformer_encoder.'),
    ]
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def hf_key_rows(orig_shapes: dict[str, tuple[int, ...]], style: str
                ) -> list[tuple[str, slice | None, str]]:
    """(original key, row slice or None, transformers key) for every mapped parameter.

    Args:
        orig_shapes: original key -> shape (the keys of the model to fill).
        style: 'v4' (published checkpoints) or 'v5' (current transformers).
    """
    v5 = style == 'v5'
    backbone = 'backbone.beit.layers.' if v5 else 'backbone.encoder.layer.'
    rows: list[tuple[str, slice | None, str]] = []
    for key, shape in orig_shapes.items():
        if key.endswith('relative_position_index') or any(d in key for d in _DROPPED):
            continue
        if key.startswith(_BLOCK):
            block, suffix = key[len(_BLOCK):].split('.', 1)
            prefix = f'{backbone}{block}.'
            if suffix == 'attn.qkv.weight':
                dim = shape[0] // 3
                rows += [(key, slice(i * dim, (i + 1) * dim), prefix + name)
                         for i, name in enumerate(_QKV[v5])]
            else:
                rows.append((key, None, prefix + _BLOCK_SUFFIXES[suffix][v5]))
            continue
        if key.endswith('self_attn.in_proj_weight') or key.endswith('self_attn.in_proj_bias'):
            dim = shape[0] // 3
            base = _head_key(key).rsplit('.', 1)[0]
            kind = 'weight' if key.endswith('weight') else 'bias'
            rows += [(key, slice(i * dim, (i + 1) * dim), f'{base}.{name}.{kind}')
                     for i, name in enumerate(('query', 'key', 'value'))]
            continue
        mapped = _head_key(key)
        if v5:
            mapped = mapped.replace('backbone.embeddings.', 'backbone.beit.embeddings.')
        rows.append((key, None, mapped))
    return rows


def config_from_hf(data: dict[str, Any]) -> ModelConfig:
    """ModelConfig from a transformers ``ZoeDepthConfig`` dict."""
    backbone = data['backbone_config']
    trunk = BackboneConfig(
        img_size=backbone['image_size'], patch_size=backbone['patch_size'],
        embed_dim=backbone['hidden_size'], depth=backbone['num_hidden_layers'],
        num_heads=backbone['num_attention_heads'],
        mlp_ratio=backbone['intermediate_size'] / backbone['hidden_size'],
        hooks=tuple(i - 1 for i in backbone['out_indices']),
        reassemble_features=tuple(data['neck_hidden_sizes']),
        features=data['fusion_hidden_size'], head_features=data['num_relative_features'])
    bins = tuple(from_dict(BinConf, dict(c)) for c in data['bin_configurations'])
    nk = len(bins) > 1
    first = bins[0]
    return ModelConfig(
        name='ZoeDepthNK' if nk else 'ZoeDepth', backbone=trunk,
        img_size=(384, 768) if first.name == 'kitti' and not nk else (384, 512),
        n_bins=first.n_bins, bin_centers_type=data['bin_centers_type'],
        bin_embedding_dim=data['bin_embedding_dim'], min_depth=first.min_depth,
        max_depth=first.max_depth, bin_conf=bins if nk else (),
        n_attractors=tuple(data['num_attractors']), attractor_alpha=data['attractor_alpha'],
        attractor_gamma=data['attractor_gamma'], attractor_kind=data['attractor_kind'],
        min_temp=data['min_temp'], max_temp=data['max_temp'])


def read_hf_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` of a transformers model directory."""
    config_file = path / 'config.json'
    if not config_file.is_file():
        raise CheckpointError(f'{path} has no config.json; expected a transformers ZoeDepth '
                              f'directory (config.json + model.safetensors)')
    return json.loads(config_file.read_text())


def read_hf_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a transformers model directory."""
    if (path / 'model.safetensors').is_file():
        return load_file(str(path / 'model.safetensors'))
    if (path / 'pytorch_model.bin').is_file():
        return torch.load(path / 'pytorch_model.bin', map_location='cpu', weights_only=True)
    raise CheckpointError(f'{path} has no model.safetensors or pytorch_model.bin')


def load_hf_checkpoint(model: ZoeDepth, path: Path) -> ZoeDepth:
    """Load a transformers directory's weights into ``model`` (strictly); returns it."""
    load_original_state(model, hf_to_original_state(path, model), source=str(path))
    return model


def hf_to_original_state(path: Path, model: ZoeDepth) -> dict[str, torch.Tensor]:
    """Original-layout state dict for ``model`` from a transformers directory."""
    hf_state = read_hf_weights(path)
    style = 'v5' if any(k.startswith('backbone.beit.') for k in hf_state) else 'v4'
    state = original_state_dict(model)
    rows = hf_key_rows({k: tuple(v.shape) for k, v in state.items()}, style)
    missing = sorted({hf for _, _, hf in rows if hf not in hf_state})
    unexpected = sorted(set(hf_state) - {hf for _, _, hf in rows})
    if missing or unexpected:
        raise CheckpointError(
            f'{path} ({style} key style) does not fit model {model.cfg.name}: '
            f'{len(missing)} missing e.g. {missing[:5]}; {len(unexpected)} unexpected e.g. '
            f'{unexpected[:5]}')
    for key in state:
        if '.fc_norm.' in key or '.model.head.' in key:  # unused ImageNet head, not shipped
            state[key] = torch.ones_like(state[key]) if key.endswith('fc_norm.weight') else (
                torch.zeros_like(state[key]))
    sliced: dict[str, list[tuple[slice, torch.Tensor]]] = {}
    for orig, rows_slice, hf in rows:
        if rows_slice is None:
            state[orig] = hf_state[hf]
        else:
            sliced.setdefault(orig, []).append((rows_slice, hf_state[hf]))
    for orig, parts in sliced.items():
        parts.sort(key=lambda item: item[0].start)
        state[orig] = torch.cat([tensor for _, tensor in parts])
    return state
