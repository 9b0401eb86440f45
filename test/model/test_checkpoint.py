"""Checkpoint loading and saving: strictness, prefixes, formats, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zoedepth_ros.errors import CheckpointError
from zoedepth_ros.model import PRESETS, ZoeDepth, build_model, get_config
from zoedepth_ros.model.checkpoint import (
    key_prefixes,
    load_backbone_checkpoint,
    load_checkpoint,
    original_state_dict,
    save_checkpoint,
    to_original,
    to_ours,
)
from zoedepth_ros.model.loading import load_model


@pytest.fixture(scope='module')
def tiny_nk() -> ZoeDepth:
    torch.manual_seed(5)
    return build_model('zoedepth_tiny_nk')


@pytest.mark.parametrize('preset', sorted(PRESETS))
def test_rename_table_is_bijective(preset: str) -> None:
    cfg = get_config(preset)
    with torch.device('meta'):
        model = ZoeDepth(cfg)
    ours = list(model.state_dict())
    to_orig, unmatched = to_original(ours, cfg)
    assert not unmatched
    back, unmatched_back = to_ours(list(to_orig.values()), cfg)
    assert not unmatched_back
    assert [back[to_orig[k]] for k in ours] == ours
    assert len(set(to_orig.values())) == len(ours)
    originals = [orig for orig, _ in key_prefixes(cfg)]
    assert len(originals) == len(set(originals))


def _equal_models(a: ZoeDepth, b: ZoeDepth) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_save_then_load_round_trip(tiny_nk: ZoeDepth, tmp_path: Path) -> None:
    path = save_checkpoint(tiny_nk, tmp_path / 'model.pt', extra={'epoch': 3})
    payload = torch.load(path, weights_only=True)
    assert payload['epoch'] == 3
    state = payload['model']
    # Written in the original layout, with the timm 0.6 index buffers the original code needs.
    assert 'core.core.pretrained.model.blocks.0.attn.relative_position_index' in state
    assert 'mlp_classifier.2.bias' in state and 'seed_bin_regressors.kitti._net.0.weight' in state
    assert state['core.core.pretrained.model.blocks.0.attn.relative_position_index'].shape == (
        257, 257)
    loaded = load_model(str(path)).model
    assert loaded.cfg == tiny_nk.cfg
    _equal_models(loaded, tiny_nk)
    assert not list(tmp_path.glob('.*.tmp'))


def test_module_prefix_and_bare_dict_are_accepted(tiny_nk: ZoeDepth, tmp_path: Path) -> None:
    state = original_state_dict(tiny_nk)
    torch.save({f'module.{k}': v for k, v in state.items()}, tmp_path / 'ddp.pt')
    fresh = build_model('zoedepth_tiny_nk')
    load_checkpoint(fresh, tmp_path / 'ddp.pt')
    _equal_models(fresh, tiny_nk)


def test_mismatches_are_named(tiny_nk: ZoeDepth, tmp_path: Path) -> None:
    state = original_state_dict(tiny_nk)
    del state['mlp_classifier.2.bias']
    state['extra.layer.weight'] = torch.zeros(1)
    state['conv2.weight'] = torch.zeros(3, 3, 1, 1)
    torch.save({'model': state}, tmp_path / 'bad.pt')
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(build_model('zoedepth_tiny_nk'), tmp_path / 'bad.pt')
    message = str(info.value)
    assert '1 missing key(s): mlp_classifier.2.bias' in message
    assert '1 unexpected key(s): extra.layer.weight' in message
    assert 'conv2.weight (3, 3, 1, 1) vs model (64, 64, 1, 1)' in message


def test_wrong_variant_is_refused(tiny_nk: ZoeDepth, tmp_path: Path) -> None:
    save_checkpoint(tiny_nk, tmp_path / 'nk.pt')
    with pytest.raises(CheckpointError, match='missing key'):
        load_checkpoint(build_model('zoedepth_tiny_n'), tmp_path / 'nk.pt')


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot read checkpoint'):
        load_checkpoint(build_model('zoedepth_tiny_n'), tmp_path / 'junk.pt')
    with pytest.raises(CheckpointError, match='does not exist.*releases'):
        load_checkpoint(build_model('zoedepth_tiny_n'), tmp_path / 'absent.pt')


def test_safetensors_in_original_layout(tiny_nk: ZoeDepth, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in original_state_dict(tiny_nk).items()}
    save_file(state, str(tmp_path / 'model.safetensors'))
    _equal_models(load_model(str(tmp_path / 'model.safetensors')).model, tiny_nk)


def test_midas_backbone_checkpoint_loads_core_only(tiny_nk: ZoeDepth, tmp_path: Path) -> None:
    state = original_state_dict(tiny_nk)
    midas = {k[len('core.core.'):]: v for k, v in state.items() if k.startswith('core.core.')}
    torch.save(midas, tmp_path / 'dpt_beit.pt')
    torch.manual_seed(9)
    fresh = build_model('zoedepth_tiny_nk')
    head_before = fresh.heads['nyu'].seed_regressor.mlp[0].weight.clone()
    load_backbone_checkpoint(fresh, tmp_path / 'dpt_beit.pt')
    assert torch.equal(fresh.encoder.backbone.cls_token, tiny_nk.encoder.backbone.cls_token)
    assert torch.equal(fresh.decoder.head[4].weight, tiny_nk.decoder.head[4].weight)
    assert torch.equal(fresh.heads['nyu'].seed_regressor.mlp[0].weight, head_before)
    del midas['scratch.layer1_rn.weight']
    torch.save(midas, tmp_path / 'partial.pt')
    with pytest.raises(CheckpointError, match='decoder.layer_rn.0.weight'):
        load_backbone_checkpoint(fresh, tmp_path / 'partial.pt')


def test_config_beside_checkpoint_and_unknown_shapes(tmp_path: Path) -> None:
    from zoedepth_ros.config import save_config
    from zoedepth_ros.model.config import BackboneConfig

    cfg = get_config('zoedepth_tiny_n')
    small = type(cfg)(**{**cfg.__dict__, 'backbone': BackboneConfig(
        img_size=64, embed_dim=32, depth=4, num_heads=2, hooks=(0, 1, 2, 3),
        reassemble_features=(8, 16, 16, 32), features=16, head_features=8)})
    model = build_model(small)
    save_checkpoint(model, tmp_path / 'custom.pt')
    with pytest.raises(CheckpointError, match='matches none of the presets'):
        load_model(str(tmp_path / 'custom.pt'))
    save_config(small, tmp_path / 'custom.yaml')
    assert load_model(str(tmp_path / 'custom.pt')).model.cfg == small
