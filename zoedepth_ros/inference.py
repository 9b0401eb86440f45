"""DepthEstimator: numpy/tensor inference around a ZoeDepth model.

Preprocessing presets:

``eval`` (default)
    What the paper's evaluation does: stretch to the training resolution, no padding,
    optional flip averaging, bilinear (align_corners=True) upsampling to the input size.
``keep_aspect``
    Keep the aspect ratio (multiples of 32 near the training size), no padding, bilinear.
``original_infer``
    The original ``model.infer``: keep-aspect, reflect padding, flip averaging (on unless
    ``flip=False``), bicubic (align_corners=False) upsampling, padding cropped off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from zoedepth_ros.errors import ConfigError, InputError
from zoedepth_ros.model.config import ModelConfig
from zoedepth_ros.model.loading import LoadedModel, load_model
from zoedepth_ros.model.onnx import OnnxDepthModel
from zoedepth_ros.model.router import DOMAIN_NAMES, DOMAINS, domain_name, head_name
from zoedepth_ros.model.weights import DEFAULT_MODEL, ProgressCallback
from zoedepth_ros.model.zoedepth import ZoeDepth
from zoedepth_ros.pointcloud import as_tensor

Preprocess = Literal['eval', 'keep_aspect', 'original_infer']
PREPROCESS_PRESETS = ('eval', 'keep_aspect', 'original_infer')
"""One forward pass: depth, std (None when not asked for), domain index, domain probs."""


@dataclass
class DepthResult:
    """One image's prediction at the input resolution.

    Attributes:
        depth_m: (H, W) float32 z-depth in metres.
        std_m: (H, W) float32 per-pixel standard deviation in metres.
        domain: 'indoor' or 'outdoor' (the head that produced the depth).
        domain_probs: router probability per domain (1.0 for a single-head model).
        timings_ms: 'preprocess', 'model', 'postprocess' wall times.
    """

    depth_m: np.ndarray
    std_m: np.ndarray
    domain: str
    domain_probs: dict[str, float]
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class DepthTensors:
    """Batch prediction on the model's device: depth/std (B, 1, H, W) (std None when not
    asked for), index (B,), probs (B, 2); ``heads``: domain -> (depth, std) of every head when
    asked for (None otherwise)."""

    depth: torch.Tensor
    std: torch.Tensor | None
    domain_index: torch.Tensor
    domain_probs: torch.Tensor
    heads: dict[str, tuple[torch.Tensor, torch.Tensor | None]] | None = None

    def map_maps(self, apply: Callable[[torch.Tensor], torch.Tensor]) -> DepthTensors:
        """The same prediction with ``apply`` done to every (B, 1, H, W) map."""
        def both(depth: torch.Tensor, std: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
            return apply(depth), None if std is None else apply(std)

        heads = None if self.heads is None else {
            name: both(*maps) for name, maps in self.heads.items()}
        return DepthTensors(*both(self.depth, self.std), self.domain_index, self.domain_probs,
                            heads)

    def averaged(self, other: DepthTensors) -> DepthTensors:
        """The mean of two predictions of the same images (flip averaging); the routing is
        this one's."""
        def mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return (a + b) / 2

        def mean_std(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
            return None if a is None or b is None else mean(a, b)

        heads = None
        if self.heads is not None and other.heads is not None:
            heads = {name: (mean(depth, other.heads[name][0]),
                            mean_std(std, other.heads[name][1]))
                     for name, (depth, std) in self.heads.items()}
        return DepthTensors(mean(self.depth, other.depth), mean_std(self.std, other.std),
                            self.domain_index, mean(self.domain_probs, other.domain_probs), heads)


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda if available else cpu; an explicit device must exist."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ConfigError(f'device {device!r} requested but CUDA is not available; use cpu')
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f'invalid device {device!r}: {err}') from None


