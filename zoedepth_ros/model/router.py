"""Indoor/outdoor router of ZoeD_NK (a small transformer over the bottleneck) and the domain
vocabulary: heads are named ``nyu`` / ``kitti`` inside the model (as in the released weights)
and ``indoor`` / ``outdoor`` to users; both name the same router class index."""

from __future__ import annotations

import math

import torch
from torch import nn

from zoedepth_ros.errors import ConfigError

DOMAINS = ('nyu', 'kitti')
"""Head names in router class order, fixed by the released weights: 0 = nyu, 1 = kitti."""
DOMAIN_NAMES = ('indoor', 'outdoor')
"""User-facing names of the same classes: 0 = indoor, 1 = outdoor."""


def domain_index(label: str | None) -> int:
    """Class index of a head or domain name ('nyu'/'indoor' 0, 'kitti'/'outdoor' 1), else -1."""
    for names in (DOMAINS, DOMAIN_NAMES):
        if label in names:
            return names.index(label)
    return -1


def head_name(label: str) -> str:
    """'nyu' or 'kitti' for a head or domain name.

    Raises:
        ConfigError: ``label`` names no domain.
    """
    index = domain_index(label)
    if index < 0:
        raise ConfigError(f'unknown domain {label!r}; expected indoor or outdoor')
    return DOMAINS[index]


def domain_name(label: str | int) -> str:
    """'indoor' or 'outdoor' for a head name, domain name or class index."""
    return DOMAIN_NAMES[label if isinstance(label, int) else domain_index(label)]


def sinusoidal_encoding(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) encoding: sines of all frequencies in the first half, cosines second."""
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    index = torch.arange(0, dim, 2, dtype=torch.float32, device=device).unsqueeze(0)
    angle = position * torch.exp(index * (-math.log(10000.0) / dim))
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


class DomainRouter(nn.Module):
    """Bottleneck features -> domain logits (B, 2)."""

    def __init__(self, in_channels: int, dim: int = 128, heads: int = 4, layers: int = 4,
                 feedforward: int = 1024) -> None:
        super().__init__()
        self.embedding = nn.Conv2d(in_channels, dim, kernel_size=1)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=feedforward)
        self.transformer = nn.TransformerEncoder(layer, num_layers=layers,
                                                 enable_nested_tensor=False)
        self.classifier = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 2))

    def forward(self, bottleneck: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> logits (B, 2)."""
        tokens = self.embedding(bottleneck).flatten(2)
        # Upstream quirk: the class token is a constant zero vector, not a parameter.
        tokens = nn.functional.pad(tokens, (1, 0)).permute(2, 0, 1)
        tokens = tokens + sinusoidal_encoding(tokens.shape[0], tokens.shape[2],
                                              tokens.device).unsqueeze(1).to(tokens.dtype)
        return self.classifier(self.transformer(tokens)[0])


def route(logits: torch.Tensor, routing: str) -> torch.Tensor:
    """Domain index per sample (B,) int64.

    ``sample``: argmax per image (a batch may mix domains). ``batch``: the original rule,
    softmax of the logits summed over the batch, one domain for every image.
    """
    if routing == 'sample':
        return logits.argmax(dim=1)
    vote = torch.softmax(logits.sum(dim=0), dim=-1).argmax()
    return vote.expand(logits.shape[0])
