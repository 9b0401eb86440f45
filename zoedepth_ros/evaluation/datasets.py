"""Evaluate a depth estimator on a dataset with the ZoeDepth protocol.

Protocol: the image is stretched to the model's training resolution, optionally averaged with
the prediction of its mirror image, upsampled bilinearly (align_corners=True) to the
ground-truth size, clamped to [min_depth, max_depth]; valid pixels satisfy
min_depth < gt < max_depth inside the dataset's crop; metrics are computed per image and
averaged over images. With a router (NK models) and labelled samples the report also gives the
router's accuracy. Everything runs through :class:`~zoedepth_ros.inference.DepthEstimator`
with ``preprocess='eval'``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from zoedepth_ros.errors import ConfigError, InputError
from zoedepth_ros.io.atomic import write_json
from zoedepth_ros.metrics import (
    METRIC_KEYS,
    Crop,
    DepthMetrics,
    mri_theta,
    std_error_correlation,
)
from zoedepth_ros.model.router import DOMAIN_NAMES, domain_index

if TYPE_CHECKING:
    from zoedepth_ros.inference import DepthEstimator


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run (``config/eval/*.yaml``); command-line flags override it."""

    dataset: Literal['nyu', 'kitti', 'diode_indoor', 'diode_outdoor', 'folder'] = 'folder'
    split: str | None = 'test'
    """Generic folder: split file stem (None = every image)."""
    split_file: str | None = None
    """NYU / KITTI: the BTS-style list of test pairs."""
    crop: Literal['auto', 'eigen', 'garg', 'none'] = 'auto'
    """'auto' = the dataset's own crop (NYU Eigen, KITTI Garg, folder: its dataset.yaml)."""
    min_depth: float = 0.0
    """Evaluation range in metres; 0 = the dataset's."""
    max_depth: float = 0.0
    flip: bool = True
    """Average with the mirror image's prediction, as the paper's evaluation."""
    domain: Literal['auto', 'indoor', 'outdoor'] = 'auto'
    """Head of an NK model: the router's choice or a forced one."""
    batch_size: int = 1
    max_samples: int = 0
    """Evaluate only the first N samples (0 = all)."""
    device: str = 'auto'
    precision: Literal['fp32', 'fp16', 'bf16'] = 'fp32'

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_samples < 0:
            raise ConfigError('batch_size must be >= 1 and max_samples >= 0')
        if self.max_depth and not 0 <= self.min_depth < self.max_depth:
            raise ConfigError(f'need min_depth < max_depth, got {self.min_depth}, '
                              f'{self.max_depth}')


COUNT_KEYS = ('images', 'std_constant')
"""Per-domain entries that add up when reports merge (the others are image-weighted means)."""


