"""Typed configs: YAML files, overrides, original ZoeDepth configs, errors that list keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoedepth_ros.config import apply_overrides, from_dict, load_config, save_config
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.model.config import (
    BinConf,
    ModelConfig,
    get_config,
    load_original_config,
    resolve_model_config,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'config' / 'model'


@pytest.mark.parametrize('file_name, preset', [
    ('zoed_n.yaml', 'ZoeD_N'), ('zoed_k.yaml', 'ZoeD_K'), ('zoed_nk.yaml', 'ZoeD_NK'),
    ('zoed_small_n.yaml', 'ZoeD_small_N'), ('zoed_small_nk.yaml', 'ZoeD_small_NK'),
    ('zoed_small_nk_cpu.yaml', 'ZoeD_small_NK_cpu')])
def test_shipped_model_configs_equal_presets(file_name: str, preset: str) -> None:
    assert load_config(CONFIG_DIR / file_name, ModelConfig) == get_config(preset)


def test_unknown_key_lists_valid_keys(tmp_path: Path) -> None:
    path = tmp_path / 'model.yaml'
    path.write_text('n_bin: 64\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['n_bin'\].*'n_bins'"):
        load_config(path, ModelConfig)


def test_types_and_choices_are_checked() -> None:
    with pytest.raises(ConfigError, match='bin_centers_type.*not one of'):
        from_dict(ModelConfig, {'bin_centers_type': 'linear'})
    with pytest.raises(ConfigError, match='n_bins: expected an integer'):
        from_dict(ModelConfig, {'n_bins': '64'})
    with pytest.raises(ConfigError, match='ZoeDepthNK needs bin_conf'):
        from_dict(ModelConfig, {'name': 'ZoeDepthNK'})
    cfg = from_dict(ModelConfig, {'img_size': [256, 320], 'max_depth': 20})
    assert cfg.img_size == (256, 320) and cfg.max_depth == 20.0


def test_overrides_are_parsed_and_checked() -> None:
    cfg = apply_overrides(get_config('ZoeD_NK'), ['max_temp=40', 'force_keep_ar=false',
                                                  'img_size=[256, 320]'])
    assert cfg.max_temp == 40.0 and cfg.force_keep_ar is False and cfg.img_size == (256, 320)
    with pytest.raises(ConfigError, match="unknown key 'max_tmp'"):
        apply_overrides(cfg, ['max_tmp=1'])
    with pytest.raises(ConfigError, match='must look like key=value'):
        apply_overrides(cfg, ['max_temp'])


def test_original_zoedepth_config_carries_over(tmp_path: Path) -> None:
    original = {
        'model': {'name': 'ZoeDepthNK', 'version_name': 'v1', 'bin_centers_type': 'softplus',
                  'bin_embedding_dim': 128, 'n_attractors': [16, 8, 4, 1],
                  'attractor_alpha': 1000, 'attractor_gamma': 2, 'attractor_kind': 'mean',
                  'attractor_type': 'inv', 'min_temp': 0.0212, 'max_temp': 50.0,
                  'memory_efficient': True, 'midas_model_type': 'DPT_BEiT_L_384',
                  'img_size': [384, 512], 'output_distribution': 'logbinomial',
                  'bin_conf': [{'name': 'nyu', 'n_bins': 64, 'min_depth': 1e-3, 'max_depth': 10},
                               {'name': 'kitti', 'n_bins': 64, 'min_depth': 1e-3,
                                'max_depth': 80}]},
        'infer': {'train_midas': False, 'use_pretrained_midas': False, 'force_keep_ar': True,
                  'pretrained_resource': 'url::https://example.invalid/ZoeD_M12_NK.pt'},
    }
    cfg = load_original_config(original)
    assert cfg.bin_conf == (BinConf('nyu', 64, 1e-3, 10.0), BinConf('kitti', 64, 1e-3, 80.0))
    assert cfg.pretrained_resource.startswith('url::')
    comparable = {**cfg.__dict__, 'pretrained_resource': None}
    assert ModelConfig(**comparable) == get_config('ZoeD_NK')
    (tmp_path / 'config_zoedepth_nk.json').write_text(json.dumps(original))
    assert resolve_model_config(str(tmp_path / 'config_zoedepth_nk.json')) == cfg
    (tmp_path / 'broken.json').write_text('{"model": ')
    with pytest.raises(ConfigError, match='cannot read original config'):
        resolve_model_config(str(tmp_path / 'broken.json'))


def test_save_config_round_trip(tmp_path: Path) -> None:
    cfg = get_config('zoedepth_tiny_nk')
    save_config(cfg, tmp_path / 'resolved.yaml')
    assert load_config(tmp_path / 'resolved.yaml', ModelConfig) == cfg
