"""The ZoeDepth network: MiDaS core (BEiT-DPT or v2.1 small) + metric bins head(s) + optional
router."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoedepth_ros.errors import ConfigError
from zoedepth_ros.model.bins import (
    AttractorLayer,
    ConditionalLogBinomial,
    HeadOutput,
    LogBinomial,
    MetricHead,
    SeedBinRegressor,
    pixel_mlp,
)
from zoedepth_ros.model.config import EfficientNetConfig, ModelConfig, TrunkConfig, get_config
from zoedepth_ros.model.dpt import DecoderOutput, DPTDecoder, upsample
from zoedepth_ros.model.encoder import BeitEncoder
from zoedepth_ros.model.midas_small import EfficientNetEncoder, MidasSmallDecoder
from zoedepth_ros.model.router import DOMAINS, DomainRouter, route

# Upstream quirk: a positional-argument slip gives every ZoeD_NK attractor layer the
# default 16 attractors; the configured [16, 8, 4, 1] only applies to single-head models.
NK_ATTRACTORS = 16


def network_size(height: int, width: int, target: tuple[int, int], keep_aspect: bool,
                 multiple: int = 32) -> tuple[int, int]:
    """Network input size for an image: "minimal" keep-aspect or stretch.

    Keep-aspect takes the scale factor closer to 1 (ties: height's); sides are rounded to
    multiples of 32 with round-half-to-even, as numpy does upstream.
    """
    scale_h, scale_w = target[0] / height, target[1] / width
    if keep_aspect:
        if abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h
    new_h = int(np.round(scale_h * height / multiple) * multiple)
    new_w = int(np.round(scale_w * width / multiple) * multiple)
    return new_h, new_w


@dataclass
class DepthOutput:
    """Model outputs at network resolution h x w.

    Attributes:
        metric_depth: (B, 1, h, w) metres.
        depth_std: (B, 1, h, w) metres, spread of the bin distribution around the depth (None
            when the forward was asked not to compute it).
        relative_depth: (B, h, w) MiDaS relative (disparity-like) depth.
        bin_centers: (B, K, h, w) metres.
        probs: (B, K, h, w) bin probabilities.
        domain_logits: (B, 2) router logits (0 = nyu/indoor, 1 = kitti/outdoor) or None.
        domain_index: (B,) int64 index into DOMAINS of the head used for each image.
        decoder: intermediate decoder tensors.
        heads: with ``all_heads``, every computed head's output by head name ('nyu',
            'kitti'); None otherwise.
    """

    metric_depth: torch.Tensor
    depth_std: torch.Tensor | None
    relative_depth: torch.Tensor
    bin_centers: torch.Tensor
    probs: torch.Tensor
    domain_logits: torch.Tensor | None
    domain_index: torch.Tensor
    decoder: DecoderOutput
    heads: dict[str, HeadOutput] | None = None

    @property
    def network_size(self) -> tuple[int, int]:
        return int(self.metric_depth.shape[-2]), int(self.metric_depth.shape[-1])


def _build_head(cfg: ModelConfig, index: int, features_in: int) -> MetricHead:
    conf = cfg.heads[index]
    nk = cfg.name == 'ZoeDepthNK'
    embedding = cfg.bin_embedding_dim
    bottleneck = cfg.trunk.bottleneck_features
    seed_hidden = cfg.seed_mlp_dim or (embedding // 2 if nk else 256)
    counts = (NK_ATTRACTORS,) * 4 if nk else cfg.n_attractors
    seed = SeedBinRegressor(bottleneck, conf.n_bins, seed_hidden, cfg.bin_centers_type,
                            conf.min_depth, conf.max_depth)
    attractors = [
        AttractorLayer(embedding, count, cfg.attractor_mlp_dim, cfg.bin_centers_type,
                       cfg.attractor_kind == 'mean', cfg.attractor_type, cfg.memory_efficient,
                       conf.min_depth, conf.max_depth)
        for count in counts
    ]
    factor = cfg.clb_bottleneck_factor or (4 if nk else 2)
    log_binomial = ConditionalLogBinomial(features_in, embedding, conf.n_bins, factor,
                                          cfg.min_temp, cfg.max_temp)
    return MetricHead(seed, attractors, log_binomial)


def build_core(trunk: TrunkConfig) -> tuple[BeitEncoder | EfficientNetEncoder,
                                            DPTDecoder | MidasSmallDecoder]:
    """(encoder, decoder) of a MiDaS backbone; the decoder returns a DecoderOutput whose
    channel counts are ``trunk.bottleneck_features`` and ``trunk.fused_features``."""
    if isinstance(trunk, EfficientNetConfig):
        encoder = EfficientNetEncoder(trunk)
        return encoder, MidasSmallDecoder(trunk, encoder.channels)
    return BeitEncoder(trunk), DPTDecoder(trunk)


class ZoeDepth(nn.Module):
    """ZoeD_N / ZoeD_K (one head) and ZoeD_NK (two heads + router), built from a ModelConfig.

    ``forward`` takes RGB in [0, 1] of any size, resizes and normalises it itself and
    returns depth at the network resolution (resizing to the camera image is the caller's).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        trunk = cfg.trunk
        nk = cfg.name == 'ZoeDepthNK'
        embedding = cfg.bin_embedding_dim
        projector_hidden = cfg.projector_mlp_dim or (embedding // 2 if nk else 128)
        self.relative_conditioning = not nk
        self.encoder, self.decoder = build_core(trunk)
        bottleneck = trunk.bottleneck_features
        self.bottleneck = nn.Conv2d(bottleneck, bottleneck, kernel_size=1)
        self.seed_projector = pixel_mlp(bottleneck, projector_hidden, embedding, None)
        self.projectors = nn.ModuleList(
            pixel_mlp(channels, projector_hidden, embedding, None)
            for channels in trunk.fused_features)
        features_in = trunk.head_features + (1 if self.relative_conditioning else 0)
        self.heads = nn.ModuleDict(
            {conf.name: _build_head(cfg, i, features_in) for i, conf in enumerate(cfg.heads)})
        self.router = DomainRouter(bottleneck) if nk else None

    @property
    def domains(self) -> tuple[str, ...]:
        """Head names in this model ('nyu', 'kitti')."""
        return tuple(self.heads.keys())

    def prepare(self, image: torch.Tensor, keep_aspect: bool | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        """RGB (B, 3, H, W) in [0, 1] -> normalised network input (B, 3, h, w).

        Resizes to ``size`` or to the size derived from ``cfg.img_size`` (bilinear,
        align_corners=True, no antialiasing), then maps [0, 1] to [-1, 1] (mean=std=0.5).
        """
        if keep_aspect is None:
            keep_aspect = self.cfg.force_keep_ar
        if size is None:
            size = network_size(image.shape[-2], image.shape[-1], self.cfg.img_size, keep_aspect)
        if tuple(image.shape[-2:]) != tuple(size):  # a new tensor: normalise it in place
            image = F.interpolate(image, size=size, mode='bilinear', align_corners=True)
            return image.mul_(2.0).sub_(1.0)
        return image.mul(2.0).sub_(1.0)  # 2x - 1 == (x - 0.5) / 0.5 bit for bit

    def forward(self, image: torch.Tensor, domain: str | None = None, routing: str = 'sample',
                keep_aspect: bool | None = None, size: tuple[int, int] | None = None,
                prepared: bool = False, with_std: bool = True,
                all_heads: bool = False) -> DepthOutput:
        """Predict metric depth.

        Args:
            image: (B, 3, H, W) RGB in [0, 1] (or a normalised network input if ``prepared``).
            domain: force a head ('nyu' or 'kitti'); None routes automatically (NK).
            routing: 'sample' (per image) or 'batch' (the original one-vote-per-batch rule).
            keep_aspect: override ``cfg.force_keep_ar`` for the internal resize.
            size: explicit network size (multiples of 32); overrides the derived one.
            with_std: compute ``depth_std`` (None otherwise: a sum over the bins per pixel).
            all_heads: run every head (not only those the routing chose) and return them in
                ``heads`` (sparse-guided head selection compares them).
        """
        x = image if prepared else self.prepare(image, keep_aspect, size)
        decoded = self.decoder(self.encoder(x))
        # Under fp16/bf16 autocast only the trunk and decoder run in half precision: the bins
        # (logs of clamped values, temperatures down to 0.02, sums over 64 bins) stay fp32.
        with torch.autocast(x.device.type, enabled=False):
            return self._metric(x, decoded, domain, routing, with_std, all_heads)

    def _routed_heads(self, index: torch.Tensor, names: tuple[str, ...],
                      bottleneck: torch.Tensor, seed_embedding: torch.Tensor,
                      embeddings: list[torch.Tensor], features: torch.Tensor) -> HeadOutput:
        """Each head in ``names`` on the images routed to it (``index`` into DOMAINS),
        the results put back in batch order."""
        parts = []
        for name in names:
            rows = (index == DOMAINS.index(name)).nonzero().flatten()
            pick = partial(torch.index_select, dim=0, index=rows)
            parts.append((rows, self.heads[name](pick(bottleneck), pick(seed_embedding),
                                                 [pick(e) for e in embeddings],
                                                 pick(features))))

        def gather(field: str) -> torch.Tensor:
            first = getattr(parts[0][1], field)
            whole = first.new_empty((index.shape[0], *first.shape[1:]))
            for rows, output in parts:
                whole.index_copy_(0, rows, getattr(output, field))
            return whole

        return HeadOutput(gather('depth'), gather('bin_centers'), gather('probs'))

    def _metric(self, x: torch.Tensor, decoded: DecoderOutput, domain: str | None,
                routing: str, with_std: bool = True, all_heads: bool = False) -> DepthOutput:
        decoded = DecoderOutput(decoded.relative_depth.float(), decoded.head_features.float(),
                                decoded.bottleneck.float(), [f.float() for f in decoded.fused])
        bottleneck = self.bottleneck(decoded.bottleneck)
        seed_embedding = self.seed_projector(bottleneck)
        fused, features = list(decoded.fused), decoded.head_features
        stride = self.cfg.metric_stride
        if stride > 1:  # the finest attractor and the log-binomial on pooled features
            fused[-1] = F.avg_pool2d(fused[-1], stride)
            features = F.avg_pool2d(features, stride)
        embeddings = [proj(f) for proj, f in zip(self.projectors, fused)]
        if self.relative_conditioning:
            relative = decoded.relative_depth.unsqueeze(1)
            features = torch.cat([features, upsample(relative, features.shape[-2:])], dim=1)
        logits = self.router(bottleneck) if self.router is not None else None
        names = self.domains
        if domain is not None:
            if domain not in names:
                raise ConfigError(f'domain {domain!r} is not a head of this model: {names}')
            names = (domain,)
        batch = x.shape[0]
        index = None
        if len(names) > 1:
            assert logits is not None
            index = route(logits, routing)
            names = names if all_heads else _heads_needed(index, names)
        if len(names) > 1 and not all_heads and not _static_graph():
            # A batch routed to both heads (cameras that see different scenes): each head
            # runs on its own images only, not on the whole batch.
            assert index is not None
            chosen = self._routed_heads(index, names, bottleneck, seed_embedding, embeddings,
                                        features)
            std = chosen.std if with_std else None
            return DepthOutput(chosen.depth, std, decoded.relative_depth, chosen.bin_centers,
                               chosen.probs, logits, index, decoded, None)
        outputs = [self.heads[name](bottleneck, seed_embedding, embeddings, features)
                   for name in names]
        if len(names) == 1:
            if index is None:
                index = torch.full((batch,), DOMAINS.index(names[0]), dtype=torch.long,
                                   device=x.device)
            chosen = outputs[0]
        else:
            assert index is not None
            chosen = _select([outputs[names.index(name)] for name in DOMAINS], index)
        std = chosen.std if with_std else None
        return DepthOutput(chosen.depth, std, decoded.relative_depth, chosen.bin_centers,
                           chosen.probs, logits, index, decoded,
                           dict(zip(names, outputs)) if all_heads else None)


def _static_graph() -> bool:
    """Whether a traced, compiled or exported graph is being built (no data-dependent
    control flow there)."""
    return (torch.jit.is_tracing() or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export())


def _heads_needed(index: torch.Tensor, names: tuple[str, ...]) -> tuple[str, ...]:
    """The heads the routed batch uses: only those in eager mode, all of them when traced.

    Eager: one host sync (the set of chosen domains) saves running a head nobody uses, which
    at batch 1 is a third to half of the non-trunk time. Traced/compiled/exported graphs
    keep both heads and select per sample with ``torch.where`` (static graph, routing inside).
    """
    if _static_graph():
        return names
    used = set(index.unique().tolist())
    return tuple(name for name in names if DOMAINS.index(name) in used)


def _select(outputs: list[HeadOutput], index: torch.Tensor) -> HeadOutput:
    """Per-sample choice between the nyu and kitti heads' outputs (index into DOMAINS)."""
    pick = index.view(-1, 1, 1, 1).bool()
    first, second = outputs
    return HeadOutput(torch.where(pick, second.depth, first.depth),
                      torch.where(pick, second.bin_centers, first.bin_centers),
                      torch.where(pick, second.probs, first.probs))


def build_model(name_or_cfg: str | ModelConfig, initialize: bool = True) -> ZoeDepth:
    """Build a model in eval mode (load weights with model.checkpoint).

    Args:
        name_or_cfg: preset name or ModelConfig.
        initialize: random initialisation (timm's scheme). False allocates the parameters
            uninitialised, which is several times faster for BEiT-L; only for callers that
            load every weight right after (constant buffers are filled either way).
    """
    cfg = get_config(name_or_cfg) if isinstance(name_or_cfg, str) else name_or_cfg
    if initialize:
        return ZoeDepth(cfg).eval()
    with torch.device('meta'):
        model = ZoeDepth(cfg)
    model = model.to_empty(device='cpu')
    for module in model.modules():
        if isinstance(module, (BeitEncoder, LogBinomial)):
            module.reset_buffers()
    return model.eval()
