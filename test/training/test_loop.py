"""The loop functions on their own: train_steps, gradient checkpointing, AMP on CUDA."""

from __future__ import annotations

import pytest
import torch
from tiny_data import TINY_MODEL_N, TinyRGBD

from zoedepth_ros.config import apply_overrides
from zoedepth_ros.model import build_model, get_config
from zoedepth_ros.training.batches import collate, to_sample
from zoedepth_ros.training.config import LossConfig, OptimConfig, ScheduleConfig
from zoedepth_ros.training.distributed import DistInfo
from zoedepth_ros.training.loop import (
    StageLoss,
    enable_gradient_checkpointing,
    evaluate,
    train_steps,
)
from zoedepth_ros.training.optim import build_optimizer, build_scheduler


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(apply_overrides(get_config('zoedepth_tiny_n'), TINY_MODEL_N))


def fixed_batch() -> dict[str, torch.Tensor]:
    data = TinyRGBD(2)
    return collate([to_sample(data[i], 'indoor', (1e-3, 10.0)) for i in range(2)])


def run_epoch(model: torch.nn.Module, steps: int, device: str = 'cpu',
              amp: bool = False) -> list[float]:
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3), ScheduleConfig(), 1)
    scheduler = build_scheduler(optimizer, ScheduleConfig(), steps)
    batches = [fixed_batch()] * steps
    records = train_steps(model, ((0, batch) for batch in batches),
                          StageLoss('metric', LossConfig()), optimizer, scheduler, 0.1,
                          DistInfo(), torch.device(device), amp)
    return [record.loss for record in records]


def test_gradient_checkpointing_changes_nothing_but_memory() -> None:
    plain, checkpointed = tiny_model(), tiny_model()
    enable_gradient_checkpointing(checkpointed)
    assert run_epoch(checkpointed, 3) == pytest.approx(run_epoch(plain, 3), rel=1e-5)
    for (name, a), b in zip(plain.state_dict().items(), checkpointed.state_dict().values(),
                            strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_evaluate_reports_per_image_metrics() -> None:
    model = tiny_model()
    result = evaluate(model, [fixed_batch()], keep_samples=1)
    summary = result.summary()
    assert result.metrics.count == 2 and 0.0 <= summary['a1'] <= 1.0
    assert summary['abs_rel'] > 0 and 'router_accuracy' not in summary
    assert result.samples[0]['pred'].shape == (32, 48)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_amp_on_cuda_trains() -> None:
    losses = run_epoch(tiny_model().cuda(), 4, device='cuda', amp=True)
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_the_std_term_joins_the_metric_loss_when_weighted() -> None:
    model, batch = tiny_model(), fixed_batch()
    plain_total, plain_parts = StageLoss('metric', LossConfig())(model, batch)
    total, parts = StageLoss('metric', LossConfig(std_weight=0.5))(model, batch)
    assert set(plain_parts) == {'silog'} and set(parts) == {'silog', 'std_nll'}
    expected = parts['silog'].value + 0.5 * parts['std_nll'].value
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    assert float(plain_total) == pytest.approx(float(parts['silog'].value), rel=1e-6)
