"""Files of a bag evaluation: metrics.json, per_frame.csv, report.md and PNG plots.

Everything goes into one directory the caller provides (``zoedepth bag eval`` uses a staging
directory it renames into place at the end). Plots use matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import csv
import io
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoedepth_ros import __version__
from zoedepth_ros.evaluation.bags import BagEvalReport, metric_row
from zoedepth_ros.io.atomic import write_json, write_text
from zoedepth_ros.metrics import METRIC_KEYS

PLOTS = {'error_vs_depth': 'plots/error_vs_depth.png',
         'over_time': 'plots/delta1_rel_over_time.png',
         'histogram': 'plots/error_histogram.png',
         'domain': 'plots/domain_over_time.png'}
ALIGNMENT_PLOT = 'plots/alignment_scale.png'
ALIGNMENT_COLUMNS = ('scale', 'frame_scale', 'coverage', 'samples', 'inliers', 'status')


@dataclass
class SamplePanel:
    """One frame shown as RGB | ground truth | prediction | error | std (all at GT size)."""

    index: int
    rgb: np.ndarray
    gt_m: np.ndarray
    pred_m: np.ndarray
    std_m: np.ndarray
    domain: str


def write_report(report: BagEvalReport, directory: Path, samples: list[SamplePanel]) -> None:
    """Write every file of the evaluation into ``directory``."""
    # matplotlib loads only when a report is drawn, and picks the screen-less backend first.
    import matplotlib

    matplotlib.use('Agg')
    (directory / 'plots').mkdir(parents=True, exist_ok=True)
    write_json(directory / 'metrics.json', report.to_dict())
    write_text(directory / 'per_frame.csv', per_frame_csv(report))
    plot_error_vs_depth(report.pixel_stats, f'Relative error vs depth ({report.model})',
                        directory / PLOTS['error_vs_depth'])
    _plot_over_time(report, directory / PLOTS['over_time'])
    plot_histogram(report.pixel_stats, directory / PLOTS['histogram'])
    _plot_domain(report, directory / PLOTS['domain'])
    if report.unaligned:
        _plot_alignment(report, directory / ALIGNMENT_PLOT)
    names = [_plot_sample(sample, report, directory) for sample in samples]
    write_text(directory / 'report.md', report_markdown(report, names))


def per_frame_csv(report: BagEvalReport) -> str:
    """One row per colour frame: stamp, pairing, router choice, metrics, model time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    anchored = bool(report.unaligned)
    extra = ([f'unaligned_{k}' for k in METRIC_KEYS] +
             [f'alignment_{k}' for k in ALIGNMENT_COLUMNS]) if anchored else []
    writer.writerow(['index', 'stamp_ns', 'paired', 'depth_offset_ms', 'domain', 'domain_prob',
                     'routed_domain', 'valid_pixels', *METRIC_KEYS, 'model_ms', *extra])
    for r in report.frames:
        offset = '' if r.depth_offset_ms is None else f'{r.depth_offset_ms:.3f}'
        row = [r.index, r.stamp_ns, int(r.paired), offset, r.domain, f'{r.domain_prob:.4f}',
               r.routed_domain, r.valid_pixels, *metric_row(r.metrics), f'{r.model_ms:.2f}']
        if anchored:
            fit = r.alignment or {}
            row += [*metric_row(r.unaligned), *(
                f'{fit[k]:.6g}' if isinstance(fit.get(k), float) else fit.get(k, '')
                for k in ALIGNMENT_COLUMNS)]
        writer.writerow(row)
    return buffer.getvalue()


def _table(rows: list[tuple[str, dict]]) -> list[str]:
    lines = ['| | frames | ' + ' | '.join(METRIC_KEYS) + ' |',
             '|---|---:|' + '---:|' * len(METRIC_KEYS)]
    for label, values in rows:
        cells = ' | '.join(f'{values[k]:.4f}' for k in METRIC_KEYS)
        lines.append(f'| {label} | {values.get("frames", "")} | {cells} |')
    return lines