@dataclass
class EvalReport:
    """Results of one evaluation.

    Attributes:
        model: estimator name.
        dataset: dataset name.
        samples: images that entered the averages.
        skipped: images without any valid pixel.
        metrics: per-image averages of every key of ``metrics.METRIC_KEYS``.
        router_accuracy: share of labelled images routed to their own domain (NK only).
        routed: images per chosen domain.
        std_spearman: mean over images of the rank correlation between the predicted std
            and the absolute error (does the uncertainty point at the errors?); images with
            a constant std map have no rank correlation and are left out of the mean.
        std_constant: images whose std map is constant over the valid pixels.
        per_domain: per labelled domain ('indoor'/'outdoor'): images, a1, abs_rel, rmse,
            router_accuracy (NK only), std_spearman and std_constant.
        seconds: wall time.
        settings: crop, depth range, flip and the rest of the resolved configuration.
        mri_theta: mean relative improvement over a baseline, when one was given.
    """

    model: str
    dataset: str
    samples: int
    skipped: int
    metrics: dict[str, float]
    router_accuracy: float | None = None
    routed: dict[str, int] = field(default_factory=dict)
    std_spearman: float = math.nan
    std_constant: int = 0
    per_domain: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    mri_theta: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The metrics as text: a summary line, a header and values line, one line per domain."""
        keys = list(METRIC_KEYS)
        header = ' '.join(f'{k:>9}' for k in keys)
        values = ' '.join(f'{self.metrics[k]:9.4f}' for k in keys)
        extra = f'{self.samples} images ({self.skipped} without valid pixels)'
        if self.router_accuracy is not None:
            extra += f', router accuracy {self.router_accuracy:.4f}'
        extra += f', std-error Spearman {self.std_spearman:.3f}'
        if self.std_constant:
            extra += f' ({self.std_constant} image(s) with a constant std map)'
        if self.mri_theta is not None:
            extra += f', mRI_theta {100 * self.mri_theta:+.2f}%'
        rows = [f'  {name:8s} {v["images"]:5.0f} images: delta1 {v["a1"]:.4f}  REL '
                f'{v["abs_rel"]:.4f}  RMSE {v["rmse"]:.4f}  std-error Spearman '
                f'{v["std_spearman"]:.3f}' + (f' ({v["std_constant"]:.0f} constant)'
                                             if v.get('std_constant') else '')
                + (f'  router {v["router_accuracy"]:.4f}' if 'router_accuracy' in v else '')
                for name, v in self.per_domain.items()]
        return '\n'.join([f'{self.model} on {self.dataset}: {extra}', header, values, *rows])


def save_report(report: EvalReport, path: Any) -> None:
    """Write the report as JSON (atomically)."""
    write_json(path, report.to_dict())


def load_baseline(path: Any) -> dict[str, float]:
    """Metrics of a baseline: a report JSON (``metrics`` section) or a flat metric mapping."""
    try:
        data = json.loads(open(path).read())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f'cannot read baseline results {path}: {err}') from None
    values = data.get('metrics', data) if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise InputError(f'{path}: expected a JSON object with metric values')
    # null: a metric that was undefined (NaN) when written
    return {k: math.nan if v is None else float(v) for k, v in values.items() if k in METRIC_KEYS}


def _batches(samples: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Any]]:
    group: list[Any] = []
    for sample in samples:
        if group and (len(group) == size or tuple(group[0]['image'].shape)
                      != tuple(sample['image'].shape)):
            yield group
            group = []
        group.append(sample)
    if group:
        yield group


@dataclass
class _DomainScores:
    """Accumulators of one labelled domain (or of everything)."""

    metrics: DepthMetrics
    router: list[int] = field(default_factory=lambda: [0, 0])
    spearman: list[float] = field(default_factory=list)

    def summary(self, has_router: bool) -> dict[str, float]:
        values = self.metrics.compute()
        out = {'images': float(self.metrics.count), 'a1': values['a1'],
               'abs_rel': values['abs_rel'], 'rmse': values['rmse'],
               'std_spearman': _mean(self.spearman),
               'std_constant': float(sum(not math.isfinite(v) for v in self.spearman))}
        if has_router and self.router[1]:
            out['router_accuracy'] = self.router[0] / self.router[1]
        return out


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def evaluate_samples(estimator: DepthEstimator, samples: Iterable[Mapping[str, Any]],
                     min_depth: float, max_depth: float, crop: Crop = 'none',
                     batch_size: int = 1, dataset: str = '',
                     settings: Mapping[str, Any] | None = None) -> EvalReport:
    """Run ``estimator`` over samples and average the per-image metrics.

    Args:
        estimator: a ``DepthEstimator`` set up with ``preprocess='eval'`` (and ``flip``).
        samples: dataset samples: 'image' (3, H, W) float in [0, 1], 'depth' (1, H, W)
            metres (0 invalid), optional 'mask' (1, H, W) bool and 'domain' label.
        min_depth: evaluation range in metres (exclusive bounds for the ground truth).
        max_depth: see ``min_depth``.
        crop: evaluation crop (see ``metrics.crop_mask``).
        batch_size: images per forward pass (consecutive images of equal size).
        dataset: name for the report.
        settings: extra entries recorded in the report.
    """
    start = time.perf_counter()
    overall = _DomainScores(DepthMetrics(min_depth, max_depth, crop))
    domains: dict[str, _DomainScores] = {}
    routed = dict.fromkeys(DOMAIN_NAMES, 0)
    has_router = getattr(estimator.model, 'router', None) is not None
    for group in _batches(samples, batch_size):
        rgb = torch.stack([s['image'] for s in group]).to(estimator.device)
        out = estimator.predict_tensor(rgb)
        assert out.std is not None  # predict_tensor computes it by default
        depth, spread = out.depth.float().cpu(), out.std.float().cpu()
        for index, sample in enumerate(group):
            gt = sample['depth'].reshape(depth.shape[-2:]).float()
            if 'mask' in sample:
                gt = torch.where(sample['mask'].reshape(gt.shape), gt, torch.zeros_like(gt))
            chosen = int(out.domain_index[index])
            routed[DOMAIN_NAMES[chosen]] += 1
            label = domain_index(sample.get('domain'))
            scores = [overall] + ([domains.setdefault(DOMAIN_NAMES[label], _DomainScores(
                DepthMetrics(min_depth, max_depth, crop)))] if label >= 0 else [])
            if overall.metrics.update(depth[index, 0], gt) is None:
                continue
            rho = std_error_correlation(depth[index, 0], spread[index, 0], gt, min_depth,
                                        max_depth, crop)
            for score in scores:
                if score is not overall:
                    score.metrics.update(depth[index, 0], gt)
                score.spearman.append(rho)
                if label >= 0:
                    score.router[0] += int(label == chosen)
                    score.router[1] += 1
    summary = overall.summary(has_router)
    return EvalReport(
        model=getattr(estimator, 'name', ''), dataset=dataset, samples=overall.metrics.count,
        skipped=overall.metrics.skipped, metrics=overall.metrics.compute(),
        router_accuracy=summary.get('router_accuracy'), routed=routed,
        std_spearman=summary['std_spearman'], std_constant=int(summary['std_constant']),
        per_domain={name: domains[name].summary(has_router) for name in sorted(domains)},
        seconds=time.perf_counter() - start,
        settings={'min_depth': min_depth, 'max_depth': max_depth, 'crop': crop,
                  **(settings or {})})


def resolve_protocol(cfg: EvalConfig, dataset: Any) -> tuple[float, float, Crop]:
    """(min_depth, max_depth, crop) from the config, falling back to the dataset's own."""
    info = getattr(dataset, 'info', None)
    low = cfg.min_depth or float(getattr(info, 'min_depth_m', 1e-3))
    high = cfg.max_depth or float(getattr(info, 'max_depth_m', 10.0))
    crop: Crop = (getattr(info, 'eval_crop', None) or 'none') if cfg.crop == 'auto' else (
        cfg.crop)
    if not 0 <= low < high:
        raise ConfigError(f'evaluation range {low}..{high} m is empty; set min/max_depth')
    return low, high, crop


