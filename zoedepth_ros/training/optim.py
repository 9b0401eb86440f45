"""AdamW parameter groups with per-part learning rates, OneCycleLR, gradient clipping.

Parts are found from parameter names so that both our module tree and the original one work:

========== ============================================================ ===================
part       names                                                        lr factor
========== ============================================================ ===================
pos_bias   ``*relative_position_bias_table*``                           ``pos_bias_lr_factor``
encoder    ``encoder.*`` / ``core.core.pretrained.*`` (trunk, readouts) ``encoder_lr_factor``
decoder    ``decoder.*`` / ``core.core.scratch.*``                      ``decoder_lr_factor``
router     ``router.*`` / ``patch_transformer.*``, ``mlp_classifier.*``   ``router_lr_factor``
heads      everything else (bins heads, bottleneck conv, projectors)    1
========== ============================================================ ===================

The original trains the router with the heads' rate (``router_lr_factor`` 1). Its post-norm
transformer is unstable at the high rates of a from-scratch run; the demo recipe lowers it.
"""

from __future__ import annotations

from torch import nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import OneCycleLR

from zoedepth_ros.errors import ConfigError
from zoedepth_ros.training.config import OptimConfig, ScheduleConfig

PART_NAMES: tuple[str, ...] = ('encoder', 'pos_bias', 'decoder', 'router', 'heads')
ENCODER_PREFIXES = ('encoder.', 'core.core.pretrained.')
DECODER_PREFIXES = ('decoder.', 'core.core.scratch.')
ROUTER_PREFIXES = ('router.', 'patch_transformer.', 'mlp_classifier.')


def part_of(name: str) -> str:
    """The part (see module docstring) a parameter name belongs to."""
    name = name.removeprefix('module.')
    if 'relative_position_bias_table' in name:
        return 'pos_bias'
    if name.startswith(ENCODER_PREFIXES):
        return 'encoder'
    if name.startswith(DECODER_PREFIXES):
        return 'decoder'
    if name.startswith(ROUTER_PREFIXES):
        return 'router'
    return 'heads'


def lr_factors(cfg: OptimConfig, num_heads: int) -> dict[str, float]:
    """Learning-rate factor per part; the decoder's default depends on the number of heads."""
    decoder = cfg.decoder_lr_factor
    if decoder is None:
        decoder = 0.1 if num_heads > 1 else 1.0
    return {'encoder': cfg.encoder_lr_factor, 'pos_bias': cfg.pos_bias_lr_factor,
            'decoder': decoder, 'router': cfg.router_lr_factor, 'heads': 1.0}


def build_param_groups(model: nn.Module, cfg: OptimConfig,
                       num_heads: int) -> list[dict[str, object]]:
    """AdamW parameter groups (trainable parameters only), one per non-empty part.

    Each group carries ``name`` and ``lr`` = cfg.lr x its factor; weight decay applies to all
    groups, as in the original.
    """
    factors = lr_factors(cfg, num_heads)
    params: dict[str, list[nn.Parameter]] = {part: [] for part in PART_NAMES}
    for name, param in model.named_parameters():
        if param.requires_grad:
            params[part_of(name)].append(param)
    groups = [{'name': part, 'params': params[part], 'lr': cfg.lr * factors[part]}
              for part in PART_NAMES if params[part] and factors[part] > 0]
    if not groups:
        raise ConfigError('no trainable parameters (every part is frozen or has lr factor 0)')
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig, schedule: ScheduleConfig,
                    num_heads: int) -> AdamW:
    """AdamW over :func:`build_param_groups`, beta1 starting at the schedule's max momentum."""
    beta1 = schedule.max_momentum if schedule.cycle_momentum else 0.9
    return AdamW(build_param_groups(model, cfg, num_heads), lr=cfg.lr,
                 betas=(beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: AdamW, schedule: ScheduleConfig, total_steps: int) -> OneCycleLR:
    """OneCycleLR with each group's own maximum lr, stepped once per optimiser step."""
    schedule.check(total_steps)
    return OneCycleLR(
        optimizer, max_lr=[group['lr'] for group in optimizer.param_groups],
        total_steps=total_steps, pct_start=schedule.pct_start, anneal_strategy=schedule.anneal,
        cycle_momentum=schedule.cycle_momentum, base_momentum=schedule.base_momentum,
        max_momentum=schedule.max_momentum, div_factor=schedule.div_factor,
        final_div_factor=schedule.final_div_factor, three_phase=False)
