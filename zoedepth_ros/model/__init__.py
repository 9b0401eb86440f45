"""ZoeDepth models: configuration and presets, the network, checkpoints and the one loader.

``build_model`` builds a network without I/O; :func:`zoedepth_ros.model.loading.load_model` is
the one way from a weights name or file to a ready model. The names below are imported on
first use, so that light submodules (``model.weights``, ``model.config``) load without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    'PRESETS': 'zoedepth_ros.model.config',
    'ModelConfig': 'zoedepth_ros.model.config',
    'get_config': 'zoedepth_ros.model.config',
    'resolve_model_config': 'zoedepth_ros.model.config',
    'DepthOutput': 'zoedepth_ros.model.zoedepth',
    'ZoeDepth': 'zoedepth_ros.model.zoedepth',
    'build_model': 'zoedepth_ros.model.zoedepth',
    'network_size': 'zoedepth_ros.model.zoedepth',
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(_EXPORTS[name]), name)
