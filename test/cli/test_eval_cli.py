"""``zoedepth eval`` on a tiny generic folder dataset, and the protocol against recomputation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from doubles import null_estimator
from tiny_data import TINY_MODEL, TinyRGBD

from zoedepth_ros.cli.main import main
from zoedepth_ros.config import apply_overrides, save_config
from zoedepth_ros.data.datasets import GenericFolder
from zoedepth_ros.evaluation.datasets import (
    EvalConfig,
    evaluate_dataset,
    evaluate_samples,
    merge_reports,
)
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io.rgbd_folder import FolderWriter
from zoedepth_ros.metrics import DepthMetrics, std_error_correlation
from zoedepth_ros.model import build_model, get_config
from zoedepth_ros.model.checkpoint import save_checkpoint


def tiny_weights(folder: Path) -> Path:
    """A seeded tiny NK checkpoint with its model YAML beside it (as bundled models are)."""
    cfg = apply_overrides(get_config('zoedepth_tiny_nk'), TINY_MODEL)
    torch.manual_seed(1)
    path = save_checkpoint(build_model(cfg), folder / 'tiny_nk.pt')
    save_config(cfg, path.with_suffix('.yaml'))
    return path


def write_folder(root: Path, count: int = 3, size: tuple[int, int] = (40, 56)) -> Path:
    rng = np.random.default_rng(0)
    (root / 'rgb').mkdir(parents=True)
    (root / 'depth').mkdir()
    for index in range(count):
        rgb = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        depth_mm = rng.integers(500, 9000, size).astype(np.uint16)
        depth_mm[:4] = 0  # invalid rows
        cv2.imwrite(str(root / 'rgb' / f'f{index}.png'), rgb[..., ::-1])
        cv2.imwrite(str(root / 'depth' / f'f{index}.png'), depth_mm)
    (root / 'dataset.yaml').write_text(yaml.safe_dump(
        {'domain': 'indoor', 'depth_scale': 0.001, 'min_depth': 1e-3, 'max_depth': 10.0}))
    (root / 'test.txt').write_text('f0\nf2\n')
    return root


def test_protocol_matches_recomputation(tmp_path: Path) -> None:
    dataset = GenericFolder(write_folder(tmp_path / 'set'), split='test')
    estimator = DepthEstimator.from_pretrained(str(tiny_weights(tmp_path)), device='cpu',
                                               preprocess='eval', flip=True)
    report = evaluate_dataset(estimator, dataset, EvalConfig(crop='garg'))
    expected = DepthMetrics(1e-3, 10.0, 'garg')
    model = estimator.model
    for index in range(len(dataset)):
        sample = dataset[index]
        image = sample['image'][None]
        size = model.cfg.img_size
        with torch.no_grad():  # stretch, flip-average raw outputs, then upsample (paper)
            raw = model(image, size=size).metric_depth
            mirrored = model(image.flip(-1), size=size).metric_depth.flip(-1)
        pred = F.interpolate((raw + mirrored) / 2, size=image.shape[-2:], mode='bilinear',
                             align_corners=True)
        expected.update(pred[0, 0], sample['depth'][0] * sample['mask'][0])
    assert report.samples == 2 and report.skipped == 0
    for key, value in expected.compute().items():
        assert report.metrics[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert report.router_accuracy in (0.0, 0.5, 1.0)
    assert sum(report.routed.values()) == 2


def test_eval_cli_writes_table_and_json(tmp_path: Path, capsys) -> None:
    root = write_folder(tmp_path / 'set')
    baseline = tmp_path / 'baseline.json'
    baseline.write_text(json.dumps({'metrics': {'a1': 0.5, 'abs_rel': 0.5, 'rmse': 3.0}}))
    output = tmp_path / 'out' / 'results.json'
    code = main(['eval', '--weights', str(tiny_weights(tmp_path)), '--dataset', 'folder', '--root',
                 str(root), '--split', 'all', '--no-flip', '--baseline', str(baseline),
                 '--device', 'cpu', '-o', str(output)])
    assert code == 0
    report = json.loads(output.read_text())
    assert report['samples'] == 3 and report['settings']['flip'] is False
    assert report['settings']['crop'] == 'none' and report['settings']['max_depth'] == 10.0
    assert set(report['metrics']) >= {'a1', 'abs_rel', 'rmse', 'silog'}
    metrics = report['metrics']
    mri = np.mean([(metrics['a1'] - 0.5) / 0.5, (0.5 - metrics['abs_rel']) / 0.5,
                   (3.0 - metrics['rmse']) / 3.0])
    assert report['mri_theta'] == pytest.approx(mri)
    printed = capsys.readouterr().out
    assert 'abs_rel' in printed and f"{metrics['abs_rel']:.4f}" in printed


def test_eval_cli_errors(tmp_path: Path) -> None:
    assert main(['eval', '--model', 'zoedepth_tiny_nk', '--dataset', 'folder', '--root',
                 str(tmp_path / 'missing')]) == 2
    root = write_folder(tmp_path / 'set')
    assert main(['eval', '--weights', str(tmp_path / 'none.pt'), '--dataset', 'folder',
                 '--root', str(root)]) == 2
    assert main(['eval', '--weights', str(tiny_weights(tmp_path)), '--dataset', 'folder',
                 '--root', str(root), '--split', 'val']) == 2  # no val.txt


def test_per_domain_scores_router_and_std_error_correlation(tmp_path: Path) -> None:
    sets = []
    for domain, seed in (('indoor', 0), ('outdoor', 1)):
        writer = FolderWriter(tmp_path / domain, domain, None, 0.001, 80.0)
        for index, item in enumerate(TinyRGBD(3, domain, size=(40, 56), seed=seed).items):
            writer.write(f'{index}', item['image'], item['depth'])
        writer.close()
        sets.append(GenericFolder(tmp_path / domain))
    estimator = DepthEstimator.from_pretrained(str(tiny_weights(tmp_path)), device='cpu')
    samples = [dataset[i] for dataset in sets for i in range(len(dataset))]
    report = evaluate_samples(estimator, samples, 1e-3, 80.0, dataset='both')
    assert set(report.per_domain) == {'indoor', 'outdoor'}
    for domain, dataset in zip(('indoor', 'outdoor'), sets):
        expected, rhos, correct = DepthMetrics(1e-3, 80.0), [], 0
        for sample in (dataset[i] for i in range(len(dataset))):
            out = estimator.predict_tensor(sample['image'][None])
            gt = sample['depth'][0] * sample['mask'][0]
            expected.update(out.depth[0, 0], gt)
            rhos.append(std_error_correlation(out.depth[0, 0], out.std[0, 0], gt, 1e-3, 80.0))
            correct += int(out.domain_index[0]) == (0 if domain == 'indoor' else 1)
        scores = report.per_domain[domain]
        assert scores['images'] == 3
        for key in ('a1', 'abs_rel', 'rmse'):
            assert scores[key] == pytest.approx(expected.compute()[key], rel=1e-5), key
        assert scores['router_accuracy'] == pytest.approx(correct / 3)
        assert scores['std_spearman'] == pytest.approx(np.nanmean(rhos), rel=1e-5)
        assert -1.0 <= scores['std_spearman'] <= 1.0
    assert report.router_accuracy == pytest.approx(np.mean(
        [report.per_domain[d]['router_accuracy'] for d in ('indoor', 'outdoor')]))
    table = report.table()
    assert 'std-error Spearman' in table and 'outdoor' in table.splitlines()[-1]


def test_eval_cli_merges_several_roots_as_one_evaluation(tmp_path: Path, capsys) -> None:
    roots = {}
    for domain, seed, top in (('indoor', 0, 10.0), ('outdoor', 1, 80.0)):
        writer = FolderWriter(tmp_path / domain, domain, None, 0.001, top)
        for index, item in enumerate(TinyRGBD(2 if domain == 'indoor' else 3, domain,
                                              size=(40, 56), seed=seed).items):
            writer.write(f'{index}', item['image'], item['depth'])
        writer.close()
        roots[domain] = tmp_path / domain
    weights = tiny_weights(tmp_path)
    output = tmp_path / 'both.json'
    assert main(['eval', '--weights', str(weights), '--dataset', 'folder', '--split', 'all',
                 '--no-flip', '--root', str(roots['indoor']), '--root', str(roots['outdoor']),
                 '-o', str(output)]) == 0
    merged = json.loads(output.read_text())
    estimator = DepthEstimator.from_pretrained(str(weights), device='cpu', preprocess='eval',
                                               flip=False)
    alone = {d: evaluate_dataset(estimator, GenericFolder(r), EvalConfig(flip=False))
             for d, r in roots.items()}
    assert merged['samples'] == 5 and merged['dataset'] == 'synth_indoor+synth_outdoor'
    # each root keeps its own range (10 m indoors, 80 m outdoors) and the averages run over
    # all five images
    assert [d['max_depth'] for d in merged['settings']['datasets']] == [10.0, 80.0]
    for key in ('a1', 'abs_rel', 'rmse'):
        expected = (2 * alone['indoor'].metrics[key] + 3 * alone['outdoor'].metrics[key]) / 5
        assert merged['metrics'][key] == pytest.approx(expected), key
        for domain, report in alone.items():
            assert merged['per_domain'][domain][key] == pytest.approx(report.metrics[key])
    routed = [alone[d].router_accuracy for d in ('indoor', 'outdoor')]
    assert merged['router_accuracy'] == pytest.approx((2 * routed[0] + 3 * routed[1]) / 5)
    printed = capsys.readouterr().out
    assert 'indoor' in printed and 'outdoor' in printed and 'router' in printed


def test_constant_std_maps_are_counted_not_hidden_in_the_mean() -> None:
    """A model whose std is the same on every pixel has no std-error rank correlation: the
    images are counted per domain and in the table, and the Spearman mean is NaN (null in
    JSON), not a number made of the other images only."""
    rng = np.random.default_rng(0)
    samples = [{'image': torch.rand(3, 24, 32), 'domain': domain,
                'depth': torch.from_numpy(rng.uniform(1.0, 5.0, (1, 24, 32)).astype(np.float32))}
               for domain in ('indoor', 'indoor', 'outdoor')]
    report = evaluate_samples(null_estimator(preset='zoedepth_tiny_nk', depth_m=2.0), samples,
                              1e-3, 80.0, dataset='flat')
    assert report.std_constant == 3 and math.isnan(report.std_spearman)
    assert {name: v['std_constant'] for name, v in report.per_domain.items()} == {
        'indoor': 2, 'outdoor': 1}
    assert '3 image(s) with a constant std map' in report.table()
    assert '(2 constant)' in report.table()
    merged = merge_reports([report, report])
    assert merged.std_constant == 6 and merged.per_domain['indoor']['std_constant'] == 4
    assert merged.per_domain['indoor']['images'] == 4
