"""The one way from a weights name or path to a ready model: :func:`load_model`.

Accepted sources:

- a registry name (``ZoeD_M12_NK``, the bundled ``zoedepth_demo_nk``, ...; see
  :mod:`zoedepth_ros.model.weights`): downloaded once into the cache, or read from the package;
- a ``.pt`` / ``.pth`` / ``.safetensors`` checkpoint in the original ZoeDepth layout;
- a transformers ``Intel/zoedepth-*`` model directory;
- an ``.onnx`` file written by ``zoedepth export`` (runs with onnxruntime);
- with ``random_weights=True`` only: a preset name, a ModelConfig YAML file or a ModelConfig,
  built with random weights. That is an explicit opt-in for tests, benchmarks and training
  from scratch: without it a configuration is refused, never served silently.

The config of a checkpoint is, in order: the one given, the registry's, the transformers
directory's ``config.json``, a ``<checkpoint>.yaml`` beside the file, or the preset whose key
set and shapes equal the checkpoint's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from zoedepth_ros.errors import CheckpointError, ConfigError
from zoedepth_ros.model.checkpoint import (
    UNUSED_INDEX_SUFFIX,
    load_checkpoint,
    load_original_state,
    original_key_shapes,
    read_state_dict,
    refuse_midas_layout,
)
from zoedepth_ros.model.config import (
    PRESETS,
    EfficientNetConfig,
    ModelConfig,
    get_config,
    resolve_model_config,
)
from zoedepth_ros.model.hf_layout import config_from_hf, load_hf_checkpoint, read_hf_config
from zoedepth_ros.model.onnx import OnnxDepthModel
from zoedepth_ros.model.weights import (
    DEMO_MODEL,
    REGISTRY,
    ProgressCallback,
    resolve_weights,
)
from zoedepth_ros.model.zoedepth import ZoeDepth, build_model

CONFIG_SUFFIXES = ('.yaml', '.yml')

Kind = Literal['weights', 'demo', 'onnx', 'random']


@dataclass
class LoadedModel:
    """A ready model and what it is.

    Attributes:
        model: a :class:`ZoeDepth` in eval mode on the CPU, or an :class:`OnnxDepthModel`.
        name: label for logs and reports (registry name or file name).
        kind: 'weights' (trained weights), 'demo' (the bundled synthetic-scene model),
            'onnx' (an exported graph) or 'random' (random weights, opted in).
        source: the file the weights came from ('' for random weights).
    """

    model: ZoeDepth | OnnxDepthModel
    name: str
    kind: Kind
    source: str = ''

    @property
    def warning(self) -> str | None:
        """What a user must be told about this model, or None for trained weights."""
        if self.kind == 'random':
            return (f'{self.name} has RANDOM weights: the depth is meaningless (tests and '
                    'smoke runs only); name trained weights instead')
        if self.kind == 'demo':
            return (f'{self.name} is the bundled demo model, trained on synthetic scenes only: '
                    'on real images its depth is not metric; use ZoeD_M12_NK for real cameras')
        return None

    def torch_model(self) -> ZoeDepth:
        """The model as a torch ``ZoeDepth`` (training, export), refusing an ONNX graph."""
        if isinstance(self.model, OnnxDepthModel):
            raise ConfigError(f'{self.name} is an ONNX graph; this needs torch weights (a '
                              f'checkpoint or registry name)')
        return self.model


def is_config_source(source: str) -> bool:
    """Whether ``source`` names a model configuration (preset or YAML) rather than weights."""
    return source in PRESETS or source.endswith(CONFIG_SUFFIXES)


def load_model(source: str | ModelConfig, config: str | ModelConfig | None = None, *,
               random_weights: bool = False, seed: int | None = 0,
               onnx_providers: list[str] | None = None, threads: int = 0,
               progress: ProgressCallback | None = None) -> LoadedModel:
    """Build the model ``source`` names and load its weights (see the module docstring).

    Args:
        source: registry name, checkpoint file, transformers directory or ``.onnx`` file;
            with ``random_weights`` a preset, ModelConfig YAML or ModelConfig.
        config: model config (preset, YAML or ModelConfig) of a checkpoint that has none.
        random_weights: build ``source`` (a configuration) with random weights.
        seed: seed of the random weights (None: the global torch RNG as it stands).
        onnx_providers: onnxruntime execution providers for an ``.onnx`` source.
        threads: onnxruntime's intra-op threads for an ``.onnx`` source (0: its default).
        progress: download progress callback (bytes so far, total or None).

    Raises:
        CheckpointError: unknown name, unreadable or mismatched weights, a configuration
            without ``random_weights``.
        ConfigError: arguments that contradict each other.
    """
    if isinstance(source, ModelConfig) or (random_weights and is_config_source(source)):
        if not random_weights:
            raise ConfigError('a ModelConfig has no weights; pass random_weights=True')
        if config is not None:
            raise ConfigError('random weights: give the configuration once, as the source')
        return _random(resolve_model_config(source), seed)
    if random_weights:
        raise ConfigError(f'random_weights applies to a preset or ModelConfig YAML; '
                          f'{source!r} names weights')
    if source.endswith('.onnx'):
        if config is not None:
            raise ConfigError('an ONNX file carries its own config; give no model config')
        return LoadedModel(OnnxDepthModel(source, onnx_providers, threads), Path(source).name,
                           'onnx', source)
    if source in PRESETS or (source.endswith(CONFIG_SUFFIXES) and source not in REGISTRY):
        raise CheckpointError(
            f'{source!r} is a model configuration without weights. Name trained weights (e.g. '
            f'ZoeD_M12_NK, {DEMO_MODEL}, or a checkpoint file), or opt in to random weights '
            '(--random-weights, or the node parameter random_weights) for a smoke test')
    path = resolve_weights(source, progress=progress)
    spec = REGISTRY.get(source)
    model = _load_weights(path, config, spec.config_source(path) if spec else None)
    kind: Kind = 'demo' if source == DEMO_MODEL else 'weights'
    return LoadedModel(model, source if spec else path.name, kind, str(path))


def _random(cfg: ModelConfig, seed: int | None) -> LoadedModel:
    if seed is None:
        model = build_model(cfg)
    else:
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            model = build_model(cfg)
        finally:
            torch.random.set_rng_state(state)
    return LoadedModel(model, f'{cfg.name} ({_trunk_label(cfg)}, random weights)', 'random')


def _trunk_label(cfg: ModelConfig) -> str:
    trunk = cfg.trunk
    if isinstance(trunk, EfficientNetConfig):
        return f'{cfg.midas_model_type} x{trunk.width:g}'
    return f'{trunk.embed_dim}-wide'


def _load_weights(path: Path, config: str | ModelConfig | None,
                  registered: str | None) -> ZoeDepth:
    if config is None:
        config = registered
    if path.is_dir():
        cfg = resolve_model_config(config) if config else config_from_hf(read_hf_config(path))
        return load_hf_checkpoint(build_model(cfg, initialize=False), path).eval()
    if config is None and path.with_suffix('.yaml').is_file():
        config = str(path.with_suffix('.yaml'))
    if config is not None:
        return load_checkpoint(build_model(resolve_model_config(config), initialize=False),
                               path).eval()
    state = read_state_dict(path)
    refuse_midas_layout(state, str(path))
    model = build_model(guess_config(state), initialize=False)
    load_original_state(model, state, source=str(path))
    return model.eval()


def _may_fit(cfg: ModelConfig, wanted: dict[str, tuple[int, ...]]) -> bool:
    """Cheap filter before building a candidate on the meta device: the trunk's width."""
    trunk = cfg.trunk
    if isinstance(trunk, EfficientNetConfig):
        bottleneck = wanted.get('core.core.scratch.layer4_rn.weight', (0,))
        return bottleneck[0] == trunk.bottleneck_features
    return wanted.get('core.core.pretrained.model.cls_token', (0,))[-1] == trunk.embed_dim


def guess_config(state: dict[str, torch.Tensor]) -> ModelConfig:
    """The preset whose original-layout key set and shapes equal those of ``state``."""
    wanted = {k: tuple(v.shape) for k, v in state.items()
              if not k.endswith(UNUSED_INDEX_SUFFIX)}
    for name in PRESETS:
        cfg = get_config(name)
        if not _may_fit(cfg, wanted):
            continue
        with torch.device('meta'):
            candidate = ZoeDepth(cfg)
        if original_key_shapes(candidate) == wanted:
            return cfg
    raise CheckpointError(
        f'the checkpoint ({len(wanted)} keys) matches none of the presets {sorted(PRESETS)}; '
        f'pass its model config (a YAML file of ModelConfig fields) with --config')
