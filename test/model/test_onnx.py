"""ONNX export: onnxruntime against torch on the tiny NK model, routing inside the graph,
forced domains, the DepthEstimator backend and the CLI.

Exports run at 64x96 (two exports, ~15-30 s on 2 shared cores); the 384x512 figures are
in benchmarks/README.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoedepth_ros.cli.main import main
from zoedepth_ros.errors import CheckpointError, ConfigError
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.model import build_model
from zoedepth_ros.model.loading import load_model
from zoedepth_ros.model.onnx import OnnxDepthModel, export_onnx

SIZE = (64, 96)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return (actual - expected).abs().max().item() / expected.abs().max().item()


CANDIDATES = torch.rand(24, 3, *SIZE, generator=torch.Generator().manual_seed(1)) ** (
    torch.linspace(0.2, 5, 24).view(24, 1, 1, 1))


@pytest.fixture(scope='module')
def model() -> torch.nn.Module:
    """Seeded tiny NK whose router sends about half of CANDIDATES to each head."""
    torch.manual_seed(0)
    nk = build_model('zoedepth_tiny_nk')
    with torch.inference_mode():
        logits = nk(CANDIDATES, size=SIZE).domain_logits
    with torch.no_grad():
        nk.router.classifier[2].bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    return nk


@pytest.fixture(scope='module')
def auto_graph(model, tmp_path_factory) -> OnnxDepthModel:
    path = export_onnx(model, tmp_path_factory.mktemp('onnx') / 'nk.onnx', *SIZE)
    return OnnxDepthModel(path)


def mixed_batch(model) -> torch.Tensor:
    """Two images the router sends to different heads (nyu first)."""
    with torch.inference_mode():
        index = model(CANDIDATES, size=SIZE).domain_index
    assert index.unique().numel() == 2, 'the router should split the candidates'
    return torch.stack([CANDIDATES[index == 0][0], CANDIDATES[index == 1][0]])


def test_onnxruntime_matches_torch_with_routing_inside_the_graph(model, auto_graph) -> None:
    images = mixed_batch(model)
    with torch.inference_mode():
        reference = model(images, size=SIZE)
    exported = auto_graph(images)
    assert exported.domain_index.tolist() == reference.domain_index.tolist() == [0, 1]
    assert relative_error(exported.metric_depth, reference.metric_depth) < 1e-3
    assert relative_error(exported.depth_std, reference.depth_std) < 1e-3
    assert relative_error(exported.domain_logits, reference.domain_logits) < 1e-3
    # Per-sample routing in the graph equals running each image alone.
    for i in range(2):
        single = auto_graph(images[i:i + 1])
        assert torch.allclose(single.metric_depth, exported.metric_depth[i:i + 1], rtol=1e-4,
                              atol=1e-6)


def test_graph_metadata_and_fixed_size(auto_graph, model) -> None:
    assert auto_graph.size == SIZE
    assert auto_graph.domains == ('nyu', 'kitti')
    assert auto_graph.cfg == model.cfg
    with pytest.raises(ConfigError, match='exported with domain=auto'):
        auto_graph(torch.rand(1, 3, *SIZE), domain='nyu')
    with pytest.raises(ConfigError, match='routes per sample'):
        auto_graph(torch.rand(1, 3, *SIZE), routing='batch')


def test_estimator_backend_matches_torch(model, auto_graph, tmp_path) -> None:
    rgb = (np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8)
    # The graph has a fixed network size: the reference runs torch at that size.
    onnx_estimator = DepthEstimator.from_pretrained(str(auto_graph.path))
    assert onnx_estimator.name == 'nk.onnx'
    got = onnx_estimator.predict(rgb)
    with torch.inference_mode():
        tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        out = model(tensor, size=SIZE)
        expected = torch.nn.functional.interpolate(out.metric_depth, size=(48, 80),
                                                   mode='bilinear', align_corners=True)
    assert got.depth_m.shape == (48, 80) and got.depth_m.dtype == np.float32
    assert np.abs(got.depth_m - expected[0, 0].numpy()).max() < 1e-3 * expected.abs().max()
    assert got.domain == ('indoor' if int(out.domain_index) == 0 else 'outdoor')
    assert abs(sum(got.domain_probs.values()) - 1) < 1e-5


def test_cli_exports_a_forced_domain_and_checks_it(model, tmp_path) -> None:
    path = tmp_path / 'outdoor.onnx'
    code = main(['export', '--onnx', str(path), '--model', 'zoedepth_tiny_nk', '--random-weights',
                 '--height', str(SIZE[0]), '--width', str(SIZE[1]), '--domain', 'outdoor'])
    assert code == 0 and path.is_file()
    graph = OnnxDepthModel(path)
    assert graph.domains == ('kitti',) and graph.outputs[-1] == 'domain_logits'
    images = torch.rand(2, 3, *SIZE, generator=torch.Generator().manual_seed(3))
    exported = graph(images, domain='kitti')  # the CLI compared it with torch already
    assert exported.domain_index.tolist() == [1, 1]
    assert torch.isfinite(exported.metric_depth).all() and exported.metric_depth.min() > 0
    estimator = DepthEstimator.from_pretrained(str(path), domain='outdoor')
    assert estimator.predict(np.zeros((32, 48, 3), np.uint8)).domain == 'outdoor'


def test_export_errors(model, auto_graph, tmp_path) -> None:
    with pytest.raises(ConfigError, match='multiples of 32'):
        export_onnx(model, tmp_path / 'x.onnx', 60, 96)
    with pytest.raises(ConfigError, match='domain'):
        export_onnx(model, tmp_path / 'x.onnx', domain='underwater')
    with pytest.raises(CheckpointError, match='zoedepth export'):
        DepthEstimator.from_pretrained(str(tmp_path / 'missing.onnx'))
    with pytest.raises(ConfigError, match='fp32'):
        DepthEstimator.from_pretrained(str(auto_graph.path), precision='fp16')
    with pytest.raises(ConfigError, match='carries its own config'):
        DepthEstimator.from_pretrained(str(auto_graph.path), config='zoedepth_tiny_nk')
    assert not list(tmp_path.glob('*.tmp'))


def test_cli_exports_a_half_precision_checkpoint_with_its_config(tmp_path) -> None:
    path = tmp_path / 'bundle' / 'small.pt'
    assert main(['export', '--checkpoint', str(path), '--half', '--model',
                 'zoedepth_small_tiny_nk', '--random-weights']) == 0
    stored = torch.load(path, weights_only=True)['model']
    floats = [v for v in stored.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert any(not v.is_floating_point() for v in stored.values())  # BatchNorm counters kept
    reloaded = load_model(str(path)).model  # config from the YAML written beside it
    original = load_model('zoedepth_small_tiny_nk', random_weights=True).model
    for name, value in original.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], value.half().to(value.dtype),
                                   rtol=0, atol=0, msg=name)
    assert main(['export', '--checkpoint', str(tmp_path / 'x.onnx'), '--model',
                 'zoedepth_tiny_nk', '--random-weights']) == 2
    with pytest.raises(SystemExit) as usage:  # no target: argparse's usage error
        main(['export', '--model', 'zoedepth_tiny_nk'])
    assert usage.value.code == 2


def test_threads_reach_the_onnxruntime_session(auto_graph) -> None:
    one = OnnxDepthModel(auto_graph.path, threads=1)
    assert one.session.get_session_options().intra_op_num_threads == 1
    assert auto_graph.session.get_session_options().intra_op_num_threads == 0  # its default
