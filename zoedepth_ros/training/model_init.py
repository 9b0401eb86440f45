"""Building the model a training run starts from (``model.init`` of a TrainConfig).

``scratch`` random weights from the run's seeded RNG; ``midas:`` a MiDaS checkpoint's core
(v3.1 BEiT or v2.1 small); ``relative:`` the core of a ZoeDepth checkpoint (a relative stage's
result: its heads are dropped); ``zoedepth:`` the full model.
"""

from __future__ import annotations

from typing import cast

import torch

from zoedepth_ros.config import apply_overrides
from zoedepth_ros.model.bins import ConditionalLogBinomial
from zoedepth_ros.model.checkpoint import (
    CORE_PREFIXES,
    load_backbone_checkpoint,
    load_core_state,
)
from zoedepth_ros.model.config import resolve_model_config
from zoedepth_ros.model.loading import load_model
from zoedepth_ros.model.weights import resolve_weights
from zoedepth_ros.model.zoedepth import ZoeDepth
from zoedepth_ros.training.config import TrainConfig


def build_training_model(cfg: TrainConfig) -> ZoeDepth:
    """Model from the preset (or model YAML) + overrides, initialised as ``model.init`` says.

    ``scratch``, ``midas:`` and ``relative:`` build the configuration with random weights from
    the run's seeded RNG (``midas:`` then loads a MiDaS core, ``relative:`` the core of a
    ZoeDepth checkpoint with its own config); ``zoedepth:`` loads full weights.
    """
    section = cfg.model
    model_cfg = apply_overrides(resolve_model_config(section.preset), list(section.overrides))
    kind, _, path = section.init.partition(':')
    if kind == 'zoedepth':
        model = load_model(path, model_cfg).torch_model()
    else:
        model = load_model(model_cfg, random_weights=True, seed=None).torch_model()
        if section.batchnorm == 'train' and hasattr(model.encoder, 'freeze_batchnorm'):
            model.encoder.freeze_batchnorm = False
        if kind == 'midas':  # a file, or a registry name such as midas_v21_small_256
            load_backbone_checkpoint(model, resolve_weights(path))
        elif kind == 'relative':
            copy_core(load_model(path).torch_model(), model, path)
    if section.reset_bin_probabilities:
        reset_bin_probabilities(model)
    return model


def reset_bin_probabilities(model: ZoeDepth, std: float = 1e-3) -> int:
    """Re-initialise the last 1x1 conv of every ConditionalLogBinomial MLP in ``model``
    (weights ~N(0, ``std``) from the global RNG, bias 0): its four softplus outputs become
    equal, so q = t = 0.5 at every pixel. Returns how many layers were reset."""
    layers = [cast(torch.nn.Conv2d, module.mlp[2]) for module in model.modules()
              if isinstance(module, ConditionalLogBinomial)]
    with torch.no_grad():
        for layer in layers:
            torch.nn.init.normal_(layer.weight, std=std)
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)
    return len(layers)


def copy_core(source: ZoeDepth, target: ZoeDepth, name: str) -> None:
    """Copy the relative-depth core (encoder + decoder) of ``source`` into ``target``.

    The heads of ``target`` keep their weights, so a relative stage's checkpoint (one head)
    starts a metric_nk stage (two heads and a router).
    """
    core = {k: v for k, v in source.state_dict().items() if k.startswith(CORE_PREFIXES)}
    load_core_state(target, core, name)
