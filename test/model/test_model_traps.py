"""Each upstream behaviour the released weights depend on (zoedepth-model.md §12), pinned."""

from __future__ import annotations

import math

import pytest
import torch

from zoedepth_ros.model import ZoeDepth, build_model, get_config, network_size
from zoedepth_ros.model.bins import (
    AttractorLayer,
    ConditionalLogBinomial,
    HeadOutput,
    LogBinomial,
    SeedBinRegressor,
    inverse_attractor,
)
from zoedepth_ros.model.encoder import resize_relative_position_table
from zoedepth_ros.model.router import route, sinusoidal_encoding


@pytest.mark.parametrize('size, keep, target, expected', [
    ((480, 640), True, (384, 512), (384, 512)),
    ((720, 1280), True, (384, 512), (384, 672)),
    ((352, 1216), True, (384, 512), (384, 1312)),
    ((300, 700), True, (384, 512), (224, 512)),
    ((1024, 768), True, (384, 512), (672, 512)),
    ((480, 640), True, (384, 768), (384, 512)),
    ((720, 1280), True, (384, 768), (448, 768)),
    ((300, 700), True, (384, 768), (320, 768)),
    ((1024, 768), True, (384, 768), (1024, 768)),
    ((300, 700), False, (384, 512), (384, 512)),
    ((256, 320), True, (384, 768), (384, 480)),
])
def test_network_size_table(size, keep, target, expected) -> None:
    """§2 worked examples: "minimal" keep-aspect resize, round-half-even to multiples of 32."""
    assert network_size(*size, target, keep) == expected


def test_attractor_strength_is_300_not_config_alpha() -> None:
    """T1: the config says 1000; the released models run d / (1 + 300 d^2)."""
    delta = torch.tensor([0.1, -0.05, 0.5])
    assert torch.allclose(inverse_attractor(delta), delta / (1 + 300 * delta**2))
    cfg = get_config('zoedepth_tiny_n')
    assert cfg.attractor_alpha == 1000.0  # accepted for compatibility, not used


def test_one_attractor_moves_a_bin_by_the_inverse_law() -> None:
    layer = AttractorLayer(2, 1, 4, 'softplus', True, 'inv', True, 1e-3, 10.0)
    with torch.no_grad():
        for param in layer.mlp.parameters():
            param.zero_()
        # Softplus(bias) = 2.0 -> the attractor sits at 2.0 everywhere.
        layer.mlp[2].bias.fill_(math.log(math.expm1(2.0)))
    state = torch.full((1, 3, 2, 2), 1.9)
    new_state, centers = layer(torch.zeros(1, 2, 2, 2), state, torch.zeros(1, 2, 1, 1))
    expected = 1.9 + 0.1 / (1 + 300 * 0.1**2)
    assert torch.allclose(new_state, torch.full_like(new_state, expected), atol=1e-6)
    assert torch.equal(new_state, centers)


def test_nk_uses_16_attractors_in_every_layer() -> None:
    """T2: the NK checkpoint has 16 attractor outputs in all 8 layers; N keeps 16, 8, 4, 1."""
    nk = build_model('zoedepth_tiny_nk')
    for head in nk.heads.values():
        assert [layer.mlp[2].out_channels for layer in head.attractors] == [16, 16, 16, 16]
    n = build_model('zoedepth_tiny_n')
    assert [layer.mlp[2].out_channels for layer in n.heads['nyu'].attractors] == [16, 8, 4, 1]


def test_normed_attractors_use_first_value_of_each_pair() -> None:
    """T3: K predicts two values per attractor and uses only the first (even channels)."""
    torch.manual_seed(1)
    layer = AttractorLayer(8, 4, 16, 'normed', True, 'inv', False, 1e-3, 80.0).eval()
    embedding, previous = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)
    state = torch.rand(1, 64, 2, 2)
    before = layer(embedding, state, previous)
    with torch.no_grad():
        layer.mlp[2].bias[1::2] += 5.0
    after = layer(embedding, state, previous)
    assert layer.mlp[2].out_channels == 8
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    centers = before[1]
    assert torch.all(centers[:, 1:] >= centers[:, :-1])
    assert centers.min() >= 1e-3 and centers.max() <= 80.0


def test_kitti_range_defaults_to_80_m_with_legacy_hub_flag() -> None:
    """T4: trained with 80 m; the original hub build silently used 10 m."""
    cfg = get_config('ZoeD_K')
    assert cfg.heads[0].name == 'kitti' and cfg.heads[0].max_depth == 80.0
    legacy = type(cfg)(**{**cfg.__dict__, 'legacy_hub_kitti_range': True})
    assert legacy.heads[0].max_depth == 10.0
    with torch.device('meta'):
        model = ZoeDepth(legacy)
    assert model.heads['kitti'].seed_regressor.max_depth == 10.0


def test_batch_routing_votes_once_per_batch() -> None:
    """T5: sum of logits over the batch decides one head; per-sample routing does not."""
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.5]])
    assert route(logits, 'sample').tolist() == [0, 1, 1]
    assert route(logits, 'batch').tolist() == [0, 0, 0]


