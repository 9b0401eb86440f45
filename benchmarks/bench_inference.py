"""Our ZoeDepth forward vs transformers' ZoeDepthForDepthEstimation, same weights, one process.

Usage:
    python benchmarks/bench_inference.py [--models tiny beit_b] [--iterations 8] [--json PATH]

Both models get the same configuration (``hf_config`` below) and the same random weights: ours
are drawn by ``build_model`` and converted to transformers' key names with our own key table
(``zoedepth_ros.model.hf_layout.hf_key_rows``), so the benchmark also checks that mapping.
Both receive the same normalised (1, 3, 384, 512) float32 tensor (the resize/normalise step is
outside both timings) under ``torch.inference_mode``; transformers runs with its default
attention implementation (SDPA) and routes NK with its one-head-per-batch vote. The two are
timed alternately, so the ratio (transformers time / our time) is fair on a loaded machine.

Memory: the Linux peak-RSS mark (VmHWM) is reset before one forward of each model and read
after it; ``forward_peak_mb`` is that peak minus the RSS before the call (tracemalloc does not
see torch's allocations). On CUDA, ``torch.cuda.max_memory_allocated`` is used instead.

transformers is a benchmark-only extra, not a runtime dependency of zoedepth_ros:
    pip install -r benchmarks/requirements-bench.txt
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import re
import sys
from pathlib import Path
from typing import Any

import torch
from common import (  # first: puts the repository on sys.path for a fresh clone
    DEFAULT_OUTPUT_DIR,
    interleaved,
    latency_stats,
    machine_facts,
    versions,
    write_report,
)

from zoedepth_ros.model import ZoeDepth, build_model, get_config
from zoedepth_ros.model.checkpoint import original_state_dict
from zoedepth_ros.model.config import ModelConfig
from zoedepth_ros.model.hf_layout import hf_key_rows

INSTALL_HINT = ('transformers is needed for this benchmark only (not at run time); install '
                'it with:  pip install -r benchmarks/requirements-bench.txt')
TOLERANCE = 1e-4
"""Refvector tolerance: max|ours - theirs| <= 1e-4 * max|theirs| + 1e-6."""


def model_config(name: str) -> ModelConfig:
    """'tiny' (zoedepth_tiny_nk) or 'beit_b' (ZoeD_NK layout on a BEiT-B-384 trunk)."""
    if name == 'tiny':
        return get_config('zoedepth_tiny_nk')
    if name == 'beit_b':
        return dataclasses.replace(get_config('ZoeD_NK'), midas_model_type='DPT_BEiT_B_384')
    if name == 'beit_l':
        return get_config('ZoeD_NK')
    raise SystemExit(f'unknown model {name!r}; expected tiny, beit_b or beit_l')


def hf_config(cfg: ModelConfig) -> Any:
    """transformers ZoeDepthConfig equal to our ModelConfig (BEiT backbone, NK or single head)."""
    from transformers import BeitConfig, ZoeDepthConfig

    trunk = cfg.trunk
    backbone = BeitConfig(
        image_size=trunk.img_size, patch_size=trunk.patch_size, hidden_size=trunk.embed_dim,
        num_hidden_layers=trunk.depth, num_attention_heads=trunk.num_heads,
        intermediate_size=int(trunk.embed_dim * trunk.mlp_ratio), hidden_act='gelu',
        use_relative_position_bias=True, use_absolute_position_embeddings=False,
        use_mean_pooling=True, layer_norm_eps=trunk.layer_norm_eps, layer_scale_init_value=0.1,
        out_indices=[hook + 1 for hook in trunk.hooks], reshape_hidden_states=False)
    bins = [{'name': b.name, 'n_bins': b.n_bins, 'min_depth': b.min_depth,
             'max_depth': b.max_depth} for b in cfg.heads]
    router: dict[str, int] = {}
    if cfg.name == 'ZoeDepthNK':
        router = {'num_patch_transformer_layers': 4, 'patch_transformer_hidden_size': 128,
                  'patch_transformer_intermediate_size': 1024,
                  'patch_transformer_num_attention_heads': 4}
    return ZoeDepthConfig(
        backbone_config=backbone, neck_hidden_sizes=list(trunk.reassemble_features),
        fusion_hidden_size=trunk.features, num_relative_features=trunk.head_features,
        bottleneck_features=trunk.features, bin_configurations=bins,
        bin_centers_type=cfg.bin_centers_type, bin_embedding_dim=cfg.bin_embedding_dim,
        num_attractors=list(cfg.n_attractors), attractor_alpha=int(cfg.attractor_alpha),
        attractor_gamma=int(cfg.attractor_gamma), attractor_kind=cfg.attractor_kind,
        min_temp=cfg.min_temp, max_temp=cfg.max_temp, **router)


def hf_model_from(ours: ZoeDepth) -> torch.nn.Module:
    """transformers model holding exactly our weights (converted with our key table)."""
    from transformers import ZoeDepthForDepthEstimation

    state = original_state_dict(ours)
    rows = hf_key_rows({key: tuple(value.shape) for key, value in state.items()}, 'v5')
    converted = {hf: state[key] if rows_slice is None else state[key][rows_slice]
                 for key, rows_slice, hf in rows}
    model = ZoeDepthForDepthEstimation(hf_config(ours.cfg)).eval()
    missing, unexpected = model.load_state_dict(converted, strict=False)
    if missing or unexpected:
        raise SystemExit(f'key conversion does not fit transformers {len(missing)} missing '
                         f'{missing[:4]}, {len(unexpected)} unexpected {unexpected[:4]}')
    return model


def _proc_kib(field: str) -> int | None:
    try:
        text = Path('/proc/self/status').read_text()
    except OSError:
        return None
    match = re.search(rf'{field}:\s+(\d+) kB', text)
    return int(match[1]) if match else None


def forward_peak_mb(function: Any, device: torch.device) -> tuple[float, str]:
    """Peak memory one call adds above what is resident before it (MiB, method)."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        function()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20, 'cuda_max_allocated'
    before = _proc_kib('VmRSS')
    try:
        Path('/proc/self/clear_refs').write_text('5')  # resets VmHWM to the current RSS
    except OSError:
        before = None
    if before is None:
        import resource

        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        function()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024, 'maxrss_delta'
    function()
    peak = _proc_kib('VmHWM') or before
    return (peak - before) / 1024, 'vmhwm_reset'


