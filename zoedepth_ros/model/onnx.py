"""ONNX export of a ZoeDepth model and an onnxruntime stand-in for it in DepthEstimator.

The exported graph has one input and three or four outputs, all at a fixed network size h x w
chosen at export time (for BEiT trunks the relative-position bias is precomputed for that
token grid and stored as constants, so no Python-side cache is traced; MiDaS v2.1 small's
"same" padding is fixed for that size too):

- ``image``: (B, 3, h, w) float32 RGB in [0, 1] (normalisation happens inside the graph).
- ``depth``: (B, 1, h, w) metres; ``std``: (B, 1, h, w) metres.
- ``domain_index``: (B,) int64, 0 = nyu/indoor, 1 = kitti/outdoor.
- ``domain_logits``: (B, 2) router logits (NK models only).

For ZoeD_NK with ``domain='auto'`` both heads are computed and each sample picks its head with
``torch.where`` (per-sample routing inside the graph); a forced domain exports one head only.
The batch axis is dynamic. Export parameters are stored in the ONNX metadata (``zoedepth.*``)
and read back by :class:`OnnxDepthModel`, which DepthEstimator uses as its model when given a
``.onnx`` file (``model.loading.load_model`` / ``DepthEstimator.from_pretrained('x.onnx')``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoedepth_ros.config import from_dict, to_dict
from zoedepth_ros.errors import CheckpointError, ConfigError
from zoedepth_ros.io.atomic import atomic_path
from zoedepth_ros.model.config import ModelConfig
from zoedepth_ros.model.encoder import (
    BeitEncoder,
    gen_relative_position_index,
    resize_relative_position_table,
)
from zoedepth_ros.model.router import head_name
from zoedepth_ros.model.zoedepth import ZoeDepth, network_size

OPSET = 17


def _head(domain: str) -> str | None:
    """The head a ``domain`` option forces ('auto': None, routed)."""
    return None if domain == 'auto' else head_name(domain)


class ExportGraph(nn.Module):
    """The traced module: fixed-size forward returning plain tensors (see module docstring)."""

    def __init__(self, model: ZoeDepth, size: tuple[int, int], domain: str | None) -> None:
        super().__init__()
        self.model = model
        self.size = size
        self.domain = domain

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image, domain=self.domain, routing='sample', size=self.size)
        outputs: tuple[torch.Tensor, ...] = (out.metric_depth, out.depth_std, out.domain_index)
        if out.domain_logits is not None:
            outputs += (out.domain_logits,)
        return outputs


@contextlib.contextmanager
def fixed_attention_bias(graph: ExportGraph) -> Iterator[None]:
    """Serve the encoder's relative-position bias from buffers prepared for ``graph.size``.

    The per-block tables are resized once for the token grid and registered, with the shared
    (N, N) index, as buffers of ``graph``: the traced graph gathers the bias from them (a
    constant subgraph onnxruntime folds at load time) instead of storing 24 (heads, N, N)
    tensors, and no Python-side cache is consulted. The original method is restored after.
    Encoders without attention (MiDaS v2.1 small) need nothing: the context does nothing.
    """
    encoder = graph.model.encoder
    if not isinstance(encoder, BeitEncoder):
        yield
        return
    patch = encoder.cfg.patch_size
    fixed = (graph.size[0] // patch, graph.size[1] // patch)
    window = encoder.cfg.img_size // patch
    blocks = encoder.backbone.blocks
    with torch.no_grad():
        for i in range(len(blocks)):
            table = encoder.block_attention(i).relative_position_bias_table
            graph.register_buffer(f'bias_table_{i}',
                                  resize_relative_position_table(table, window, fixed).clone())
        graph.register_buffer('bias_index', gen_relative_position_index(fixed).view(-1).clone())
    tokens = fixed[0] * fixed[1] + 1

    def precomputed(block: int, grid: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        if tuple(grid) != fixed:
            raise ConfigError(f'exported graph is fixed to a {fixed} token grid, got {grid}')
        table = getattr(graph, f'bias_table_{block}')
        bias = table[graph.bias_index].view(tokens, tokens, -1).permute(2, 0, 1)
        return bias.to(dtype)

    encoder.relative_position_bias = precomputed  # type: ignore[method-assign]
    try:
        yield
    finally:
        del encoder.relative_position_bias
        for i in range(len(blocks)):
            delattr(graph, f'bias_table_{i}')
        delattr(graph, 'bias_index')


def export_onnx(model: ZoeDepth, path: str | os.PathLike[str], height: int | None = None,
                width: int | None = None, domain: str = 'auto', name: str = '') -> Path:
    """Export ``model`` at a fixed network size to an ONNX file (written atomically).

    Args:
        model: the network (weights loaded); left unchanged.
        path: output ``.onnx`` file.
        height, width: network input size, multiples of 32 (default: ``cfg.img_size``).
        domain: 'auto' (router inside the graph), 'indoor' or 'outdoor' (one head).
        name: label stored in the metadata.
    """
    head = _head(domain)
    if head is not None and head not in model.domains:
        raise ConfigError(f'domain {domain!r} is not a head of this model {model.domains}')
    size = (height or model.cfg.img_size[0], width or model.cfg.img_size[1])
    if size[0] % 32 or size[1] % 32 or min(size) <= 0:
        raise ConfigError(f'export size must be positive multiples of 32, got {size}')
    has_router = model.router is not None
    output_names = ['depth', 'std', 'domain_index'] + (['domain_logits'] if has_router else [])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    graph = ExportGraph(model, size, head)
    example = torch.rand(1, 3, *size, device=device)
    try:
        with atomic_path(path) as tmp, fixed_attention_bias(graph), torch.no_grad():
            torch.onnx.export(
                graph, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                do_constant_folding=False, input_names=['image'], output_names=output_names,
                dynamic_axes={n: {0: 'batch'} for n in ['image', *output_names]})
            _write_metadata(str(tmp), {
                'config': json.dumps(to_dict(model.cfg)), 'height': size[0], 'width': size[1],
                'domain': domain, 'name': name or model.cfg.name,
                'outputs': ','.join(output_names)})
    finally:
        model.train(was_training)
    return Path(path)


def _write_metadata(path: str, values: dict[str, Any]) -> None:
    import onnx  # optional: only exporting needs it

    proto = onnx.load(path)
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f'zoedepth.{key}', str(value)
    onnx.save(proto, path)


@dataclass
class OnnxOutput:
    """The part of ``DepthOutput`` DepthEstimator reads, from an onnxruntime run."""

    metric_depth: torch.Tensor
    depth_std: torch.Tensor
    domain_index: torch.Tensor
    domain_logits: torch.Tensor | None
    heads: None = None
    """A graph returns the routed head only (no ``all_heads``)."""


class OnnxDepthModel:
    """An exported graph behind the ``ZoeDepth`` call interface DepthEstimator uses.

    Args:
        path: ``.onnx`` file written by :func:`export_onnx`.
        providers: onnxruntime execution providers (default: CPU; e.g.
            ``['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']``).
    """

    def __init__(self, path: str | os.PathLike[str], providers: list[str] | None = None,
                 threads: int = 0) -> None:
        import onnxruntime  # optional: only running an exported graph needs it

        path = self.path = Path(path)
        if not path.is_file():
            raise CheckpointError(f'ONNX file {path} does not exist; create it with '
                                  f'`zoedepth export --onnx {path}`')
        options = onnxruntime.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=providers or ['CPUExecutionProvider'])
        except Exception as err:  # onnxruntime raises its own exception types
            raise CheckpointError(f'onnxruntime cannot load {path}: {err}') from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if 'zoedepth.config' not in meta:
            raise CheckpointError(f'{path} was not written by `zoedepth export` (no zoedepth '
                                  f'metadata); re-export it')
        self.cfg = from_dict(ModelConfig, json.loads(meta['zoedepth.config']))
        self.size = (int(meta['zoedepth.height']), int(meta['zoedepth.width']))
        self.exported_domain = meta['zoedepth.domain']
        self.outputs = meta['zoedepth.outputs'].split(',')
        self.path = path

    @property
    def domains(self) -> tuple[str, ...]:
        head = _head(self.exported_domain)
        return (head,) if head else tuple(conf.name for conf in self.cfg.heads)

    def eval(self) -> OnnxDepthModel:
        return self

    def to(self, *args: object, **kwargs: object) -> OnnxDepthModel:
        return self  # onnxruntime places the work by its providers

    def __call__(self, image: torch.Tensor, domain: str | None = None, routing: str = 'sample',
                 keep_aspect: bool | None = None, with_std: bool = True) -> OnnxOutput:
        """RGB (B, 3, H, W) in [0, 1] -> outputs at the exported size (see ZoeDepth.forward).

        The image is stretched to the exported size; ``keep_aspect=True`` (DepthEstimator's
        keep-aspect presets) is accepted only when it would give that size anyway. The graph
        always computes the std (``with_std`` is accepted for the same call interface).
        """
        if domain is not None and self.domains != (domain,):
            raise ConfigError(f'{self.path.name} was exported with domain='
                              f'{self.exported_domain}; export it with --domain for a fixed '
                              f'head, or use domain auto')
        if routing != 'sample' and len(self.domains) > 1:
            raise ConfigError('the ONNX graph routes per sample; routing="batch" needs torch')
        wanted = network_size(image.shape[-2], image.shape[-1], self.cfg.img_size, True)
        if keep_aspect and wanted != self.size:
            raise ConfigError(f'keep-aspect preprocessing needs a {wanted} network input but '
                              f'{self.path.name} is fixed to {self.size}; re-export with '
                              f'--height {wanted[0]} --width {wanted[1]} or use preprocess eval')
        if tuple(image.shape[-2:]) != self.size:
            image = F.interpolate(image, size=self.size, mode='bilinear', align_corners=True)
        feeds = {'image': image.detach().float().cpu().contiguous().numpy()}
        values = dict(zip(self.outputs, self.session.run(self.outputs, feeds)))
        tensors = {key: torch.from_numpy(value).to(image.device) for key, value in values.items()}
        return OnnxOutput(tensors['depth'], tensors['std'], tensors['domain_index'],
                          tensors.get('domain_logits'))