def _versions() -> str:
    return (f'zoedepth_ros {__version__}, python {platform.python_version()}, torch '
            f'{torch.__version__}, numpy {np.__version__}, rosbags '
            f'{metadata.version("rosbags")}')


def camera_line(report: BagEvalReport) -> str:
    """Where the intrinsics came from (sparse clouds, the focal correction and the output
    bag's CameraInfo and clouds use them), for the console and report.md."""
    camera = report.camera
    topic, source, count = (camera.get('camera_info_topic'), camera.get('source'),
                            camera.get('assumed_fov_frames', 0))
    assumed = (f"ASSUMED a {camera.get('fov_deg')} degree horizontal field of view "
               '(square pixels, centred principal point; --fov sets it)')
    if topic is None:
        return f'intrinsics: {assumed} for all {count} frames: {source}'
    if count:
        return (f'intrinsics: CameraInfo from {topic} ({source}); {assumed} for {count} '
                'frames without one')
    return f'intrinsics: CameraInfo from {topic} ({source})'


def report_markdown(report: BagEvalReport, sample_files: list[str]) -> str:
    """The human-readable summary (report.md)."""
    data = report.to_dict()
    settings = report.settings
    overall = {'frames': report.evaluated, **report.overall}
    lines = [f'# Bag evaluation: {Path(report.bag).name}', '',
             f'- bag: `{report.bag}`', f'- model: `{report.model}`',
             f'- frames: {data["frames"]} colour frames, {data["paired"]} paired with ground '
             f'truth, {data["unpaired"]} unpaired, {data["no_valid_pixels"]} without valid '
             'ground truth pixels',
             f'- time: {report.seconds:.1f} s ({report.frames_per_s:.2f} frames/s)',
             f'- protocol: depth {settings["min_depth"]}..{settings["max_depth"]} m, crop '
             f'{settings["crop"]}, prediction resized bilinearly (align_corners=True) to the '
             'ground-truth size, metrics per image averaged over images',
             f'- topics: {settings["topics"]}', f'- {camera_line(report)}',
             f'- versions: {_versions()}']
    if report.out_bag:
        lines.append(f'- output bag: `{report.out_bag}`')
    title = '## Overall'
    if report.unaligned:
        title = f'## Overall, anchored to `{settings["sparse_topic"]}`'
        lines += ['', *_alignment_section(report)]
    lines += ['', title, '', *_table([('all', overall)]), '',
              '## By router domain', '',
              *_table([(name, values) for name, values in report.per_domain.items()]), '',
              '## By ground-truth depth range (each image on its pixels in the range)', '',
              *_table([(f'{r["low_m"]:.3g}-{r["high_m"]:.3g} m', r) for r in report.per_range]),
              '', '## Plots', '']
    lines += [f'![{name}]({path})' for name, path in PLOTS.items()]
    lines += [f'![sample]({name})' for name in sample_files]
    return '\n'.join(lines) + '\n'


def _number(fit: Mapping[str, float | str], key: str) -> float:
    """A numeric field of a frame's alignment record (``status`` is its one string)."""
    value = fit[key]
    assert not isinstance(value, str), key
    return value


