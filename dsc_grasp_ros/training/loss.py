"""Loss of Section III-F: P-Huber (Eq. 7) and plain Huber for the ablation.

P-Huber::

    L_p = H(Q_e) + H(Q̂ · Φ_e^cos) + H(Q̂ · Φ_e^sin) + H(Q̂ · W_e)

with ``H`` the Huber function (mean over pixels, ``delta = 1``, which equals PyTorch's
``smooth_l1_loss`` that GR-ConvNet uses), ``*_e`` the prediction errors and ``Q̂`` the
ground-truth quality map: angle and width are only learnt where there is a grasp. ``'huber'`` is
``H(Q_e) + H(Φ_e^cos) + H(Φ_e^sin) + H(W_e)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "grasp_loss"]

LOSSES = ("p-huber", "huber")
_NAMES = ("quality", "cos", "sin", "width")


def grasp_loss(pred, target: torch.Tensor, kind: str = "p-huber", delta: float = 1.0):
    """``pred``: ``(q, cos, sin, width)`` each ``N x 1 x H x W``; ``target``: ``N x 4 x H x W``.

    Returns ``(total, {'quality': .., 'cos': .., 'sin': .., 'width': ..})`` (detached parts).
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}: use one of {LOSSES}")
    target = target.float()
    q_t = target[:, 0:1]
    parts = {}
    for k, (name, p) in enumerate(zip(_NAMES, pred)):
        err = p.float() - target[:, k : k + 1]
        if kind == "p-huber" and k > 0:
            err = q_t * err
        parts[name] = F.huber_loss(err, torch.zeros_like(err), delta=delta)
    total = sum(parts.values())
    return total, {k: v.detach() for k, v in parts.items()}
