"""Parameter groups, learning-rate factors and the OneCycle schedule of the original recipe."""

from __future__ import annotations

import pytest
import torch

from zoedepth_ros.model import build_model
from zoedepth_ros.training.config import OptimConfig, ScheduleConfig
from zoedepth_ros.training.optim import build_optimizer, build_scheduler, part_of


def test_part_of_names() -> None:
    assert part_of('encoder.backbone.blocks.0.attn.qkv.weight') == 'encoder'
    assert part_of('encoder.readout.0.project.0.weight') == 'encoder'
    assert part_of('encoder.backbone.blocks.3.attn.relative_position_bias_table') == 'pos_bias'
    assert part_of('module.decoder.fusion.0.out_conv.weight') == 'decoder'
    assert part_of('core.core.scratch.refinenet1.out_conv.weight') == 'decoder'
    assert part_of('core.core.pretrained.act_postprocess1.0.project.0.weight') == 'encoder'
    assert part_of('heads.nyu.seed.mlp.0.weight') == 'heads'
    assert part_of('router.classifier.0.weight') == 'router'
    assert part_of('patch_transformer.embedding_convPxP.weight') == 'router'
    assert part_of('bottleneck.weight') == 'heads'


@pytest.mark.parametrize(('preset', 'decoder_factor'), [('zoedepth_tiny_nk', 0.1),
                                                        ('zoedepth_tiny_n', 1.0)])
def test_groups_cover_every_parameter_once(preset: str, decoder_factor: float) -> None:
    model = build_model(preset)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3, router_lr_factor=0.2),
                                ScheduleConfig(), len(model.heads))
    lrs = {g['name']: g['lr'] for g in optimizer.param_groups}
    expected = {'encoder': 1e-4, 'pos_bias': 1e-4, 'decoder': 1e-3 * decoder_factor,
                'heads': 1e-3}
    if preset.endswith('nk'):
        expected['router'] = 2e-4
    assert lrs == pytest.approx(expected)
    grouped = [id(p) for g in optimizer.param_groups for p in g['params']]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    pos = next(g for g in optimizer.param_groups if g['name'] == 'pos_bias')['params']
    assert len(pos) == model.cfg.trunk.depth
    assert all(g['weight_decay'] == 0.01 for g in optimizer.param_groups)


def test_one_cycle_schedule_shape() -> None:
    layer = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW([{'params': layer.parameters(), 'lr': 2.0, 'name': 'heads'}],
                                  betas=(0.95, 0.999))
    scheduler = build_scheduler(optimizer, ScheduleConfig(), total_steps=10)
    lrs, betas = [], []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]['lr'])
        betas.append(optimizer.param_groups[0]['betas'][0])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(2.0)  # div_factor 1: starts at the maximum
    assert max(lrs) == pytest.approx(2.0)
    assert lrs[-1] == pytest.approx(2.0 / 1e4)  # cosine down to max / final_div_factor
    assert all(a >= b for a, b in zip(lrs[6:], lrs[7:], strict=False))
    assert betas[0] == pytest.approx(0.95) and betas[-1] == pytest.approx(0.95)
    assert betas[6] == pytest.approx(0.85) and lrs[6] == pytest.approx(2.0)  # end of phase 1