def _alignment_section(report: BagEvalReport) -> list[str]:
    """Summary of the alignment and the tables with and without it."""
    settings, anchor = report.settings, report.settings['frame']['anchor']
    fits = [r.alignment for r in report.frames if r.alignment is not None]
    overruled = sum(r.domain != r.routed_domain for r in report.frames)
    applied = [f for f in fits if f['status'] in ('fit', 'reset', 'held', 'jump')]
    scales = np.array([f['scale'] for f in applied], dtype=float)
    inliers = np.array([_number(f, 'inliers') / max(_number(f, 'samples'), 1) for f in fits
                        if f['samples']])
    raw = report.unaligned
    unaligned_overall = {'frames': report.evaluated, **raw['overall']}
    aligned_overall = {'frames': report.evaluated, **report.overall}
    lines = ['## Metric anchoring', '',
             f'- sparse topic `{settings["sparse_topic"]}` (tolerance '
             f'{anchor["sync_tolerance_s"]} s), mode {anchor["mode"]}, '
             f'smoothing {anchor["time_constant_s"]} s, head selection '
             f'{anchor["head_selection"]} ({overruled} of {len(report.frames)} frames served by '
             'the head the router did not choose)',
             f'- {len(applied)} of {len(fits)} frames corrected'
             + (f'; scale median {np.median(scales):.4f} (range {scales.min():.4f}..'
                f'{scales.max():.4f})' if scales.size else '')
             + (f'; inlier share mean {inliers.mean():.3f}' if inliers.size else ''),
             '', '| | frames | ' + ' | '.join(METRIC_KEYS) + ' |',
             '|---|---:|' + '---:|' * len(METRIC_KEYS)]
    for label, values in (('without alignment', unaligned_overall),
                          ('with alignment', aligned_overall)):
        lines += _table([(label, values)])[2:]
    lines += ['', '### Without alignment, by router domain', '',
              *_table(list(raw['per_domain'].items())), '',
              f'![alignment scale]({ALIGNMENT_PLOT})']
    return lines


def _plot_alignment(report: BagEvalReport, path: Path) -> None:
    import matplotlib.pyplot as plt

    times = _times(report)
    fits = [r.alignment or {} for r in report.frames]
    applied = [f.get('status') in ('fit', 'reset', 'held', 'jump') for f in fits]
    scale = [f['scale'] if ok else np.nan for f, ok in zip(fits, applied)]
    frame_scale = [f.get('frame_scale', np.nan) for f in fits]
    share = [_number(f, 'inliers') / _number(f, 'samples') if f.get('samples') else np.nan
             for f in fits]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 4.2), sharex=True)
    top.plot(times, frame_scale, '.', color='tab:grey', label="frame's own fit")
    top.plot(times, scale, '-', color='tab:blue', label='applied (smoothed)')
    top.axhline(1.0, color='black', linewidth=0.5)
    top.set_ylabel('depth scale')
    top.legend(loc='best', fontsize=8)
    bottom.plot(times, share, '.-', color='tab:green')
    bottom.set_ylabel('inlier share')
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_xlabel('time since first frame (s, header stamps)')
    top.set_title('Metric anchoring: fitted scale over time')
    figure.tight_layout()
    figure.savefig(path, dpi=100, format='png')
    plt.close(figure)


def _times(report: BagEvalReport) -> np.ndarray:
    stamps = np.array([r.stamp_ns for r in report.frames], dtype=np.int64)
    return (stamps - stamps.min()) * 1e-9 if len(stamps) else stamps.astype(float)


def plot_error_vs_depth(stats: Mapping[str, Any], title: str, path: Path) -> None:
    """REL per ground-truth depth bin, over the pixel count per bin (``pixel_stats``)."""
    import matplotlib.pyplot as plt

    edges = np.array(stats['depth_edges_m'])
    centers = np.sqrt(edges[:-1] * edges[1:])
    rel = np.array(stats['abs_rel_by_depth'], dtype=float)  # None (empty bin) -> nan
    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    axis.plot(centers, rel, 'o-', label='mean |d - gt| / gt')
    axis.set_xscale('log')
    axis.set_xlabel('ground-truth depth (m)')
    axis.set_ylabel('REL')
    twin = axis.twinx()
    twin.bar(centers, stats['pixels_by_depth'], width=np.diff(edges), alpha=0.2, color='grey')
    twin.set_ylabel('pixels')
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100, format='png')
    plt.close(figure)


