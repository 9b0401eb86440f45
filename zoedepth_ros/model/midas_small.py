"""MiDaS v2.1 small: EfficientNet-Lite3 encoder (timm) and the "expand" RefineNet decoder.

The encoder is timm's ``tf_efficientnet_lite3`` (TF "same" padding, ReLU6, BatchNorm) cut into
MiDaS's four stages; its parameter names and values equal those of the geffnet encoder MiDaS
loads, so ``midas_v21_small_256.pt`` and ZoeDepth checkpoints of this backbone load as they
are. The decoder has no reassemble stage: 3x3 convolutions take the four stages to 64, 128,
256 and 512 channels, and every fusion block halves its width in its 1x1 output projection
(except the last) and upsamples by 2.
"""

from __future__ import annotations

from typing import cast

import timm
import torch
from timm.models.efficientnet import BN_EPS_TF_DEFAULT, EfficientNet, _gen_efficientnet_lite
from torch import nn

from zoedepth_ros.model.config import EfficientNetConfig
from zoedepth_ros.model.dpt import DecoderOutput, FusionBlock, relative_head

LITE3_CHANNEL_MULTIPLIER = 1.2
LITE3_DEPTH_MULTIPLIER = 1.4


def efficientnet_lite3(width: float = 1.0) -> EfficientNet:
    """timm's ``tf_efficientnet_lite3`` (never downloads), its channels scaled by ``width``.

    Width 1.0 is the public builder; other widths use the same generator with a scaled
    channel multiplier (stem and head widths stay fixed, as for every Lite model).
    """
    if width == 1.0:
        # create_model is typed to return Module; this name builds an EfficientNet
        return cast(EfficientNet, timm.create_model('tf_efficientnet_lite3', pretrained=False))
    return _gen_efficientnet_lite(
        'tf_efficientnet_lite3', channel_multiplier=LITE3_CHANNEL_MULTIPLIER * width,
        depth_multiplier=LITE3_DEPTH_MULTIPLIER, pretrained=False, bn_eps=BN_EPS_TF_DEFAULT,
        pad_type='same')


class EfficientNetEncoder(nn.Module):
    """Image -> four feature maps at 1/4, 1/8, 1/16 and 1/32 (MiDaS's ``pretrained``).

    Stages as MiDaS's ``_make_efficientnet_backbone``: layer1 = stem conv, BatchNorm +
    ReLU6 (timm fuses the activation into the norm; index 2 stays an empty slot so the keys
    match), blocks 0-1; layer2 = block 2; layer3 = blocks 3-4; layer4 = blocks 5-6. The
    classifier head of the ImageNet model is dropped.

    BatchNorm always runs in eval mode: the running statistics come from the checkpoint and
    are never updated (the small batches of depth fine-tuning would spoil them); the affine
    parameters still train.

    Attributes:
        channels: output channels of layer1..layer4 (32, 48, 136, 384 at width 1.0).
    """

    def __init__(self, cfg: EfficientNetConfig) -> None:
        super().__init__()
        net = efficientnet_lite3(cfg.width)
        self.layer1 = nn.Sequential(net.conv_stem, net.bn1, nn.Identity(), *net.blocks[0:2])
        self.layer2 = nn.Sequential(*net.blocks[2:3])
        self.layer3 = nn.Sequential(*net.blocks[3:5])
        self.layer4 = nn.Sequential(*net.blocks[5:7])
        by_module = {info['module']: info['num_chs'] for info in net.feature_info}
        self.channels = tuple(by_module[f'blocks.{i}'] for i in (1, 2, 4, 6))

    freeze_batchnorm = True
    """Keep BatchNorm in eval mode in ``train()`` (fine-tuning pretrained weights, the
    original recipe); set False to learn the statistics when training from scratch."""

    def train(self, mode: bool = True) -> EfficientNetEncoder:
        super().train(mode)
        if self.freeze_batchnorm:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised image (B, 3, H, W) -> [layer1, layer2, layer3, layer4] outputs."""
        maps = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            maps.append(x)
        return maps


class MidasSmallDecoder(nn.Module):
    """MidasNet_small's ``scratch`` (expand=True): layer_rn, four fusion blocks, output head.

    The head is [conv3x3 F->F/2, x2 bilinear (align_corners=False, MiDaS's ``Interpolate``
    default, unlike the DPT head), conv3x3 F/2->head_features, ReLU, conv1x1 ->1, ReLU,
    Identity]; the fusion blocks resize x2 with align_corners=True.
    """

    def __init__(self, cfg: EfficientNetConfig, in_channels: tuple[int, ...]) -> None:
        super().__init__()
        stages = cfg.stage_features
        outputs = (stages[0],) + tuple(width // 2 for width in stages[1:])
        features = cfg.features
        self.layer_rn = nn.ModuleList(
            nn.Conv2d(channels, width, 3, padding=1, bias=False)
            for channels, width in zip(in_channels, stages))
        self.fusion = nn.ModuleList(
            FusionBlock(width, out) for width, out in zip(stages, outputs))
        self.head = relative_head(features, cfg.head_features, align_corners=False)

    def forward(self, maps: list[torch.Tensor]) -> DecoderOutput:
        """Encoder maps at 1/4..1/32 -> DecoderOutput (every fusion block upsamples x2)."""
        layers = [rn(x) for rn, x in zip(self.layer_rn, maps)]
        path4 = self.fusion[3](layers[3])
        path3 = self.fusion[2](path4, layers[2])
        path2 = self.fusion[1](path3, layers[1])
        path1 = self.fusion[0](path2, layers[0])
        head_features = self.head[:4](path1)
        relative = self.head[4:](head_features)
        return DecoderOutput(relative.squeeze(1), head_features, layers[3],
                             [path4, path3, path2, path1])
