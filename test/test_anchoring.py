"""Metric anchoring against hand-computed cases: exact fits, outliers, too few samples, std
weighting, inverse-depth scale + shift, temporal smoothing, holds and jumps, per-head state,
the sample stream."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoedepth_ros.anchoring import (
    Alignment,
    Anchor,
    AnchorOptions,
    HeadAligners,
    SampleStream,
    SparseSamples,
    TemporalAligner,
    apply_alignment,
    fit_alignment,
    select_head,
    values_at,
)
from zoedepth_ros.errors import ConfigError, InputError
from zoedepth_ros.geometry import PinholeCamera


def test_global_scale_is_exact_and_outliers_are_rejected() -> None:
    predicted = np.linspace(1.0, 5.0, 20)
    fit = fit_alignment(predicted, 1.5 * predicted)
    assert (fit.scale, fit.inliers, fit.samples, fit.status) == (pytest.approx(1.5), 20, 20,
                                                                 'fit')
    assert fit.applied and fit.residual == pytest.approx(0.0, abs=1e-12)
    # six wild returns (10x, multipath / another object) do not move the scale at all
    noisy = np.concatenate([predicted, np.full(6, 2.0)])
    target = np.concatenate([1.5 * predicted, np.full(6, 20.0)])
    fit = fit_alignment(noisy, target)
    assert fit.scale == pytest.approx(1.5, rel=1e-12)
    assert (fit.samples, fit.inliers) == (26, 20)
    # invalid pairs (NaN, 0, negative) are not samples
    fit = fit_alignment(np.array([np.nan, 0.0, -1.0, *predicted]),
                        np.array([1.0, 1.0, 1.0, *(2 * predicted)]))
    assert fit.samples == 20 and fit.scale == pytest.approx(2.0)


def test_too_few_samples_is_the_identity() -> None:
    fit = fit_alignment(np.ones(5), 2 * np.ones(5))
    assert (fit.applied, fit.status, fit.samples, fit.scale) == (False, 'too few samples', 5,
                                                                 1.0)
    assert fit_alignment(np.ones(0), np.ones(0)).status == 'no samples'
    # enough samples but too few inliers: 6 agree, 6 disagree wildly (no majority)
    predicted = np.ones(12)
    target = np.array([2.0] * 6 + [9.0, 0.2, 15.0, 0.1, 30.0, 0.05])
    fit = fit_alignment(predicted, target, options=AnchorOptions(min_samples=8))
    assert not fit.applied and fit.status == 'too few samples' and fit.inliers < 8
    with pytest.raises(InputError, match='3 predictions for 2 samples'):
        fit_alignment(np.ones(3), np.ones(2))


def test_std_weights_the_samples() -> None:
    predicted = np.full(20, 2.0)
    target = np.concatenate([np.full(10, 2.4), np.full(10, 2.6)])  # ratios 1.2 and 1.3
    std = np.concatenate([np.full(10, 0.02), np.full(10, 1.0)])  # relative 0.01 and 0.5
    fit = fit_alignment(predicted, target, std)
    w_sure, w_unsure = 1 / (0.01 ** 2 + 0.05 ** 2), 1 / (0.5 ** 2 + 0.05 ** 2)
    expected = math.exp((w_sure * math.log(1.2) + w_unsure * math.log(1.3)) /
                        (w_sure + w_unsure))
    assert fit.frame_scale == pytest.approx(expected, rel=1e-12)
    plain = fit_alignment(predicted, target)
    assert plain.frame_scale == pytest.approx(math.sqrt(1.2 * 1.3))
    # the offset (log 1.249) is large against the residual spread (0.04): applied almost fully
    m, spread = math.log(plain.frame_scale), 0.5 * math.log(1.3 / 1.2)
    assert plain.residual == pytest.approx(spread)
    weight = m * m / (m * m + 4 * spread * spread)  # two residual spreads: half applied
    assert 0.88 < weight < 1 and plain.scale == pytest.approx(math.exp(weight * m))
    full = fit_alignment(predicted, target, options=AnchorOptions(evidence_weighting=False))
    assert full.scale == full.frame_scale == plain.frame_scale


def test_evidence_weighting_shrinks_offsets_small_against_the_spread() -> None:
    """Samples scattered by 10 % (log sigma) around a 3 % offset: the offset is small against
    the samples' own spread, so a few per cent of it are applied; a clean 3 % offset is applied
    in full."""
    rng = np.random.default_rng(0)
    predicted = np.linspace(1.0, 9.0, 400)
    noisy = predicted * 1.03 * np.exp(rng.normal(0.0, 0.1, 400))
    fit = fit_alignment(predicted, noisy)
    m = math.log(fit.frame_scale)
    assert abs(m - math.log(1.03)) < 0.02 and fit.residual == pytest.approx(0.09, abs=0.02)
    assert fit.scale == pytest.approx(math.exp(m * m / (m * m + 4 * fit.residual ** 2) * m))
    assert abs(math.log(fit.scale)) < 0.1 * abs(m)
    clean = fit_alignment(predicted, predicted * 1.03)
    assert clean.scale == pytest.approx(1.03, rel=1e-9)


def test_head_selection_overrules_the_router_only_on_clear_evidence() -> None:
    depth = torch.linspace(1.0, 9.0, 96).reshape(8, 12)
    mirrored = torch.flip(depth, dims=[1])
    target = (1.5 * depth).numpy()
    samples = SparseSamples.from_depth_image(target)
    anchor = Anchor(HeadAligners(), samples, 0.0)
    heads = {'indoor': (depth, None), 'outdoor': (mirrored, None)}
    assert select_head(heads, anchor, 'outdoor')[0] == 'indoor'  # clearly better
    assert select_head(heads, anchor, 'indoor')[0] == 'indoor'
    twins = {'indoor': (depth, None), 'outdoor': (depth * 1.01, None)}  # a tie
    assert select_head(twins, anchor, 'outdoor')[0] == 'outdoor'
    empty = Anchor(HeadAligners(), None, 0.0)
    assert select_head(heads, empty, 'outdoor') == ('outdoor', None)


def test_scale_and_shift_in_inverse_depth() -> None:
    predicted = np.linspace(1.0, 8.0, 40)
    a, b = 0.8, 0.05
    target = 1.0 / (a / predicted + b)
    options = AnchorOptions(mode='scale_shift')
    fit = fit_alignment(predicted, target, options=options)
    assert fit.inverse_scale == pytest.approx(a, rel=1e-9)
    assert fit.shift == pytest.approx(b, abs=1e-9)
    assert fit.inliers == 40 and fit.residual < 1e-9
    aligned, _ = apply_alignment(predicted, None, fit)
    np.testing.assert_allclose(aligned, target, rtol=1e-9)
    # a scale-only fit of the same data leaves a residual the shift removes
    assert fit_alignment(predicted, target).residual > 0.05
    # no spread in the predictions: the shift is not observable, the scale fit stands
    flat = fit_alignment(np.full(20, 2.0), np.full(20, 3.0), options=options)
    assert flat.shift == 0.0 and flat.scale == pytest.approx(1.5)


def test_apply_alignment_numpy_and_torch() -> None:
    depth = np.array([2.0, 4.0, 1.0])
    std = np.array([0.2, 0.4, 0.1])
    scaled = Alignment(scale=1.5, applied=True, status='fit')
    out, spread = apply_alignment(depth, std, scaled)
    np.testing.assert_allclose(out, [3.0, 6.0, 1.5])
    np.testing.assert_allclose(spread, [0.3, 0.6, 0.15])
    # 1/d' = 0.5/d + b with b = -0.3: 1/d' <= 0 at d = 2 (0.25 - 0.3) and d = 4 (0.125 -
    # 0.3): invalid, NaN; at d = 1, 1/d' = 0.2
    shifted = Alignment(scale=2.0, shift=-0.3, applied=True, status='fit')
    out, spread = apply_alignment(depth, std, shifted)
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == pytest.approx(1 / 0.2)
    assert spread[2] == pytest.approx(0.1 * 0.5 * (5.0 / 1.0) ** 2)
    tensor_out, tensor_spread = apply_alignment(torch.tensor(depth), torch.tensor(std), shifted)
    np.testing.assert_allclose(tensor_out.numpy(), out, equal_nan=True)
    np.testing.assert_allclose(tensor_spread.numpy(), spread, equal_nan=True)
    unchanged = apply_alignment(depth, std, Alignment())
    assert unchanged[0] is depth and unchanged[1] is std


def test_temporal_smoothing_hold_jump_and_reset() -> None:
    aligner = TemporalAligner(AnchorOptions(time_constant_s=1.0, hold_s=1.0, jump_ratio=1.5,
                                           jump_frames=3))
    predicted = np.linspace(1.0, 4.0, 30)
    first = aligner.update(fit_alignment(predicted, predicted), 10.0)
    assert first.status == 'reset' and first.scale == pytest.approx(1.0)
    second = aligner.update(fit_alignment(predicted, math.exp(0.3) * predicted), 11.0)
    assert second.status == 'fit' and second.frame_scale == pytest.approx(math.exp(0.3))
    assert math.log(second.scale) == pytest.approx((1 - math.exp(-1.0)) * 0.3)
    held = aligner.update(fit_alignment(predicted[:3], predicted[:3]), 11.5)
    assert held.status == 'held' and held.applied and held.scale == second.scale
    assert held.samples == 3
    stale = aligner.update(fit_alignment(predicted[:3], predicted[:3]), 12.5)
    assert stale.status == 'too few samples' and not stale.applied
    # a factor-3 jump is held off for two frames, then taken as the new scale
    statuses = [aligner.update(fit_alignment(predicted, 3 * predicted), t)
                for t in (13.0, 13.1, 13.2)]
    assert [s.status for s in statuses] == ['jump', 'jump', 'reset']
    assert statuses[0].scale == second.scale and statuses[0].frame_scale == pytest.approx(3.0)
    assert statuses[2].scale == pytest.approx(3.0)
    # time going backwards (a looped bag) starts afresh
    again = aligner.update(fit_alignment(predicted, 2 * predicted), 5.0)
    assert again.status == 'reset' and again.scale == pytest.approx(2.0)
    # no smoothing: every frame's fit as it is
    raw = TemporalAligner(AnchorOptions(time_constant_s=0.0))
    raw.update(fit_alignment(predicted, predicted), 0.0)
    assert raw.update(fit_alignment(predicted, 1.2 * predicted), 0.1).scale == \
        pytest.approx(1.2)


def test_samples_from_sparse_images_and_points() -> None:
    sparse = np.full((4, 6), np.nan, dtype=np.float32)
    sparse[1, 2], sparse[3, 5], sparse[0, 0] = 2.5, 7.0, 0.0  # 0 = no sample
    samples = SparseSamples.from_depth_image(sparse)
    assert len(samples) == 2
    np.testing.assert_allclose(samples.z, [2.5, 7.0])
    np.testing.assert_allclose(samples.u, [2.5 / 6, 5.5 / 6])
    assert [r.tolist() for r in samples.pixels(4, 6)] == [[1, 3], [2, 5]]
    assert [r.tolist() for r in samples.pixels(8, 12)] == [[3, 7], [5, 11]]  # 2x resolution
    depth = np.arange(8 * 12, dtype=np.float64).reshape(8, 12)
    np.testing.assert_array_equal(values_at(depth, samples), [depth[3, 5], depth[7, 11]])
    np.testing.assert_array_equal(values_at(torch.from_numpy(depth), samples),
                                  values_at(depth, samples))

    camera = PinholeCamera.from_fov(64, 48, 90.0)  # fx = 32, centre (31.5, 23.5)
    points = np.array([[0.0, 0.0, 2.0],    # straight ahead: between the centre pixels
                       [1.0, 0.5, 2.0],    # 16 px right, 8 px down
                       [0.0, 0.0, -1.0],   # behind the camera
                       [5.0, 0.0, 1.0],    # outside the image
                       [np.nan, 0.0, 1.0]])
    projected = SparseSamples.from_points(points, camera)
    assert len(projected) == 2
    rows, cols = projected.pixels(48, 64)
    assert rows.tolist() == [24, 32] and cols.tolist() == [32, 48]
    np.testing.assert_allclose(projected.z, [2.0, 2.0])


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match='off, scale or scale_shift'):
        AnchorOptions(mode='affine')
    with pytest.raises(ConfigError, match='jump_ratio > 1'):
        AnchorOptions(jump_ratio=1.0)
    with pytest.raises(ConfigError, match='min_samples >= 2'):
        AnchorOptions(min_samples=1)


def test_large_sample_sets_are_thinned_evenly() -> None:
    depth = np.full((480, 640), np.nan, dtype=np.float32)
    rng = np.random.default_rng(0)
    picked = rng.random(depth.shape) < 0.065  # ~20k samples, a ToF-like density
    depth[picked] = 2.0
    samples = SparseSamples.from_depth_image(depth)
    assert len(samples) > 19_000
    thinned = samples.thinned(4096)
    assert 4096 // 2 < len(thinned) <= 4096 and thinned.thinned(4096) is thinned
    np.testing.assert_array_equal(thinned.u, samples.u[::-(-len(samples) // 4096)])
    fit = fit_alignment(np.full(len(samples), 1.0), samples.z)
    assert fit.samples == len(thinned) and fit.scale == pytest.approx(2.0)


def test_each_routed_head_keeps_its_own_scale() -> None:
    """Indoor-routed frames fit scale 1.0, outdoor-routed ones 0.3 (the heads are off by
    different factors): each frame gets its own head's smoothed scale; a head switch is neither
    a jump nor a reset of the other head's smoothing."""
    heads = HeadAligners(AnchorOptions(time_constant_s=1.0, hold_s=1.0, jump_ratio=1.5,
                                      jump_frames=3))
    predicted = np.linspace(1.0, 4.0, 30)
    scale = {'indoor': 1.0, 'outdoor': 0.3}
    routed = ['indoor', 'indoor', 'outdoor', 'indoor', 'outdoor', 'outdoor', 'indoor']
    results = [heads.head(domain).update(fit_alignment(predicted, scale[domain] * predicted),
                                         10.0 + 0.1 * index)
               for index, domain in enumerate(routed)]
    for domain, result in zip(routed, results):
        assert result.applied and result.status in ('reset', 'fit')
        assert result.scale == pytest.approx(scale[domain], rel=1e-6)
    assert [r.status for r in results] == ['reset', 'fit', 'reset', 'fit', 'fit', 'fit', 'fit']
    # one TemporalAligner would have held 1.0 for the first outdoor frames ('jump')
    single = TemporalAligner(heads.options)
    shared = [single.update(fit_alignment(predicted, scale[d] * predicted), 10.0 + 0.1 * i)
              for i, d in enumerate(routed)]
    assert shared[2].status == 'jump' and shared[2].scale == pytest.approx(1.0)
    # run-time options reach every head; the states stay
    heads.configure(AnchorOptions(time_constant_s=0.0))
    assert heads.head('outdoor').options.time_constant_s == 0.0
    assert heads.head('indoor').current.scale == pytest.approx(1.0, rel=1e-6)
    assert sorted(heads.heads) == ['indoor', 'outdoor']


