"""Metrics against hand-computed cases, and the evaluation masking rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoedepth_ros.errors import InputError
from zoedepth_ros.metrics import (
    METRIC_KEYS,
    DepthMetrics,
    clamp_prediction,
    compute_errors,
    crop_mask,
    image_metrics,
    mri_theta,
    rank_correlation,
    resize_prediction,
    std_error_correlation,
    valid_mask,
)

GT = np.array([[1.0, 2.0], [4.0, 8.0]])
PRED = np.array([[1.0, 2.5], [3.0, 8.0]])


def test_two_by_two_by_hand() -> None:
    values = compute_errors(GT.ravel(), PRED.ravel())
    # ratios max(d/p, p/d): 1, 1.25 (not < 1.25), 4/3, 1
    assert values['a1'] == 0.5
    assert values['a2'] == 1.0
    assert values['a3'] == 1.0
    assert values['abs_rel'] == pytest.approx((0.5 / 2 + 1 / 4) / 4)
    assert values['sq_rel'] == pytest.approx((0.25 / 2 + 1 / 4) / 4)
    assert values['rmse'] == pytest.approx(math.sqrt((0.25 + 1.0) / 4))
    log_terms = [0.0, math.log(2 / 2.5), math.log(4 / 3), 0.0]
    assert values['rmse_log'] == pytest.approx(math.sqrt(sum(t * t for t in log_terms) / 4))
    assert values['log10'] == pytest.approx(
        (abs(math.log10(2 / 2.5)) + abs(math.log10(4 / 3))) / 4)
    errors = [-t for t in log_terms]
    mean = sum(errors) / 4
    assert values['silog'] == pytest.approx(
        100 * math.sqrt(sum(e * e for e in errors) / 4 - mean * mean))


def test_perfect_prediction_and_silog_scale_invariance() -> None:
    values = compute_errors(GT.ravel(), GT.ravel())
    assert values['a1'] == 1.0 and values['abs_rel'] == 0.0 and values['rmse'] == 0.0
    scaled = compute_errors(GT.ravel(), 2.0 * GT.ravel())
    assert scaled['silog'] == pytest.approx(0.0, abs=1e-6)
    assert scaled['a1'] == 0.0 and scaled['abs_rel'] == pytest.approx(1.0)


def test_clamp_rules() -> None:
    pred = np.array([np.nan, np.inf, -np.inf, -1.0, 0.0, 5.0, 20.0])
    out = clamp_prediction(pred, 1e-3, 10.0)
    np.testing.assert_array_equal(out, [1e-3, 10.0, 1e-3, 1e-3, 1e-3, 5.0, 10.0])
    assert np.isnan(pred[0]), 'input must not be modified'


def test_valid_mask_is_strict_and_drops_nan() -> None:
    gt = np.array([[0.0, 1e-3, 0.5], [10.0, 9.99, np.nan]])
    np.testing.assert_array_equal(valid_mask(gt, 1e-3, 10.0),
                                  [[False, False, True], [False, True, False]])


def test_eigen_crop_fixed_indices() -> None:
    mask = crop_mask(480, 640, 'eigen')
    assert mask.sum() == (471 - 45) * (601 - 41)
    assert mask[45, 41] and mask[470, 600] and not mask[44, 41] and not mask[45, 601]
    assert crop_mask(500, 700, 'eigen').sum() == mask.sum()  # fixed indices, as-is
    small = crop_mask(120, 160, 'eigen')  # scaled window: rows 11..117, columns 10..150
    rows, cols = np.flatnonzero(small.any(axis=1)), np.flatnonzero(small.any(axis=0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (11, 118, 10, 150)


def test_garg_crop_fractions() -> None:
    mask = crop_mask(375, 1242, 'garg')
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (153, 371, 44, 1197)
    with pytest.raises(InputError, match='expected one of'):
        crop_mask(4, 4, 'middle')  # type: ignore[arg-type]


def test_image_metrics_applies_clamp_mask_and_crop() -> None:
    gt = np.array([[1.0, 2.0, 0.0], [4.0, 8.0, 50.0]])
    pred = np.array([[1.0, 2.5, 7.0], [3.0, 100.0, 1.0]])  # 100 clamps to 10
    values = image_metrics(torch.from_numpy(pred)[None, None], gt, 1e-3, 10.0)
    expected = compute_errors([1.0, 2.0, 4.0, 8.0], [1.0, 2.5, 3.0, 10.0])
    assert values == pytest.approx(expected)
    assert image_metrics(pred, np.zeros_like(gt), 1e-3, 10.0) is None
    with pytest.raises(InputError, match='one \\(H, W\\) depth map'):
        image_metrics(np.zeros((2, 2, 2)), gt, 1e-3, 10.0)


def test_depth_metrics_averages_images_not_pixels() -> None:
    acc = DepthMetrics(1e-3, 10.0)
    # image 1: one pixel, REL 0.5; image 2: three pixels, REL 0
    acc.update(np.array([[3.0]]), np.array([[2.0]]))
    acc.update(np.ones((1, 3)), np.ones((1, 3)))
    assert acc.update(np.ones((2, 2)), np.zeros((2, 2))) is None
    result = acc.compute()
    assert result['abs_rel'] == pytest.approx(0.25)  # pooled would be 0.125
    assert (acc.count, acc.skipped) == (2, 1)
    assert all(math.isnan(v) for v in DepthMetrics().compute().values())
    assert set(result) == set(METRIC_KEYS)


def test_mri_theta() -> None:
    reference = {'a1': 0.8, 'abs_rel': 0.1, 'rmse': 0.4}
    target = {'a1': 0.88, 'abs_rel': 0.08, 'rmse': 0.4}
    # (0.88-0.8)/0.8 = 0.1, (0.1-0.08)/0.1 = 0.2, 0
    assert mri_theta(target, reference) == pytest.approx(0.1)
    with pytest.raises(InputError, match='missing'):
        mri_theta({'a1': 1.0}, reference)


def test_crop_windows_by_pixel() -> None:
    eigen = crop_mask(480, 640, 'eigen')
    assert eigen.sum() == (470 - 45 + 1) * (600 - 41 + 1)
    assert eigen[45, 41] and eigen[470, 600] and not eigen[44, 41] and not eigen[45, 601]
    big = crop_mask(768, 1024, 'eigen')  # applied as-is, as the original does for DIODE
    assert big.sum() == eigen.sum() and big[45, 41] and not big[471, 41]
    small = crop_mask(120, 160, 'eigen')  # scaled window for small maps
    assert small[12, 11] and not small[10, 11] and small[117, 149] and not small[118, 149]
    rows, columns = np.nonzero(crop_mask(352, 1216, 'garg'))
    assert (rows.min(), rows.max() + 1) == (143, 349)
    assert (columns.min(), columns.max() + 1) == (43, 1172)
    assert crop_mask(3, 4, 'none').all()


def test_prediction_is_resized_to_the_ground_truth() -> None:
    pred = np.array([[1.0, 3.0], [5.0, 7.0]])
    gt = np.full((3, 3), 4.0)
    resized = resize_prediction(pred, (3, 3))
    np.testing.assert_allclose(resized, [[1, 2, 3], [3, 4, 5], [5, 6, 7]], rtol=1e-6)
    values = image_metrics(pred, gt, 1e-3, 10.0)
    assert values is not None
    np.testing.assert_allclose(values['abs_rel'], np.mean(np.abs(resized - 4.0) / 4.0),
                               rtol=1e-6)


def test_rank_correlation_by_hand_with_ties() -> None:
    # ranks of a: 0, 1, 2, 3; of b with the tie averaged: 0, 2.5, 1, 2.5; centred products
    # sum to 3.0, squares to 5.0 and 4.5: rho = 3 / sqrt(22.5)
    rho = rank_correlation(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 5.0, 1.0, 5.0]))
    assert rho == pytest.approx(3.0 / math.sqrt(22.5))
    assert rank_correlation(np.arange(10.0), np.arange(10.0) ** 3) == pytest.approx(1.0)
    assert rank_correlation(np.arange(10.0), -np.arange(10.0)) == pytest.approx(-1.0)
    assert np.isnan(rank_correlation(np.arange(5.0), np.zeros(5)))  # constant: no ranking
    assert np.isnan(rank_correlation(np.arange(2.0), np.arange(2.0)))
    with pytest.raises(InputError, match='equally long'):
        rank_correlation(np.arange(3.0), np.arange(4.0))


def test_std_error_correlation_follows_where_the_errors_are() -> None:
    gt = np.linspace(1.0, 5.0, 64, dtype=np.float32).reshape(8, 8)
    error = np.random.default_rng(0).uniform(0.0, 0.5, gt.shape).astype(np.float32)
    pred = gt + error
    assert std_error_correlation(pred, error, gt, 1e-3, 10.0) == pytest.approx(1.0)
    assert std_error_correlation(pred, -error, gt, 1e-3, 10.0) == pytest.approx(-1.0)
    assert np.isnan(std_error_correlation(pred, np.zeros_like(gt), gt, 1e-3, 10.0))