def evaluate_dataset(estimator: DepthEstimator, dataset: Any, cfg: EvalConfig,
                     wrap: Callable[[Iterable[Any], int], Iterable[Any]] | None = None
                     ) -> EvalReport:
    """Evaluate on a dataset of the data package (or any indexable of samples).

    Args:
        estimator: a ``DepthEstimator`` with ``preprocess='eval'``.
        dataset: indexable samples with an ``info`` (DatasetInfo) attribute.
        cfg: the evaluation settings.
        wrap: optional callable wrapping the sample iterable (e.g. a progress bar).
    """
    low, high, crop = resolve_protocol(cfg, dataset)
    count = len(dataset) if not cfg.max_samples else min(cfg.max_samples, len(dataset))
    samples: Iterable[Any] = (dataset[i] for i in range(count))
    if wrap is not None:
        samples = wrap(samples, count)
    name = getattr(getattr(dataset, 'info', None), 'name', cfg.dataset)
    settings = {'flip': cfg.flip, 'domain': cfg.domain, 'split': cfg.split,
                'preprocess': 'eval (stretch to training size, bilinear align_corners=True)'}
    return evaluate_samples(estimator, samples, low, high, crop, cfg.batch_size, name,
                            settings)


def _weighted(pairs: list[tuple[float, float]]) -> float:
    """Mean of values weighted by counts, skipping NaN values (NaN when nothing is left)."""
    kept = [(v, w) for v, w in pairs if w > 0 and math.isfinite(v)]
    total = sum(w for _, w in kept)
    return sum(v * w for v, w in kept) / total if total else math.nan


def merge_reports(reports: list[EvalReport]) -> EvalReport:
    """One report over several evaluated datasets (e.g. an indoor and an outdoor root, each
    with its own depth range and crop): every average is over all images, as if evaluated
    together (the metrics are per-image averages)."""
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    samples = sum(r.samples for r in reports)
    metrics = {k: _weighted([(r.metrics[k], r.samples) for r in reports]) for k in first.metrics}
    per_domain: dict[str, dict[str, float]] = {}
    for name in sorted({d for r in reports for d in r.per_domain}):
        parts = [r.per_domain[name] for r in reports if name in r.per_domain]
        per_domain[name] = {key: sum(p.get(key, 0.0) for p in parts) for key in COUNT_KEYS}
        per_domain[name].update({
            key: _weighted([(p[key], p['images']) for p in parts if key in p])
            for key in parts[0] if key not in COUNT_KEYS})
    routers = [(v['router_accuracy'], v['images']) for v in per_domain.values()
               if 'router_accuracy' in v]
    routed = {k: sum(r.routed.get(k, 0) for r in reports) for k in first.routed}
    return EvalReport(
        model=first.model, dataset='+'.join(r.dataset for r in reports), samples=samples,
        skipped=sum(r.skipped for r in reports), metrics=metrics,
        router_accuracy=_weighted(routers) if routers else None, routed=routed,
        std_spearman=_weighted([(r.std_spearman, r.samples) for r in reports]),
        std_constant=sum(r.std_constant for r in reports),
        per_domain=per_domain, seconds=sum(r.seconds for r in reports),
        settings={**first.settings, 'datasets': [
            {'name': r.dataset, **{k: r.settings.get(k) for k in ('min_depth', 'max_depth',
                                                                  'crop', 'root')}}
            for r in reports]})


def with_baseline(report: EvalReport, baseline: Mapping[str, float]) -> EvalReport:
    """Set ``report.mri_theta`` against baseline metrics (delta1, REL, RMSE)."""
    report.mri_theta = mri_theta(report.metrics, baseline)
    return report