def test_relative_position_table_resize() -> None:
    """T8: identity on the stored window; bilinear align_corners=False elsewhere, CLS rows kept."""
    table = torch.randn(2 * 24 - 1, 2 * 24 - 1, 3).reshape(-1, 3)
    table = torch.cat([table, torch.randn(3, 3)])
    assert torch.equal(resize_relative_position_table(table, 24, (24, 24)), table)
    resized = resize_relative_position_table(table, 24, (24, 32))
    assert resized.shape == ((2 * 24 - 1) * (2 * 32 - 1) + 3, 3)
    assert torch.equal(resized[-3:], table[-3:])
    grid = table[:-3].reshape(1, 47, 47, 3).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(47, 63), mode='bilinear',
                                               align_corners=False)
    assert torch.allclose(resized[:-3], expected.permute(0, 2, 3, 1).reshape(-1, 3))


def test_relative_position_index_2x3_by_hand() -> None:
    from timm.models.beit import gen_relative_position_index

    index = gen_relative_position_index((2, 3))
    total = 3 * 5 + 3
    assert index[0, 0] == total - 1 and index[0, 1] == total - 3 and index[1, 0] == total - 2
    # patch (0,0) vs (1,2): dy = -1, dx = -2 -> (-1 + 1) * 5 + (-2 + 2) = 0
    assert index[1, 6] == 0
    # patch (1,2) vs (0,0): dy = 1, dx = 2 -> 2 * 5 + 4 = 14
    assert index[6, 1] == 14


def test_relative_depth_conditioning_only_for_single_head() -> None:
    """T10: N/K log-binomial sees 32 + 1 channels (+128 embedding); NK sees 32."""
    n = build_model('zoedepth_tiny_n')
    nk = build_model('zoedepth_tiny_nk')
    assert n.heads['nyu'].log_binomial.mlp[0].in_channels == 161
    assert n.heads['nyu'].log_binomial.mlp[0].out_channels == 80
    assert nk.heads['kitti'].log_binomial.mlp[0].in_channels == 160
    assert nk.heads['kitti'].log_binomial.mlp[0].out_channels == 40


def test_router_zero_token_and_position_code() -> None:
    """T12: position 0 encodes to [0]*64 + [1]*64; sines first, then cosines."""
    code = sinusoidal_encoding(5, 128, torch.device('cpu'))
    assert torch.equal(code[0], torch.cat([torch.zeros(64), torch.ones(64)]))
    assert torch.allclose(code[3, 1], torch.sin(torch.tensor(3.0) * math.exp(-2 * math.log(1e4)
                                                                               / 128)))


def test_log_binomial_is_a_unimodal_distribution() -> None:
    """T13: probabilities sum to 1 over 64 bins and peak near q * 63."""
    transform = LogBinomial(64)
    q = torch.tensor([0.1, 0.5, 0.9]).view(3, 1, 1, 1)
    probs = transform(q, torch.full_like(q, 1.0))[:, :, 0, 0]
    assert torch.allclose(probs.sum(1), torch.ones(3), atol=1e-5)
    for row, value in zip(probs, (0.1, 0.5, 0.9)):
        peak = int(row.argmax())
        assert abs(peak - value * 63) <= 1
        assert torch.all(row[:peak].diff() >= -1e-7) and torch.all(row[peak:].diff() <= 1e-7)
    assert transform.k_idx.dtype == torch.int64
    head = ConditionalLogBinomial(4, 2, 64, 2, 0.0212, 50.0)
    out = head(torch.randn(1, 4, 3, 3), torch.randn(1, 2, 3, 3))
    assert torch.allclose(out.sum(1), torch.ones(1, 3, 3), atol=1e-5)


def test_normed_seed_centres_fill_the_range() -> None:
    seed = SeedBinRegressor(8, 64, 16, 'normed', 1e-3, 80.0)
    state, centers = seed(torch.randn(2, 8, 3, 3))
    assert centers.min() > 1e-3 and centers.max() < 80.0
    assert torch.all(centers.diff(dim=1) > 0)
    assert torch.allclose(state, (centers - 1e-3) / (80.0 - 1e-3))


def test_std_is_the_spread_of_the_bin_distribution() -> None:
    probs = torch.tensor([0.25, 0.5, 0.25]).view(1, 3, 1, 1)
    centers = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    depth = (probs * centers).sum(1, keepdim=True)
    std = HeadOutput(depth, centers, probs).std
    assert torch.allclose(std, torch.full_like(std, math.sqrt(0.5)))


def test_per_sample_routing_equals_single_images() -> None:
    torch.manual_seed(3)
    model = build_model('zoedepth_tiny_nk')
    with torch.no_grad():
        model.router.classifier[2].bias.copy_(torch.tensor([0.0, 0.0]))
    images = torch.rand(2, 3, 64, 96)
    with torch.inference_mode():
        batch = model(images, size=(64, 96))
        singles = [model(images[i:i + 1], size=(64, 96)) for i in range(2)]
        forced = model(images, domain='kitti', size=(64, 96))
    for i, single in enumerate(singles):
        assert batch.domain_index[i] == single.domain_index[0]
        torch.testing.assert_close(batch.metric_depth[i], single.metric_depth[0], rtol=1e-4,
                                   atol=1e-5)
    assert forced.domain_index.tolist() == [1, 1]
    assert batch.depth_std.shape == batch.metric_depth.shape
