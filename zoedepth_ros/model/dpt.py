"""DPT decoder of MiDaS v3.1: reassemble, fusion and the relative-depth head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoedepth_ros.model.config import BackboneConfig


def upsample(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize with align_corners=True, as everywhere inside the original network."""
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=True)


class Reassemble(nn.Module):
    """1x1 projection of a token map followed by a resampling to the stage's resolution."""

    def __init__(self, dim: int, channels: int, stage: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(dim, channels, kernel_size=1)
        if stage == 0:
            self.resample: nn.Module = nn.ConvTranspose2d(channels, channels, 4, stride=4)
        elif stage == 1:
            self.resample = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        elif stage == 2:
            self.resample = nn.Identity()
        else:
            self.resample = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resample(self.project(x))


class ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x))))."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FusionBlock(nn.Module):
    """Adds the refined skip, refines, resizes (to ``size`` or x2) and projects (1x1 conv to
    ``out_features``, default ``features``)."""

    def __init__(self, features: int, out_features: int | None = None) -> None:
        super().__init__()
        self.skip_unit = ResidualConvUnit(features)
        self.main_unit = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, out_features or features, kernel_size=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None,
                size: torch.Size | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.skip_unit(skip)
        x = self.main_unit(x)
        if size is None:
            size = torch.Size((x.shape[-2] * 2, x.shape[-1] * 2))
        # The original projects after resizing; a 1x1 conv commutes with bilinear resizing
        # (weights sum to 1), so projecting first gives the same values at 1/4 of the work.
        return upsample(self.out_conv(x), size)


@dataclass
class DecoderOutput:
    """Decoder results. Shapes for an h x w network input.

    Attributes:
        relative_depth: (B, h, w) MiDaS disparity-like output (>= 0, arbitrary scale).
        head_features: (B, head_features, h, w) activation before the last 1x1 conv.
        bottleneck: (B, F, h/32, w/32) layer4_rn output.
        fused: refinenet4..1 outputs at 1/16, 1/8, 1/4, 1/2.
    """

    relative_depth: torch.Tensor
    head_features: torch.Tensor
    bottleneck: torch.Tensor
    fused: list[torch.Tensor]


def relative_head(features: int, head_features: int, align_corners: bool) -> nn.Sequential:
    """MiDaS's output head: [conv3x3 F->F/2, x2 bilinear, conv3x3 F/2->head_features, ReLU,
    conv1x1 ->1, ReLU, Identity] (the index layout of the original checkpoints). The DPT
    decoders resize with align_corners=True, MiDaS v2.1 small with False."""
    return nn.Sequential(
        nn.Conv2d(features, features // 2, 3, padding=1),
        nn.Upsample(scale_factor=2, mode='bilinear', align_corners=align_corners),
        nn.Conv2d(features // 2, head_features, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(head_features, 1, kernel_size=1),
        nn.ReLU(),
        nn.Identity(),
    )


class DPTDecoder(nn.Module):
    """Reassemble + RefineNet fusion + relative-depth head."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        features = cfg.features
        self.reassemble = nn.ModuleList(
            Reassemble(cfg.embed_dim, channels, stage)
            for stage, channels in enumerate(cfg.reassemble_features))
        self.layer_rn = nn.ModuleList(
            nn.Conv2d(channels, features, 3, padding=1, bias=False)
            for channels in cfg.reassemble_features)
        self.fusion = nn.ModuleList(FusionBlock(features) for _ in range(4))
        self.head = relative_head(features, cfg.head_features, align_corners=True)

    def forward(self, maps: list[torch.Tensor]) -> DecoderOutput:
        """Four (B, D, h/16, w/16) maps -> DecoderOutput."""
        layers = [rn(stage(x)) for rn, stage, x in zip(self.layer_rn, self.reassemble, maps)]
        path4 = self.fusion[3](layers[3], size=layers[2].shape[-2:])
        path3 = self.fusion[2](path4, layers[2], size=layers[1].shape[-2:])
        path2 = self.fusion[1](path3, layers[1], size=layers[0].shape[-2:])
        path1 = self.fusion[0](path2, layers[0])
        head_features = self.head[:4](path1)
        relative = self.head[4:](head_features)
        return DecoderOutput(relative.squeeze(1), head_features, layers[3],
                             [path4, path3, path2, path1])
