"""Build the node's DepthEstimator from its configuration (weights name, preset or file)."""

from __future__ import annotations

from typing import Any

from zoedepth_ros.node_config import NodeConfig


def load_estimator(cfg: NodeConfig) -> tuple[Any, bool]:
    """The DepthEstimator of ``cfg`` and whether its weights are random (a bare preset)."""
    from zoedepth_ros.inference import DepthEstimator, resolve_config
    from zoedepth_ros.model import PRESETS

    options = dict(preprocess=cfg.preprocess, flip=cfg.flip, domain=cfg.domain)
    if cfg.onnx_file:  # pre/post-processing on the CPU, the graph where the providers say
        return DepthEstimator.from_onnx(cfg.onnx_file, cfg.providers or None, **options), False
    options.update(device=cfg.device, precision=cfg.precision, compile=cfg.compile)
    is_config = cfg.model in PRESETS or cfg.model.endswith(('.yaml', '.yml'))
    if cfg.checkpoint:
        config = cfg.model if is_config else None
        return DepthEstimator.from_pretrained(cfg.checkpoint, config=config, **options), False
    if is_config:
        return DepthEstimator.from_config(resolve_config(cfg.model), **options), True
    return DepthEstimator.from_pretrained(cfg.model, **options), False
