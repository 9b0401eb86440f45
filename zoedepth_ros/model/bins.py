"""Metric bins head: seed bins, attractor refinement, conditional log-binomial.

Per-pixel MLPs are stacks of 1x1 convolutions. Three upstream behaviours are kept on
purpose because the released weights depend on them; each is marked "Upstream quirk".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from zoedepth_ros.model.dpt import upsample

# Upstream quirk: the configs say alpha=1000, but the original attractor layers call the
# distance function with its defaults, so the released models run with alpha=300, gamma=2.
ATTRACTOR_ALPHA = 300.0
ATTRACTOR_GAMMA = 2


def pixel_linear(x: torch.Tensor, weight: torch.Tensor,
                 added: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution of (B, C, H, W) as one GEMM per image, plus ``added``.

    Args:
        weight: (C_out, C, 1, 1) (or any view of that many values).
        added: (C_out,) bias, or a (B, C_out, H, W) map added inside the GEMM: when it is
            NCHW-contiguous the result is written into it (pass a map made for this sum).

    Returns:
        (B, C_out, H, W), contiguous (NCHW) whatever the input's memory format. On the CPU,
        oneDNN runs 1x1 convolutions of large NCHW maps several times slower than this GEMM,
        and channels-last outputs meeting NCHW ones make elementwise ops slow: the metric
        heads stay in one layout this way.
    """
    matrix = weight.reshape(weight.shape[0], x.shape[1])
    flat = x.flatten(2)  # shape-agnostic ops only: exported graphs keep a dynamic batch
    if added is None:
        out = torch.matmul(matrix, flat)
    elif added.dim() == 1:
        out = torch.baddbmm(added.view(1, -1, 1), matrix.expand(x.shape[0], -1, -1), flat)
    else:  # a map made for this sum: accumulate into it (no copy of the map)
        out = added.flatten(2).baddbmm_(matrix.expand(x.shape[0], -1, -1), flat)
    return out.unflatten(2, x.shape[-2:])


class PixelMLP(nn.Sequential):
    """conv1x1 -> ReLU -> conv1x1 [-> activation], the convolutions run as GEMMs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first_module, relu, second_module, *rest = self
        first, second = cast(nn.Conv2d, first_module), cast(nn.Conv2d, second_module)
        x = relu(pixel_linear(x, first.weight, first.bias))
        x = pixel_linear(x, second.weight, second.bias)
        for module in rest:
            x = module(x)
        return x


def pixel_mlp(in_channels: int, hidden: int, out_channels: int,
              activation: nn.Module | None) -> PixelMLP:
    """conv1x1 -> ReLU -> conv1x1 [-> activation]."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 1), nn.ReLU(),
                               nn.Conv2d(hidden, out_channels, 1)]
    if activation is not None:
        layers.append(activation)
    return PixelMLP(*layers)


def inverse_attractor(delta: torch.Tensor) -> torch.Tensor:
    """Pull of an attractor at offset ``delta``: delta / (1 + alpha * delta^gamma)."""
    return delta / (1 + ATTRACTOR_ALPHA * delta.pow(ATTRACTOR_GAMMA))


def exponential_attractor(delta: torch.Tensor) -> torch.Tensor:
    """delta * exp(-alpha * |delta|^gamma) (not used by the released models)."""
    return torch.exp(-ATTRACTOR_ALPHA * delta.abs().pow(ATTRACTOR_GAMMA)) * delta