def agreement(ours: Any, theirs: Any) -> dict[str, Any]:
    """Metric depth difference against the refvector tolerance, and routing equality."""
    depth = ours.metric_depth[:, 0].float()
    reference = theirs.predicted_depth.float()
    error = (depth - reference).abs().max().item()
    scale = reference.abs().max().item()
    result: dict[str, Any] = {'max_abs_diff_m': error, 'max_rel_diff': error / max(scale, 1e-12),
                              'within_tolerance': error <= TOLERANCE * scale + 1e-6}
    if theirs.domain_logits is not None and ours.domain_logits is not None:
        logits_error = (ours.domain_logits - theirs.domain_logits).abs().max().item()
        result['domain_logits_max_abs_diff'] = logits_error
        result['same_domain'] = bool(torch.equal(ours.domain_logits.argmax(1),
                                                 theirs.domain_logits.argmax(1)))
    return result


def bench_model(name: str, size: tuple[int, int], iterations: int, warmup: int,
                device: torch.device, seed: int, channels_last: bool = False
                ) -> dict[str, Any]:
    """Build both models for ``name``, check agreement, time them alternately."""
    cfg = model_config(name)
    torch.manual_seed(seed)
    ours = build_model(cfg).to(device)
    theirs = hf_model_from(ours).to(device)
    generator = torch.Generator().manual_seed(seed + 1)
    image = torch.rand(1, 3, *size, generator=generator).to(device)
    prepared = (image - 0.5) / 0.5  # both get the same network input
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    with torch.inference_mode():
        check = agreement(ours(prepared, prepared=True), theirs(pixel_values=prepared))
        candidates = {'ours': lambda: ours(prepared, prepared=True),
                      'transformers': lambda: theirs(pixel_values=prepared)}
        if channels_last:  # variant: DepthEstimator(channels_last=True)
            ours_cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
            candidates['ours_channels_last'] = lambda: ours_cl(prepared, prepared=True)
        memory = {key: forward_peak_mb(call, device) for key, call in candidates.items()}
        times, cpu_times = interleaved(candidates, iterations, warmup, sync)
    stats = {key: latency_stats(value) for key, value in times.items()}
    for key in stats:
        stats[key]['forward_peak_mb'], stats[key]['memory_method'] = memory[key]
        stats[key]['cpu_median_ms'] = latency_stats(cpu_times[key])['median_ms']
    ratios = sorted(t / o for t, o in zip(times['transformers'], times['ours']))
    variants = {key: value for key, value in stats.items() if key not in ('ours', 'transformers')}
    return {
        'model': name, 'config': cfg.name, 'backbone': cfg.midas_model_type,
        'embed_dim': cfg.trunk.embed_dim, 'depth': cfg.trunk.depth,
        'parameters': sum(p.numel() for p in ours.parameters()),
        'input_size': list(size), 'batch': 1, 'dtype': 'float32', 'warmup': warmup,
        'ours': stats['ours'], 'transformers': stats['transformers'],
        'ratio_median': stats['transformers']['median_ms'] / stats['ours']['median_ms'],
        'ratio_per_round_median': ratios[len(ratios) // 2],
        'ratio_cpu_time': stats['transformers']['cpu_median_ms'] / stats['ours']['cpu_median_ms'],
        'variants': {key: {**value, 'ratio_median': stats['transformers']['median_ms']
                           / value['median_ms']} for key, value in variants.items()},
        'agreement': check,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=['tiny', 'beit_b'],
                        help='tiny (zoedepth_tiny_nk), beit_b (NK on BEiT-B-384), beit_l')
    parser.add_argument('--size', default='384x512', help='HxW network input')
    parser.add_argument('--iterations', type=int, default=8)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--channels-last', action='store_true',
                        help='also time our model with channels-last convolutions')
    parser.add_argument('--json', default=str(DEFAULT_OUTPUT_DIR / 'inference.json'))
    args = parser.parse_args()
    try:
        import transformers
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.size.lower().split('x'))
    device = torch.device(args.device)
    results = [bench_model(name, (height, width), args.iterations, args.warmup, device,
                           args.seed, args.channels_last) for name in args.models]
    report = {'benchmark': 'inference', **machine_facts(args.device),
              'versions': versions('transformers'), 'transformers': transformers.__version__,
              'results': results}
    path = write_report(args.json, report)
    for row in results:
        print(f'{row["model"]} NK {height}x{width} fp32 {report["device_name"]}: ours '
              f'{row["ours"]["median_ms"]:.0f} ms (p90 {row["ours"]["p90_ms"]:.0f}, '
              f'+{row["ours"]["forward_peak_mb"]:.0f} MiB), transformers '
              f'{row["transformers"]["median_ms"]:.0f} ms (p90 '
              f'{row["transformers"]["p90_ms"]:.0f}, +{row["transformers"]["forward_peak_mb"]:.0f}'
              f' MiB), ratio {row["ratio_median"]:.2f}x (CPU time {row["ratio_cpu_time"]:.2f}x), '
              f'max rel diff '
              f'{row["agreement"]["max_rel_diff"]:.1e} '
              f'({"within" if row["agreement"]["within_tolerance"] else "OUTSIDE"} tolerance)')
    print(f'wrote {path}')
    return 0 if all(row['agreement']['within_tolerance'] for row in results) else 1


if __name__ == '__main__':
    sys.exit(main())