def _plot_over_time(report: BagEvalReport, path: Path) -> None:
    import matplotlib.pyplot as plt

    times = _times(report)
    a1 = [np.nan if r.metrics is None else r.metrics['a1'] for r in report.frames]
    rel = [np.nan if r.metrics is None else r.metrics['abs_rel'] for r in report.frames]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 4.2), sharex=True)
    top.plot(times, a1, '.-', color='tab:green')
    top.set_ylabel('delta1')
    top.set_ylim(-0.02, 1.02)
    bottom.plot(times, rel, '.-', color='tab:red')
    bottom.set_ylabel('REL')
    bottom.set_xlabel('time since first frame (s, header stamps)')
    top.set_title('Per-frame delta1 and REL (gaps: frames without ground truth)')
    figure.tight_layout()
    figure.savefig(path, dpi=100, format='png')
    plt.close(figure)


def plot_histogram(stats: Mapping[str, Any], path: Path) -> None:
    """Share of valid pixels per signed relative error bin (``pixel_stats``)."""
    import matplotlib.pyplot as plt

    edges = np.array(stats['error_edges'])
    counts = np.array(stats['error_histogram'], dtype=float)
    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    axis.bar(edges[:-1], counts / max(counts.sum(), 1.0), width=np.diff(edges), align='edge')
    axis.set_xlabel('(prediction - gt) / gt  (clipped to [-1, 1])')
    axis.set_ylabel('share of valid pixels')
    axis.set_title('Signed relative error, all evaluated pixels')
    figure.tight_layout()
    figure.savefig(path, dpi=100, format='png')
    plt.close(figure)


def _plot_domain(report: BagEvalReport, path: Path) -> None:
    import matplotlib.pyplot as plt

    times = _times(report)
    outdoor = [r.domain == 'outdoor' for r in report.frames]
    prob = [r.domain_prob if r.domain == 'outdoor' else 1.0 - r.domain_prob
            for r in report.frames]
    figure, axis = plt.subplots(figsize=(6.4, 2.8))
    axis.step(times, outdoor, where='mid', label='chosen head (1 = outdoor)')
    axis.plot(times, prob, '.', label='p(outdoor)')
    axis.set_yticks([0, 1], ['indoor', 'outdoor'])
    axis.set_ylim(-0.1, 1.45)
    axis.set_xlabel('time since first frame (s)')
    axis.legend(loc='upper center', ncols=2, fontsize=8)
    axis.set_title('Router domain over time')
    figure.tight_layout()
    figure.savefig(path, dpi=100, format='png')
    plt.close(figure)


def _plot_sample(sample: SamplePanel, report: BagEvalReport, directory: Path) -> str:
    import matplotlib.pyplot as plt

    high = float(report.settings['max_depth'])
    valid = np.isfinite(sample.gt_m) & (sample.gt_m > 0)
    error = np.where(valid, sample.pred_m - sample.gt_m, np.nan)
    limit = float(np.nanmax(np.abs(error))) if valid.any() else 1.0
    top = min(high, float(np.nanmax(sample.gt_m)) if valid.any() else high)
    panels: list[tuple[str, np.ndarray, dict[str, Any]]] = [  # title, image, imshow keywords
        ('RGB', sample.rgb, {}),
        ('ground truth (m)', sample.gt_m, {'cmap': 'turbo_r', 'vmin': 0, 'vmax': top}),
        (f'prediction ({sample.domain})', sample.pred_m,
         {'cmap': 'turbo_r', 'vmin': 0, 'vmax': top}),
        ('error (m)', error, {'cmap': 'coolwarm', 'vmin': -limit, 'vmax': limit}),
        ('std (m)', sample.std_m, {'cmap': 'magma'})]
    figure, axes = plt.subplots(1, 5, figsize=(15, 2.8))
    for axis, (title, image, style) in zip(axes, panels):
        shown = axis.imshow(image, **style)
        axis.set_title(title, fontsize=9)
        axis.axis('off')
        if style:
            figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02)
    figure.suptitle(f'frame {sample.index}', fontsize=9)
    figure.tight_layout()
    name = f'plots/sample_{sample.index:05d}.png'
    figure.savefig(directory / name, dpi=90)
    plt.close(figure)
    return name
