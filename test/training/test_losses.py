"""Each loss against hand computation, its invariances, and its all-invalid behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoedepth_ros.training.losses import (
    gradient_matching_loss,
    router_loss,
    silog_loss,
    ssi_least_squares_loss,
    ssi_trimmed_loss,
)


def test_silog_matches_formula() -> None:
    target = torch.tensor([1.0, 2.0, 4.0, 8.0]).reshape(1, 1, 2, 2)
    pred = torch.tensor([1.5, 2.0, 3.0, 8.0]).reshape(1, 1, 2, 2)
    mask = torch.tensor([True, True, True, False]).reshape(1, 1, 2, 2)
    result = silog_loss(pred, target, mask)
    g = np.log(np.array([1.5, 2.0, 3.0]) + 1e-7) - np.log(np.array([1.0, 2.0, 4.0]) + 1e-7)
    expected = 10 * math.sqrt(np.var(g, ddof=1) + 0.15 * np.mean(g) ** 2)
    assert result.value.item() == pytest.approx(expected, rel=1e-5)
    assert (result.skipped, result.count) == (False, 3)


def test_silog_upsamples_and_is_near_scale_invariant() -> None:
    target = torch.full((2, 1, 8, 8), 3.0)
    pred = torch.full((2, 1, 4, 4), 6.0, requires_grad=True)
    result = silog_loss(pred, target, target > 0)
    assert result.value.item() == pytest.approx(10 * math.sqrt(0.15) * math.log(2), rel=1e-4)
    result.value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


@pytest.mark.parametrize('loss', [silog_loss, ssi_least_squares_loss, ssi_trimmed_loss])
def test_all_invalid_mask_is_skipped_and_finite(loss) -> None:
    pred = torch.rand(2, 1, 4, 4, requires_grad=True)
    target = torch.rand(2, 1, 8, 8) + 0.5
    result = loss(pred, target, torch.zeros(2, 1, 8, 8, dtype=torch.bool))
    assert result.skipped and result.count == 0
    assert result.value.item() == 0.0 and torch.isfinite(result.value)
    result.value.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_least_squares_ssi_by_hand() -> None:
    pred = torch.tensor([[[0.0, 1.0, 2.0]]])
    target = torch.tensor([[[0.0, 1.0, 3.0]]])
    # s = 1.5, t = -1/6 -> aligned (-1/6, 4/3, 17/6); mean |residual| = 2/9
    result = ssi_least_squares_loss(pred, target, torch.ones_like(target, dtype=torch.bool))
    assert result.value.item() == pytest.approx(2 / 9, rel=1e-5)


def test_least_squares_ssi_invariance_and_singular_images() -> None:
    target = torch.rand(2, 6, 6) + 0.1
    pred = torch.stack([2.0 * target[0] + 3.0, torch.full((6, 6), 5.0)])  # 2nd is singular
    mask = torch.ones_like(target, dtype=torch.bool)
    result = ssi_least_squares_loss(pred, target, mask)
    assert result.value.item() == pytest.approx(0.0, abs=1e-4)
    assert result.count == 36, 'the singular image must be dropped'


def test_trimmed_ssi_by_hand() -> None:
    pred = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 4.0]]])
    target = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 14.0]]])
    mask = torch.ones_like(target, dtype=torch.bool)
    # medians 2, MAD 1.2 and 3.2; |residuals| 25/24, 25/48, 0, 25/48, 25/12; the largest of 5
    # is trimmed (keep 4) -> 25/12 / (2 * 5)
    result = ssi_trimmed_loss(pred, target, mask, gradient_weight=0.0)
    assert result.value.item() == pytest.approx(5 / 24, rel=1e-5)


def test_trimmed_ssi_scale_shift_invariance() -> None:
    target = torch.rand(2, 1, 8, 8) + 0.1
    pred = torch.rand(2, 1, 8, 8)
    mask = torch.rand(2, 1, 8, 8) > 0.2
    base = ssi_trimmed_loss(pred, target, mask).value.item()
    moved = ssi_trimmed_loss(3.0 * pred - 7.0, target, mask).value.item()
    assert base > 0.1 and moved == pytest.approx(base, rel=1e-4)
    perfect = ssi_trimmed_loss(0.5 * target + 2.0, target, mask).value.item()
    assert perfect == pytest.approx(0.0, abs=1e-5)


def test_gradient_matching_by_hand() -> None:
    ramp = torch.arange(4.0).repeat(4, 1)[None]  # d/dx = 1 everywhere, d/dy = 0
    mask = torch.ones_like(ramp)
    assert gradient_matching_loss(ramp, mask, scales=1).item() == pytest.approx(12 / 16)
    # scale 2 keeps columns 0 and 2 of rows 0 and 2: two x-steps of 2 over 4 pixels
    assert gradient_matching_loss(ramp, mask, scales=2).item() == pytest.approx(0.75 + 1.0)


def test_router_loss() -> None:
    logits = torch.tensor([[0.0, 0.0], [2.0, -1.0], [5.0, 5.0]], requires_grad=True)
    result = router_loss(logits, torch.tensor([0, 1, -1]))
    expected = (math.log(2) + math.log(1 + math.exp(3.0))) / 2
    assert result.value.item() == pytest.approx(expected, rel=1e-5) and result.count == 2
    skipped = router_loss(logits, torch.tensor([-1, -1, -1]))
    assert skipped.skipped and skipped.value.item() == 0.0
    assert router_loss(None, torch.tensor([0])).skipped


def test_std_nll_teaches_the_spread_to_follow_the_error() -> None:
    """Errors of 20 % (log): a std of 5 % is pulled up, one of 80 % down, the loss is lowest
    at 20 %, and the depth itself gets no gradient from it (SILog owns the depth)."""
    from zoedepth_ros.training.losses import std_nll_loss

    target = torch.full((1, 1, 4, 4), 2.0)
    pred = (target * math.exp(-0.2)).requires_grad_()
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    values = {}
    for share in (0.05, 0.2, 0.8):
        std = (pred.detach() * share).requires_grad_()
        result = std_nll_loss(pred, std, target, mask)
        result.value.backward()
        values[share] = float(result.value)
        sign = float(std.grad.sum())
        assert (sign < 0) if share < 0.2 else (sign > 0) if share > 0.2 else abs(sign) < 1e-5
    assert values[0.2] < values[0.05] and values[0.2] < values[0.8]
    assert values[0.2] == pytest.approx(math.log(0.2) + 0.5, rel=1e-4)
    assert pred.grad is None or float(pred.grad.abs().sum()) == 0.0
    nothing = std_nll_loss(pred, pred * 0.1, target, torch.zeros_like(mask))
    assert nothing.skipped and float(nothing.value) == 0.0