def original_padding(height: int, width: int) -> tuple[int, int]:
    """Reflect padding (pad_h, pad_w) of the original ``infer``: int(3 * sqrt(side / 2))."""
    return int(math.sqrt(height / 2) * 3), int(math.sqrt(width / 2) * 3)


class DepthEstimator:
    """Metric depth from RGB images with a ZoeDepth model.

    Args:
        model: the network (weights already loaded).
        device: 'auto', 'cpu', 'cuda', 'cuda:1', ...
        precision: 'fp32', or 'fp16' / 'bf16' autocast on CUDA (heads stay fp32).
        preprocess: one of PREPROCESS_PRESETS (see module docstring).
        flip: average with the mirrored image's prediction (None: preset default).
        pad: reflect-pad as the original ``infer`` (None: on for ``original_infer`` only).
        domain: 'auto' (router), 'indoor' or 'outdoor' (force a head).
        routing: 'sample' (per image) or 'batch' (one vote per batch, as the original).
        name: label for logs and reports.
        compile: run the model through ``torch.compile`` (first calls are slow; off by
            default). Compiled graphs run both NK heads and select per sample.
        channels_last: store the convolutions' weights channels-last. None: on for CPU,
            off for CUDA (the faster default of each, see benchmarks/README.md).
        kind: what the weights are: 'weights', 'demo', 'onnx' or 'random' (see
            :class:`~zoedepth_ros.model.loading.LoadedModel`).
        warning: what users must be told about the weights (demo or random), else None.
    """

    def __init__(self, model: ZoeDepth | OnnxDepthModel, device: str = 'auto',
                 precision: str = 'fp32', preprocess: str = 'eval', flip: bool | None = None,
                 domain: str = 'auto', routing: str = 'sample', name: str = '',
                 pad: bool | None = None, compile: bool = False,
                 channels_last: bool | None = None, kind: str = 'weights',
                 warning: str | None = None) -> None:
        if preprocess not in PREPROCESS_PRESETS:
            raise ConfigError(f'preprocess {preprocess!r} is not one of {PREPROCESS_PRESETS}')
        if precision not in ('fp32', 'fp16', 'bf16'):
            raise ConfigError(f"precision {precision!r} is not one of ['fp32', 'fp16', 'bf16']")
        if routing not in ('sample', 'batch'):
            raise ConfigError(f"routing {routing!r} is not one of ['sample', 'batch']")
        self.device = resolve_device(device)
        if precision != 'fp32' and self.device.type != 'cuda':
            raise ConfigError(f'precision {precision} needs a CUDA device; use fp32 on '
                              f'{self.device.type}')
        if domain != 'auto' and head_name(domain) not in model.domains:
            raise ConfigError(f'domain {domain!r} is not available; this model has '
                              f'{[domain_name(d) for d in model.domains]} (or auto)')
        self.model = model.eval().to(self.device)
        if channels_last is None:
            channels_last = self.device.type == 'cpu' and isinstance(model, torch.nn.Module)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._run = torch.compile(self.model) if compile else self.model
        self.precision = precision
        self.preprocess = preprocess
        self.flip = (preprocess == 'original_infer') if flip is None else flip
        self.pad = (preprocess == 'original_infer') if pad is None else pad
        self.domain = domain
        self.routing = routing
        self.name = name or model.cfg.name
        self.kind = kind
        self.warning = warning

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_pretrained(cls, source: str | ModelConfig = DEFAULT_MODEL,
                        config: str | ModelConfig | None = None, random_weights: bool = False,
                        onnx_providers: list[str] | None = None,
                        progress: ProgressCallback | None = None, threads: int = 0,
                        **kwargs: object) -> DepthEstimator:
        """An estimator for a weights name or file (see :func:`~.model.loading.load_model`).

        ``random_weights=True`` builds a preset or ModelConfig with seeded random weights
        (tests, benchmarks); an ``.onnx`` file runs with onnxruntime on the CPU unless
        ``onnx_providers`` say otherwise, fp32 only. ``progress`` hears about a download.
        ``threads`` > 0 sets the intra-op threads of torch (process-wide) and onnxruntime;
        0 keeps their default (one per core).
        """
        if threads < 0:
            raise ConfigError(f'threads must be 0 (the default) or positive, got {threads}')
        if threads > 0:
            torch.set_num_threads(threads)
        loaded = load_model(source, config, random_weights=random_weights,
                            onnx_providers=onnx_providers, progress=progress, threads=threads)
        return cls.from_loaded(loaded, **kwargs)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, **kwargs: object) -> DepthEstimator:
        """An estimator around a model from :func:`~.model.loading.load_model`."""
        if loaded.kind == 'onnx':
            if kwargs.get('precision', 'fp32') != 'fp32' or kwargs.get('compile'):
                raise ConfigError('the onnxruntime backend runs the graph as exported (fp32); '
                                  'drop precision/compile')
            kwargs.setdefault('device', 'cpu')  # pre/post-processing; the graph runs where
            # its execution providers say
        kwargs.setdefault('name', loaded.name)
        return cls(loaded.model, kind=loaded.kind, warning=loaded.warning,
                   **kwargs)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- inference

    @property
    def has_all_heads(self) -> bool:
        """Whether ``predict_tensor(all_heads=True)`` is available (not for ONNX graphs, which
        return the routed head only)."""
        return self.kind != 'onnx'

    def _autocast(self) -> torch.autocast:
        dtype = torch.float16 if self.precision == 'fp16' else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.precision != 'fp32')

    def _forward(self, x: torch.Tensor, std: bool = True, all_heads: bool = False
                 ) -> DepthTensors:
        """One pass at network resolution, upsampled to x's size (after any padding)."""
        head = None if self.domain == 'auto' else head_name(self.domain)
        keep_aspect = self.preprocess != 'eval'
        extra = {'all_heads': True} if all_heads else {}
        with self._autocast():
            out = self._run(x, domain=head, routing=self.routing, keep_aspect=keep_aspect,
                            with_std=std, **extra)
        size = x.shape[-2:]
        depth = self._to_input_size(out.metric_depth.float(), size)
        spread = self._std_to_input_size(out.depth_std, size) if std else None
        if out.domain_logits is not None:
            probs = torch.softmax(out.domain_logits.float(), dim=1)
        else:
            probs = F.one_hot(out.domain_index, len(DOMAINS)).float()
        heads = None
        if all_heads and out.heads is not None:
            heads = {DOMAIN_NAMES[DOMAINS.index(name)]: (
                self._to_input_size(result.depth.float(), size),
                self._std_to_input_size(result.std, size) if std else None)
                for name, result in out.heads.items()}
        return DepthTensors(depth, spread, out.domain_index, probs, heads)

    def _std_to_input_size(self, values: torch.Tensor | None, size: torch.Size) -> torch.Tensor:
        """The std upsampled like the depth, clamped at 0 (in place when the resize made a
        new tensor, not the model's)."""
        if values is None:
            raise InputError('the model returned no std although it was asked for one')
        values = values.float()
        spread = self._to_input_size(values, size)
        return spread.clamp_min(0) if spread is values else spread.clamp_min_(0)

    def _to_input_size(self, values: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """Upsample a network-resolution map as the preset says (bicubic for original_infer)."""
        if values.shape[-2:] == size:
            return values
        if self.preprocess == 'original_infer':
            return F.interpolate(values, size=size, mode='bicubic', align_corners=False)
        return F.interpolate(values, size=size, mode='bilinear', align_corners=True)

    def _padded_forward(self, x: torch.Tensor, std: bool = True, all_heads: bool = False
                        ) -> DepthTensors:
        if not self.pad:
            return self._forward(x, std, all_heads)
        pad_h, pad_w = original_padding(x.shape[-2], x.shape[-1])
        padded = F.pad(x, [pad_w, pad_w, pad_h, pad_h], mode='reflect')
        return self._forward(padded, std, all_heads).map_maps(
            lambda t: t[..., pad_h:t.shape[-2] - pad_h, pad_w:t.shape[-1] - pad_w])

    @torch.inference_mode()
    def predict_tensor(self, rgb: torch.Tensor, std: bool = True,
                       all_heads: bool = False) -> DepthTensors:
        """RGB (B, 3, H, W) float in [0, 1] on the model's device -> predictions at H x W.

        ``std=False`` skips the standard deviation (computed per pixel over the bins and
        upsampled otherwise); ``DepthTensors.std`` is then None. ``all_heads`` also returns
        every metric head's depth and std (``DepthTensors.heads``; a model with one head, or
        a forced domain, has only that one), for sparse-guided head selection.
        """
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise InputError(f'expected a (B, 3, H, W) tensor, got shape {tuple(rgb.shape)}')
        out = self._padded_forward(rgb, std, all_heads)
        if self.flip:
            flipped = self._padded_forward(torch.flip(rgb, dims=[3]), std, all_heads).map_maps(
                lambda t: torch.flip(t, dims=[3]))
            out = out.averaged(flipped)
        return out

    def upload(self, images: list[np.ndarray]) -> torch.Tensor:
        """Same-size HxWx3 uint8 RGB images -> (B, H, W, 3) uint8 on the model's device.

        On CUDA the copy goes through pinned host memory and does not block the host.
        """
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise InputError(f'expected an HxWx3 uint8 RGB image, got {image.dtype} '
                                 f'array of shape {image.shape}')
            if image.shape != images[0].shape:
                raise InputError('all images of a batch must have the same size')
        batch = (as_tensor(images[0], np.uint8)[None] if len(images) == 1
                 else torch.from_numpy(np.stack(images)))
        if self.device.type == 'cuda':
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch

    @staticmethod
    def to_float(batch: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> contiguous (B, 3, H, W) float32 in [0, 1] (the model's input;
        not the permuted view: the resize that follows is 2.5x slower on it on CPU)."""
        return batch.permute(0, 3, 1, 2).to(torch.float32,
                                            memory_format=torch.contiguous_format).div_(255.0)

    def synchronize(self) -> None:
        """Wait for the device's queued work (for timings); a no-op on the CPU."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def predict_batch(self, images: list[np.ndarray]) -> list[DepthResult]:
        """Same-size HxWx3 uint8 RGB images -> one DepthResult each."""
        if not images:
            return []
        start = time.perf_counter()
        tensor = self.to_float(self.upload(images))
        self.synchronize()
        prepared = time.perf_counter()
        out = self.predict_tensor(tensor)
        self.synchronize()
        inferred = time.perf_counter()
        assert out.std is not None  # predict_tensor computes it by default
        depth = out.depth[:, 0].cpu().numpy()
        std = out.std[:, 0].cpu().numpy()
        index = out.domain_index.cpu().numpy()
        probs = out.domain_probs.cpu().numpy()
        timings = phase_timings(start, prepared, inferred)
        return [DepthResult(depth[i], std[i], domain_name(int(index[i])),
                            domain_probabilities(probs[i]), dict(timings))
                for i in range(len(images))]

    def predict(self, rgb: np.ndarray) -> DepthResult:
        """HxWx3 uint8 RGB image -> DepthResult at the same resolution."""
        return self.predict_batch([rgb])[0]


def phase_timings(start: float, prepared: float, inferred: float) -> dict[str, float]:
    """'preprocess', 'model', 'postprocess' milliseconds from perf_counter marks (now = end)."""
    done = time.perf_counter()
    return {'preprocess': 1e3 * (prepared - start), 'model': 1e3 * (inferred - prepared),
            'postprocess': 1e3 * (done - inferred)}


def domain_probabilities(probs: np.ndarray) -> dict[str, float]:
    """{'indoor': p0, 'outdoor': p1} of a router probability row."""
    return {DOMAIN_NAMES[j]: float(probs[j]) for j in range(len(DOMAINS))}