def test_sample_stream_one_nearest_rule_history_and_transform() -> None:
    """The one store of sparse inputs (node and bag eval): nearest stamp within the tolerance,
    ties to the earlier, the newest ``history`` kept; sparse depth before clouds; a cloud in
    another frame is moved by the injected transform, or reported when there is none."""
    camera = PinholeCamera(10.0, 10.0, 4.5, 4.5, 10, 10)
    stream = SampleStream(history=3)
    assert stream.nearest('depth', 100, 10) is None and len(stream) == 0
    for stamp in (400, 100, 300, 200):  # out of order, as messages may come
        stream.add_samples(stamp, SparseSamples.from_depth_image(np.full((2, 2), stamp / 100)))
    assert len(stream) == 4  # received; the oldest (100) fell out of the history
    assert stream.nearest('depth', 240, 50).z[0] == 2.0
    assert stream.nearest('depth', 260, 50).z[0] == 3.0
    assert stream.nearest('depth', 250, 50).z[0] == 2.0  # a tie goes to the earlier stamp
    assert stream.nearest('depth', 100, 50) is None
    assert stream.nearest('depth', 460, 60).z[0] == 4.0
    assert stream.nearest('depth', 461, 60) is None
    samples, foreign = stream.samples_for(310, 20, camera)
    assert foreign is None and samples.z[0] == 3.0

    moved: list[tuple[str, str | None, int]] = []

    def shift(xyz: np.ndarray, source: str, target: str | None, stamp: int) -> np.ndarray | None:
        moved.append((source, target, stamp))
        return None if source == 'unknown' else xyz + np.array([0.0, 0.0, 1.0])

    clouds = SampleStream(transform=shift)
    clouds.add_points(1000, np.array([[0.0, 0.0, 2.0]]), 'lidar', 'cam_optical')
    clouds.add_points(2000, np.array([[0.0, 0.0, 2.0]]), 'unknown', 'cam_optical')
    assert moved == [('lidar', 'cam_optical', 1000), ('unknown', 'cam_optical', 2000)]
    samples, foreign = clouds.samples_for(1000, 10, camera, 'cam_optical')
    assert foreign is None and samples.z.tolist() == [3.0]  # moved into the optical frame
    assert clouds.samples_for(2000, 10, camera, 'cam_optical') == (None, 'unknown')


def test_samples_that_see_too_little_of_the_frame_are_not_used() -> None:
    """A 1-50 m ramp with samples (at 1.3x) only where it is nearer than 5 m: they span the
    depths of under a tenth of the frame, so the fit is refused ('low coverage') and the
    smoothing holds; with min_coverage 0 the same samples give the 1.3 fit."""
    from zoedepth_ros.anchoring import frame_fit

    depth = torch.linspace(1.0, 50.0, 1200).reshape(30, 40)
    near = np.where(depth.numpy() < 5.0, 1.3 * depth.numpy(), np.nan).astype(np.float32)
    samples = SparseSamples.from_depth_image(near)
    refused = frame_fit(depth, None, samples, AnchorOptions())
    assert refused.status == 'low coverage' and not refused.applied
    assert refused.coverage < 0.15 and refused.frame_scale == pytest.approx(1.3)
    used = frame_fit(depth, None, samples, AnchorOptions(min_coverage=0.0))
    assert used.status == 'fit' and used.scale == pytest.approx(1.3)
    full = SparseSamples.from_depth_image(1.3 * depth.numpy())
    assert frame_fit(depth, None, full, AnchorOptions()).coverage > 0.99  # 1-99th pct