def _summed_inverse_pull(attractors: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """Sum over attractors of ``inverse_attractor(a - state)``, three passes per attractor.

    Args:
        attractors: (B, A, h, w); state: (B, K, h, w). Returns (B, K, h, w).

    Same formula as the plain loop, d / (1 + alpha d^2), with fused kernels (addcmul,
    addcdiv) instead of six separately allocated temporaries per attractor.
    """
    assert ATTRACTOR_GAMMA == 2
    delta = torch.zeros_like(state)
    one = torch.ones((), dtype=state.dtype, device=state.device)
    traced = torch.jit.is_tracing()  # the ONNX exporter has no addcdiv
    for index in range(attractors.shape[1]):
        offset = attractors[:, index:index + 1] - state
        denominator = torch.addcmul(one, offset, offset, value=ATTRACTOR_ALPHA)
        if traced:
            delta = delta + offset / denominator
        else:
            delta = delta.addcdiv(offset, denominator)
    return delta


class SeedBinRegressor(nn.Module):
    """Initial bin centres from the bottleneck features.

    ``normed``: bounded centres from normalised widths in [min_depth, max_depth];
    ``softplus``: unbounded positive centres.
    """

    def __init__(self, in_channels: int, n_bins: int, hidden: int, kind: str,
                 min_depth: float, max_depth: float) -> None:
        super().__init__()
        self.kind = kind
        self.min_depth = min_depth
        self.max_depth = max_depth
        activation = nn.ReLU() if kind == 'normed' else nn.Softplus()
        self.mlp = pixel_mlp(in_channels, hidden, n_bins, activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) -> (state passed to the attractors, centres in metres), (B, K, h, w)."""
        raw = self.mlp(x)
        if self.kind == 'softplus':
            return raw, raw
        widths = raw + 1e-3
        widths = (self.max_depth - self.min_depth) * widths / widths.sum(dim=1, keepdim=True)
        widths = F.pad(widths, (0, 0, 0, 0, 1, 0), value=self.min_depth)
        edges = torch.cumsum(widths, dim=1)
        centers = 0.5 * (edges[:, :-1] + edges[:, 1:])
        state = (centers - self.min_depth) / (self.max_depth - self.min_depth)
        return state, centers


class AttractorLayer(nn.Module):
    """Moves every bin centre towards a set of predicted attractor points."""

    def __init__(self, in_channels: int, n_attractors: int, hidden: int, kind: str,
                 mean: bool, attractor_type: str, memory_efficient: bool,
                 min_depth: float, max_depth: float) -> None:
        super().__init__()
        self.n_attractors = n_attractors
        self.kind = kind
        self.mean = mean
        self.memory_efficient = memory_efficient
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.distance = inverse_attractor if attractor_type == 'inv' else exponential_attractor
        if kind == 'normed':
            # Upstream quirk: two values per attractor are predicted, only the first used.
            self.mlp = pixel_mlp(in_channels, hidden, 2 * n_attractors, nn.ReLU())
        else:
            self.mlp = pixel_mlp(in_channels, hidden, n_attractors, nn.Softplus())

    def forward(self, embedding: torch.Tensor, state: torch.Tensor,
                previous_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Refine the bins at this stage's resolution.

        Args:
            embedding: (B, E, h, w) this stage's projected features.
            state: (B, K, h', w') previous bin state (normalised for ``normed``).
            previous_embedding: (B, E, h'', w'') previous stage's projected features.

        Returns:
            (new state (B, K, h, w), bin centres in metres (B, K, h, w)).
        """
        x = embedding + upsample(previous_embedding, embedding.shape[-2:])
        attractors = self.mlp(x)
        if self.kind == 'normed':
            attractors = (attractors + 1e-3)[:, 0::2]
        state = upsample(state, attractors.shape[-2:])
        if self.memory_efficient and self.distance is inverse_attractor:
            delta = _summed_inverse_pull(attractors, state)
            if self.mean:
                delta = delta / self.n_attractors
        elif self.memory_efficient:
            delta = torch.zeros_like(state)
            for index in range(self.n_attractors):
                delta = delta + self.distance(attractors[:, index:index + 1] - state)
            if self.mean:
                delta = delta / self.n_attractors
        else:
            pulls = self.distance(attractors.unsqueeze(2) - state.unsqueeze(1))
            delta = pulls.mean(dim=1) if self.mean else pulls.sum(dim=1)
        state = state + delta
        if self.kind == 'softplus':
            return state, state
        centers = (self.max_depth - self.min_depth) * state + self.min_depth
        centers = torch.sort(centers, dim=1).values.clamp(self.min_depth, self.max_depth)
        return state, centers


class LogBinomial(nn.Module):
    """Softmax over K bins of a binomial log-likelihood with temperature."""

    k_idx: torch.Tensor  # buffers (register_buffer)
    K_minus_1: torch.Tensor

    def __init__(self, n_bins: int) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.register_buffer('k_idx', torch.empty(1, n_bins, 1, 1, dtype=torch.long))
        self.register_buffer('K_minus_1', torch.empty(1, 1, 1, 1))
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """Fill the constant buffers (also after allocation without initialisation)."""
        if self.k_idx.is_meta:
            return
        with torch.no_grad():
            self.k_idx.copy_(torch.arange(self.n_bins).view(1, -1, 1, 1))
            self.K_minus_1.fill_(float(self.n_bins - 1))

    def forward(self, q: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
        """q, temperature: (B, 1, h, w) -> probabilities (B, K, h, w)."""
        eps = 1e-7
        n = self.K_minus_1 + eps
        k = self.k_idx + eps
        log_binomial = n * torch.log(n) - k * torch.log(k) - (n - k) * torch.log(n - k + eps)
        one_minus_q = torch.clamp(1 - q, 1e-4, 1)
        q = torch.clamp(q, 1e-4, 1)
        # (log_binomial + k log q + (K-1-k) log(1-q)) / T, rearranged so that only two fused
        # passes touch the (B, K, h, w) tensor: per-pixel terms are divided by T first.
        inverse_t = temperature.reciprocal()
        log_q = torch.log(q) * inverse_t
        log_one_minus_q = torch.log(one_minus_q) * inverse_t
        k_idx = self.k_idx.to(q.dtype)
        logits = torch.addcmul(log_one_minus_q * self.K_minus_1, k_idx, log_q - log_one_minus_q)
        logits = logits.addcmul_(log_binomial.to(q.dtype), inverse_t)  # no second (B, K, h, w)
        if torch.jit.is_tracing():
            # Exported graphs: onnxruntime's Softmax on a non-last axis transposes the whole
            # (B, K, h, w) tensor twice (~10x slower than these reductions).
            logits = (logits - logits.amax(dim=1, keepdim=True)).exp()
            return logits / logits.sum(dim=1, keepdim=True)
        return torch.softmax(logits, dim=1)


class ConditionalLogBinomial(nn.Module):
    """Predicts (q, temperature) per pixel from features + bin embedding, then LogBinomial."""

    def __init__(self, in_channels: int, condition_channels: int, n_bins: int,
                 bottleneck_factor: int, min_temp: float, max_temp: float) -> None:
        super().__init__()
        self.min_temp = min_temp
        self.max_temp = max_temp
        total = in_channels + condition_channels
        self.mlp = nn.Sequential(nn.Conv2d(total, total // bottleneck_factor, 1), nn.GELU(),
                                 nn.Conv2d(total // bottleneck_factor, 4, 1), nn.Softplus())
        self.log_binomial_transform = LogBinomial(n_bins)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w), (B, E, h', w') -> bin probabilities (B, K, h, w).

        The original upsamples the condition to h x w (bilinear, align_corners=True) and
        applies the first 1x1 conv to the concatenation. Both steps are linear and the
        interpolation weights sum to 1, so the condition's share of that conv (with the bias)
        is applied at the condition's own resolution, upsampled and added inside the GEMM of
        the features' share: same values up to rounding, without the (B, E, h, w) upsampled
        copy and the concatenation.
        """
        first_module, gelu, second_module, softplus = self.mlp
        first, second = cast(nn.Conv2d, first_module), cast(nn.Conv2d, second_module)
        channels = features.shape[1]
        projected = pixel_linear(condition, first.weight[:, channels:], first.bias)
        if projected.shape[-2:] != features.shape[-2:]:
            projected = upsample(projected, features.shape[-2:])
        hidden = pixel_linear(features, first.weight[:, :channels], projected)
        params = softplus(pixel_linear(gelu(hidden), second.weight, second.bias)) + 1e-4
        q = params[:, 0:1] / (params[:, 0:1] + params[:, 1:2])
        t = params[:, 2:3] / (params[:, 2:3] + params[:, 3:4])
        temperature = (self.max_temp - self.min_temp) * t + self.min_temp
        return self.log_binomial_transform(q, temperature)


@dataclass
class HeadOutput:
    """One metric head's result at network resolution (B, ., h, w)."""

    depth: torch.Tensor
    bin_centers: torch.Tensor
    probs: torch.Tensor

    @property
    def std(self) -> torch.Tensor:
        """Per-pixel standard deviation of the bin distribution, metres: sqrt(sum P (C - D)^2)."""
        offset = self.bin_centers - self.depth
        # (offset * offset) * probs with the product written in place: two (B, K, h, w)
        # temporaries instead of three, same values (autograd-safe: mul keeps its inputs).
        variance = (offset * offset).mul_(self.probs).sum(1, keepdim=True)
        return variance.clamp_min(0).sqrt()


class MetricHead(nn.Module):
    """One domain's seed regressor, four attractor layers and log-binomial output."""

    def __init__(self, seed_regressor: SeedBinRegressor, attractors: list[AttractorLayer],
                 log_binomial: ConditionalLogBinomial) -> None:
        super().__init__()
        self.seed_regressor = seed_regressor
        self.attractors = nn.ModuleList(attractors)
        self.log_binomial = log_binomial

    def forward(self, bottleneck: torch.Tensor, seed_embedding: torch.Tensor,
                embeddings: list[torch.Tensor], features: torch.Tensor) -> HeadOutput:
        """Run the head.

        Args:
            bottleneck: (B, F, h/32, w/32) conv2 output.
            seed_embedding: (B, E, h/32, w/32) seed projector output.
            embeddings: projector outputs at 1/16, 1/8, 1/4, 1/2.
            features: (B, C, h, w) full-resolution features for the log-binomial.
        """
        state, centers = self.seed_regressor(bottleneck)
        previous = seed_embedding
        for attractor, embedding in zip(self.attractors, embeddings):
            state, centers = attractor(embedding, state, previous)
            previous = embedding
        size = features.shape[-2:]
        probs = self.log_binomial(features, previous)
        centers = upsample(centers.contiguous(), size)  # NCHW, as probs (fast products)
        depth = (probs * centers).sum(dim=1, keepdim=True)
        return HeadOutput(depth, centers, probs)
