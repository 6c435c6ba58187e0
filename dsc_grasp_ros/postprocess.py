"""Post-processing: smooth the four maps, decode the angle, find the best distinct grasps.

Everything runs in torch on the maps' device: on CUDA only the ``O(top_k)`` candidate values
are copied to the host, never a full map. Angles are taken as ``½·atan2(sin, cos)`` *after*
smoothing the cos and sin maps (smoothing a wrapped angle map would average +89° and -89° to 0°).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from .conventions import WIDTH_SCALE_PX
from .grasp import Grasp

__all__ = ["gaussian_kernel1d", "smooth", "smooth_maps", "find_peaks", "decode_grasps"]


@lru_cache(maxsize=32)
def _kernel_cpu(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ``ceil(3·sigma)``."""
    return _kernel_cpu(float(sigma)).to(device=device, dtype=dtype)


def smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``N x C x H x W`` maps (reflect padding); ``sigma <= 0`` is identity."""
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma, x.device, x.dtype)
    r = k.numel() // 2
    c = x.shape[1]
    pad_mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=pad_mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode=pad_mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x


def _as4d(t: torch.Tensor) -> torch.Tensor:
    while t.dim() < 4:
        t = t.unsqueeze(0)
    return t


def smooth_maps(q, cos, sin, width, sigma: float = 2.0):
    """Smooth all four maps with the same Gaussian; returns ``(quality, angle, width)`` as ``H x W``.

    Quality is clamped to [0, 1]; angle is ``½·atan2(sin, cos)`` in radians (the smoothed cos/sin
    vector keeps its direction when zeros are mixed in). Width is smoothed *weighted by quality*
    (``G*(q·w) / G*q``), so the zero width of the background around a small grasp does not shrink
    its opening; where the smoothed quality is ~0 the plain smoothed width is used. The width map
    is clamped to [0, 1] first, the range its training targets have (an out-of-distribution input
    must not decode into an opening wider than ``width_scale``).
    """
    q4 = _as4d(q)[:1, :1].float()
    w4 = _as4d(width)[:1, :1].float().clamp(0, 1)
    maps = torch.cat([q4, _as4d(cos)[:1, :1].float(), _as4d(sin)[:1, :1].float(), w4, q4.clamp(0, 1) * w4], 1)
    s = smooth(maps, sigma)[0]
    quality = s[0].clamp(0, 1)
    angle = 0.5 * torch.atan2(s[2], s[1])
    weight = smooth(q4.clamp(0, 1), sigma)[0, 0] if sigma > 0 else q4.clamp(0, 1)[0, 0]
    wmap = torch.where(weight > 1e-3, s[4] / weight.clamp_min(1e-3), s[3])
    return quality, angle, wmap


def find_peaks(quality: torch.Tensor, top_k: int, min_distance_px: float, min_quality: float) -> torch.Tensor:
    """Up to ``top_k`` local maxima of an ``H x W`` map, best first, at least ``min_distance_px`` apart.

    Local maxima within a ``(2r+1)²`` window (``r = min_distance_px``) are found on the device; the
    few best are then thinned greedily by Euclidean distance. Returns a ``K x 2`` long tensor of
    ``(row, col)`` on the CPU.
    """
    h, w = quality.shape
    r = max(0, int(math.floor(min_distance_px)))
    q = quality[None, None]
    if r > 0:
        k = 2 * r + 1  # separable max filter: two 1-D passes instead of one k x k window
        pooled = F.max_pool2d(F.max_pool2d(q, (1, k), stride=1, padding=(0, r)), (k, 1), stride=1, padding=(r, 0))
        is_peak = (q == pooled) & (q >= min_quality)
    else:
        is_peak = q >= min_quality
    scores = torch.where(is_peak, q, torch.full_like(q, -1.0)).flatten()
    n = min(scores.numel(), max(4 * top_k, top_k + 8))
    vals, idx = torch.topk(scores, n)
    vals, idx = vals.cpu(), idx.cpu()  # O(top_k) values leave the device
    keep: list[tuple[int, int]] = []
    for val, i in zip(vals.tolist(), idx.tolist()):
        if val < 0 or val < min_quality or len(keep) >= top_k:
            break
        rc = (i // w, i % w)
        if all((rc[0] - a) ** 2 + (rc[1] - b) ** 2 >= min_distance_px**2 for a, b in keep):
            keep.append(rc)
    if not keep and top_k > 0 and min_quality <= 0 and vals.numel():
        i = int(torch.argmax(quality).item())
        keep.append((i // w, i % w))
    return torch.tensor(keep, dtype=torch.long).reshape(-1, 2)


def decode_grasps(
    q,
    cos,
    sin,
    width,
    sigma: float = 2.0,
    top_k: int = 1,
    min_distance_px: float = 10.0,
    min_quality: float = 0.0,
    width_scale: float = WIDTH_SCALE_PX,
    return_maps: bool = False,
):
    """Decode network maps into grasps in network-input pixels, best first.

    ``q, cos, sin, width`` are tensors (``H x W``, ``1 x H x W`` or ``1 x 1 x H x W``) on any device.
    ``top_k = 1`` with ``min_quality = 0`` is the paper's argmax grasp. With ``return_maps`` the
    smoothed ``(quality, angle, width)`` maps (still on the device) are returned as well.
    """
    quality, angle, wmap = smooth_maps(q, cos, sin, width, sigma)
    peaks = find_peaks(quality, top_k, min_distance_px, min_quality)
    grasps: list[Grasp] = []
    if len(peaks):
        dev = quality.device
        rr, cc = peaks[:, 0].to(dev), peaks[:, 1].to(dev)
        vals = torch.stack([quality[rr, cc], angle[rr, cc], wmap[rr, cc]], 1).cpu().tolist()
        for (r, c), (qv, a, wv) in zip(peaks.tolist(), vals):
            a = (a + math.pi / 2) % math.pi - math.pi / 2
            grasps.append(Grasp(u=float(c), v=float(r), angle=float(a), width_px=max(float(wv), 0.0) * width_scale, quality=float(qv)))
    if return_maps:
        return grasps, (quality, angle, wmap)
    return grasps
