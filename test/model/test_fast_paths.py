"""The inference speed-ups equal the formulas they replace (small tensors, seconds).

Each fast path is compared with a literal transcription of the original computation; the
end-to-end numbers stay pinned by test_refvectors.py and test_golden.py.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from zoedepth_ros.model import build_model
from zoedepth_ros.model.bins import (
    AttractorLayer,
    ConditionalLogBinomial,
    HeadOutput,
    LogBinomial,
    inverse_attractor,
    pixel_linear,
    pixel_mlp,
)
from zoedepth_ros.model.dpt import FusionBlock, upsample
from zoedepth_ros.model.encoder import ProjectReadout


def close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> bool:
    return (actual - expected).abs().max().item() <= rel * expected.abs().max().item() + 1e-7


def test_log_binomial_condition_is_projected_before_upsampling() -> None:
    torch.manual_seed(0)
    head = ConditionalLogBinomial(33, 16, 64, 2, 0.0212, 50.0)
    features, condition = torch.randn(2, 33, 12, 20), torch.randn(2, 16, 6, 10)
    with torch.no_grad():
        fast = head(features, condition)
        original_input = torch.cat([features, upsample(condition, (12, 20))], dim=1)
        params = head.mlp(original_input) + 1e-4
        q = params[:, 0:1] / (params[:, 0:1] + params[:, 1:2])
        t = params[:, 2:3] / (params[:, 2:3] + params[:, 3:4])
        expected = head.log_binomial_transform(q, (50.0 - 0.0212) * t + 0.0212)
    assert close(fast, expected)


def test_pixel_mlps_as_gemms_equal_the_convolutions() -> None:
    torch.manual_seed(3)
    mlp = pixel_mlp(12, 16, 5, torch.nn.Softplus())
    x = torch.randn(3, 12, 7, 9)
    expected = F.softplus(F.conv2d(F.relu(F.conv2d(x, mlp[0].weight, mlp[0].bias)),
                                   mlp[2].weight, mlp[2].bias))
    with torch.no_grad():
        for layout in (torch.contiguous_format, torch.channels_last):
            out = mlp(x.contiguous(memory_format=layout))
            assert out.is_contiguous() and close(out, expected)
        added = torch.randn(3, 16, 7, 9)
        fused = pixel_linear(x, mlp[0].weight, added.clone())
        assert close(fused, F.conv2d(x, mlp[0].weight) + added)


def test_std_with_the_product_in_place_equals_the_formula() -> None:
    probs = torch.softmax(torch.randn(2, 64, 5, 6), dim=1)
    centers, depth = torch.rand(2, 64, 5, 6) * 10, torch.rand(2, 1, 5, 6) * 10
    expected = (probs * (centers - depth) ** 2).sum(1, keepdim=True).sqrt()
    assert torch.equal(HeadOutput(depth, centers, probs).std, expected)


def test_log_binomial_rearrangement_equals_the_original_formula() -> None:
    transform = LogBinomial(64)
    q = torch.rand(2, 1, 5, 7)
    temperature = 0.0212 + 50 * torch.rand(2, 1, 5, 7) ** 3  # down to the smallest temps
    n, k, eps = torch.tensor(63.0 + 1e-7), torch.arange(64.0).view(1, -1, 1, 1) + 1e-7, 1e-7
    log_binomial = n * n.log() - k * k.log() - (n - k) * torch.log(n - k + eps)
    k_idx = torch.arange(64).view(1, -1, 1, 1)
    logits = (log_binomial + k_idx * q.clamp(1e-4, 1).log()
              + (63 - k_idx) * (1 - q).clamp(1e-4, 1).log())
    expected = torch.softmax(logits / temperature, dim=1)
    assert close(transform(q, temperature), expected, rel=1e-4)


def test_fused_attractor_loop_equals_the_plain_loop() -> None:
    torch.manual_seed(1)
    layer = AttractorLayer(8, 16, 8, 'softplus', True, 'inv', True, 1e-3, 10.0)
    embedding, previous = torch.randn(1, 8, 6, 8), torch.randn(1, 8, 3, 4)
    state = torch.rand(1, 64, 3, 4) * 5
    with torch.no_grad():
        new_state, _ = layer(embedding, state, previous)
        attractors = layer.mlp(embedding + upsample(previous, (6, 8)))
        grown = upsample(state, (6, 8))
        delta = sum(inverse_attractor(attractors[:, i:i + 1] - grown) for i in range(16)) / 16
    assert close(new_state, grown + delta)


def test_fusion_block_projects_before_resizing() -> None:
    torch.manual_seed(2)
    block = FusionBlock(8)
    x, skip = torch.randn(1, 8, 5, 7), torch.randn(1, 8, 5, 7)
    with torch.no_grad():
        fast = block(x, skip, torch.Size((9, 13)))
        refined = block.main_unit(x + block.skip_unit(skip))
        expected = block.out_conv(upsample(refined, (9, 13)))
    assert close(fast, expected)


def test_readout_splits_the_cls_half_of_the_projection() -> None:
    torch.manual_seed(3)
    readout = ProjectReadout(16)
    tokens = torch.randn(2, 1 + 12, 16)
    with torch.no_grad():
        patches = tokens[:, 1:]
        expected = readout.project(torch.cat([patches, tokens[:, :1].expand_as(patches)], -1))
        assert close(readout(tokens), expected)


def test_sdpa_attention_matches_explicit_softmax_attention() -> None:
    torch.manual_seed(4)
    model = build_model('zoedepth_tiny_n')
    image = torch.rand(1, 3, 64, 96)
    assert model.encoder.sdpa  # the default
    with torch.inference_mode():
        fused = model.encoder.forward_tokens(model.prepare(image, size=(64, 96)))
        model.encoder.sdpa = False
        explicit = model.encoder.forward_tokens(model.prepare(image, size=(64, 96)))
    for a, b in zip(fused, explicit):
        assert close(a, b)


def test_bias_cache_follows_weights_loaded_in_place() -> None:
    torch.manual_seed(5)
    model = build_model('zoedepth_tiny_n')
    prepared = model.prepare(torch.rand(1, 3, 64, 96), size=(64, 96))
    with torch.inference_mode():
        before = model.encoder.forward_tokens(prepared)[-1]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key in state:
        if key.endswith('relative_position_bias_table'):
            state[key] = torch.randn_like(state[key])
    model.load_state_dict(state)  # in place: the cached biases are now stale
    fresh = build_model('zoedepth_tiny_n')
    fresh.load_state_dict(state)
    with torch.inference_mode():
        after = model.encoder.forward_tokens(prepared)[-1]
        expected = fresh.encoder.forward_tokens(prepared)[-1]
    assert (after - before).abs().max() > 1e-3
    assert torch.equal(after, expected)
    with torch.inference_mode():  # parameters copied here are inference tensors (no version)
        copied = copy.deepcopy(fresh)
        assert torch.equal(copied.encoder.forward_tokens(prepared)[-1], expected)
        assert torch.equal(copied.encoder.forward_tokens(prepared)[-1], expected)


def test_routed_head_only_matches_both_heads_selected() -> None:
    torch.manual_seed(6)
    model = build_model('zoedepth_tiny_nk')
    image = torch.rand(2, 3, 64, 96)
    with torch.inference_mode():
        routed = model(image, size=(64, 96))
        nyu = model(image, size=(64, 96), domain='nyu')
        kitti = model(image, size=(64, 96), domain='kitti')
    pick = routed.domain_index.view(-1, 1, 1, 1).bool()
    assert torch.allclose(routed.metric_depth, torch.where(pick, kitti.metric_depth,
                                                           nyu.metric_depth), atol=1e-6)
    assert F.softmax(routed.domain_logits, 1).argmax(1).tolist() == routed.domain_index.tolist()


def test_a_batch_routed_to_both_heads_runs_each_head_on_its_own_images() -> None:
    """Indoor and outdoor images in one batch (two cameras): each head runs on the images
    routed to it only, and every image gets what it gets alone."""
    from pathlib import Path

    import cv2
    import numpy as np

    from zoedepth_ros.model.loading import load_model

    samples = Path(__file__).resolve().parents[2] / 'zoedepth_ros' / 'assets' / 'samples'
    files = [samples / 'indoor' / 'rgb' / 'indoor_000000.png',
             samples / 'outdoor' / 'rgb' / 'outdoor_000000.png',
             samples / 'indoor' / 'rgb' / 'indoor_000001.png']
    rgb = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    image = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255.0
    model = load_model('zoedepth_demo_nk').torch_model().eval()
    calls: dict[str, list[int]] = {'nyu': [], 'kitti': []}
    for name, head in model.heads.items():
        head.register_forward_pre_hook(
            lambda module, args, name=name: calls[name].append(int(args[0].shape[0])))
    with torch.inference_mode():
        batched = model(image)
        assert batched.domain_index.tolist() == [0, 1, 0]
        assert calls == {'nyu': [2], 'kitti': [1]}
        for index in range(3):
            alone = model(image[index:index + 1])
            torch.testing.assert_close(batched.metric_depth[index], alone.metric_depth[0],
                                       rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(batched.depth_std[index], alone.depth_std[0],
                                       rtol=1e-4, atol=1e-5)
