"""P-Huber (Eq. 7) and plain Huber, hand-computed."""

from __future__ import annotations

import pytest
import torch

from dsc_grasp_ros.training import grasp_loss


def _maps(q, cos, sin, w):
    return tuple(torch.as_tensor(m, dtype=torch.float32)[None, None] for m in (q, cos, sin, w))


def test_zero_when_prediction_equals_target():
    t = torch.rand(2, 4, 8, 8)
    total, parts = grasp_loss(tuple(t[:, k : k + 1] for k in range(4)), t)
    assert float(total) == 0.0 and all(float(v) == 0.0 for v in parts.values())


def test_p_huber_ignores_angle_and_width_outside_grasps():
    # ground truth: quality 1 on the left half, 0 on the right; predictions off by 0.5 (cos)
    # and 3.0 (width) everywhere, quality exact
    qt = torch.zeros(4, 4)
    qt[:, :2] = 1
    target = torch.stack([qt, torch.zeros(4, 4), torch.zeros(4, 4), torch.zeros(4, 4)])[None]
    pred = _maps(qt, torch.full((4, 4), 0.5), torch.zeros(4, 4), torch.full((4, 4), 3.0))
    total, parts = grasp_loss(pred, target, "p-huber")
    # Huber(0.5) = 0.5 * 0.25 = 0.125 on half the pixels, 0 elsewhere -> mean 0.0625
    assert float(parts["cos"]) == pytest.approx(0.0625)
    # Huber(3) = 3 - 0.5 = 2.5 on half the pixels -> 1.25
    assert float(parts["width"]) == pytest.approx(1.25)
    assert float(parts["quality"]) == 0.0 and float(parts["sin"]) == 0.0
    assert float(total) == pytest.approx(1.3125)
    _, plain = grasp_loss(pred, target, "huber")  # the ablation counts every pixel
    assert float(plain["cos"]) == pytest.approx(0.125) and float(plain["width"]) == pytest.approx(2.5)


def test_p_huber_weights_by_gaussian_quality():
    qt = torch.full((2, 2), 0.5)
    target = torch.stack([qt, torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2, 2)])[None]
    pred = _maps(qt, torch.ones(2, 2), torch.zeros(2, 2), torch.zeros(2, 2))
    _, parts = grasp_loss(pred, target)
    assert float(parts["cos"]) == pytest.approx(0.5 * 0.5**2)  # error 1 * quality 0.5


def test_gradients_flow_and_unknown_kind():
    p = tuple(torch.zeros(1, 1, 4, 4, requires_grad=True) for _ in range(4))
    t = torch.ones(1, 4, 4, 4)
    total, _ = grasp_loss(p, t)
    total.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in p)
    with pytest.raises(ValueError, match="unknown loss"):
        grasp_loss(p, t, "mse")
