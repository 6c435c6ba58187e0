"""Post-processing: smooth the four maps, decode the angle, find the best distinct grasps.

Angles are taken as ``½·atan2(sin, cos)`` *after* smoothing the cos and sin maps (smoothing a
wrapped angle map would average +89° and -89° to 0°).

Two implementations of the same arithmetic, chosen by the maps' device:

* **CUDA** (any non-CPU device): everything in torch on the device; only the ``O(top_k)``
  candidate values are copied to the host, never a full map.
* **CPU**: OpenCV's separable filter and dilation on the ``224 x 224`` planes (torch's depthwise
  convolution and max-pooling took ~9 of the ~10 ms), only the quality map smoothed in full; the
  angle and width are evaluated at the few peaks only, from the same Gaussian window (the full
  angle/width maps are built only when asked for with ``return_maps=True``). Same results as the
  torch path to float rounding (parity tested against the previous implementation).
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .conventions import WIDTH_SCALE_PX
from .grasp import Grasp

__all__ = ["gaussian_kernel1d", "smooth", "smooth_maps", "find_peaks", "decode_grasps"]

#: CPU maps take the OpenCV/numpy path (False: the torch path the GPU runs, for tests and A/B timing).
CPU_FAST = True


def _fast(t: torch.Tensor) -> bool:
    return CPU_FAST and t.device.type == "cpu"


@lru_cache(maxsize=32)
def _kernel_cpu(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


@lru_cache(maxsize=32)
def _kernel_np(sigma: float) -> np.ndarray:
    k = _kernel_cpu(sigma).numpy().copy()
    k.setflags(write=False)
    return k


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ``ceil(3·sigma)``."""
    return _kernel_cpu(float(sigma)).to(device=device, dtype=dtype)


def _border(shape, r: int) -> int:
    """The padding of :func:`smooth` as an OpenCV border: reflect (without repeating the edge
    pixel, torch's ``reflect`` = ``BORDER_REFLECT_101``) unless the map is too small for it."""
    return cv2.BORDER_REFLECT_101 if min(shape[-2:]) > r else cv2.BORDER_REPLICATE


def _smooth_plane(a: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`smooth` of one ``H x W`` float32 plane with OpenCV (CPU)."""
    if sigma <= 0:
        return a
    k = _kernel_np(float(sigma))
    return cv2.sepFilter2D(a, cv2.CV_32F, k, k, borderType=_border(a.shape, k.size // 2))


def _plane(t: torch.Tensor) -> np.ndarray:
    """The first ``H x W`` plane of a (1-4)-D CPU tensor as a contiguous float32 array (no copy
    when it already is one)."""
    while t.dim() > 2:
        t = t[0]
    return np.ascontiguousarray(t.detach().float().numpy())


def smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``N x C x H x W`` maps (reflect padding); ``sigma <= 0`` is identity."""
    if sigma <= 0:
        return x
    if _fast(x) and x.dtype == torch.float32 and not x.requires_grad:
        planes = x.detach().reshape(-1, *x.shape[-2:])
        out = np.stack([_smooth_plane(np.ascontiguousarray(p.numpy()), sigma) for p in planes])
        return torch.from_numpy(out).reshape(x.shape)
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


def smooth_maps(q, cos, sin, width, sigma: float = 2.0, clamp_quality: bool = True):
    """Smooth all four maps with the same Gaussian; returns ``(quality, angle, width)`` as ``H x W``.

    Quality is clamped to [0, 1]; angle is ``½·atan2(sin, cos)`` in radians (the smoothed cos/sin
    vector keeps its direction when zeros are mixed in). Width is smoothed *weighted by quality*
    (``G*(q·w) / G*q``), so the zero width of the background around a small grasp does not shrink
    its opening; where the smoothed quality is ~0 the plain smoothed width is used. The width map
    is clamped to [0, 1] first, the range its training targets have (an out-of-distribution input
    must not decode into an opening wider than ``width_scale``). ``clamp_quality=False`` returns the
    smoothed quality clipped below at 0 only (what :func:`decode_grasps` ranks peaks on).
    """
    hi = 1.0 if clamp_quality else None
    if _fast(q):  # the same arithmetic plane by plane with OpenCV (no 6-plane copy, no torch convolution)
        qp, cp, sp = _plane(q), _plane(cos), _plane(sin)
        wc = np.clip(_plane(width), 0, 1)
        qc = np.clip(qp, 0, 1)
        s_q, s_cos, s_sin, s_w, s_qw, weight = (_smooth_plane(a, sigma) for a in (qp, cp, sp, wc, qc * wc, qc))
        angle = torch.atan2(torch.from_numpy(s_sin), torch.from_numpy(s_cos)).mul_(0.5)  # torch's atan2 is ~7x numpy's
        wmap = np.where(weight > 1e-3, s_qw / np.maximum(weight, np.float32(1e-3)), s_w)
        return torch.from_numpy(np.clip(s_q, 0, hi)), angle, torch.from_numpy(wmap)
    q4 = _as4d(q)[:1, :1].float()
    w4 = _as4d(width)[:1, :1].float().clamp(0, 1)
    qc = q4.clamp(0, 1)
    # one blur for all six planes (q, cos, sin, w, q·w and the weight q)
    maps = torch.cat([q4, _as4d(cos)[:1, :1].float(), _as4d(sin)[:1, :1].float(), w4, qc * w4, qc], 1)
    s = smooth(maps, sigma)[0]
    quality = s[0].clamp(0, hi)
    angle = 0.5 * torch.atan2(s[2], s[1])
    weight = s[5]
    wmap = torch.where(weight > 1e-3, s[4] / weight.clamp_min(1e-3), s[3])
    return quality, angle, wmap


def _peak_candidates(quality: torch.Tensor, n: int, r: int, min_quality: float):
    """The ``n`` best local-maximum scores of an ``H x W`` map (``-1`` for non-peaks) and their
    flat indices, on the CPU."""
    if _fast(quality):
        a = _plane(quality)
        pooled = cv2.dilate(a, np.ones((2 * r + 1, 2 * r + 1), np.uint8)) if r > 0 else a  # -inf outside, like max_pool2d
        with np.errstate(invalid="ignore"):
            is_peak = (a == pooled) & (a >= min_quality)
        scores = torch.from_numpy(np.where(is_peak, a, np.float32(-1.0)).ravel())
        return torch.topk(scores, n)
    q = quality[None, None]
    if r > 0:
        k = 2 * r + 1  # separable max filter: two 1-D passes instead of one k x k window
        pooled = F.max_pool2d(F.max_pool2d(q, (1, k), stride=1, padding=(0, r)), (k, 1), stride=1, padding=(r, 0))
        is_peak = (q == pooled) & (q >= min_quality)
    else:
        is_peak = q >= min_quality
    scores = torch.where(is_peak, q, torch.full_like(q, -1.0)).flatten()
    vals, idx = torch.topk(scores, n)
    return vals.cpu(), idx.cpu()  # O(top_k) values leave the device


def find_peaks(quality: torch.Tensor, top_k: int, min_distance_px: float, min_quality: float) -> torch.Tensor:
    """Up to ``top_k`` local maxima of an ``H x W`` map, best first, at least ``min_distance_px`` apart.

    Local maxima within a ``(2r+1)²`` window (``r = min_distance_px``) are found on the device; the
    few best are then thinned greedily by Euclidean distance. Returns a ``K x 2`` long tensor of
    ``(row, col)`` on the CPU.
    """
    h, w = quality.shape
    r = max(0, int(math.floor(min_distance_px)))
    n = min(h * w, max(4 * top_k, top_k + 8))
    vals, idx = _peak_candidates(quality, n, r, min_quality)
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


def _window_index(i: np.ndarray, r: int, n: int, reflect: bool) -> np.ndarray:
    """Indices ``i-r .. i+r`` (one row per entry of ``i``) mapped into ``[0, n)`` by the padding
    of :func:`smooth`: reflect without repeating the edge, or replicate."""
    j = i[:, None] + np.arange(-r, r + 1)[None, :]
    if reflect:
        j = np.abs(j)
        j = np.where(j > n - 1, 2 * (n - 1) - j, j)
        return j
    return np.clip(j, 0, n - 1)


def _smoothed_at(planes: np.ndarray, rows: np.ndarray, cols: np.ndarray, sigma: float) -> np.ndarray:
    """``smooth(planes)`` (``P x H x W``) evaluated at the pixels ``(rows, cols)`` only: ``P x K``.
    The same Gaussian window and padding as the full blur (float64 sums)."""
    if sigma <= 0:
        return planes[:, rows, cols].astype(np.float64)
    k = _kernel_np(float(sigma)).astype(np.float64)
    r = k.size // 2
    h, w = planes.shape[-2:]
    reflect = _border((h, w), r) == cv2.BORDER_REFLECT_101
    ri, ci = _window_index(rows, r, h, reflect), _window_index(cols, r, w, reflect)
    win = planes[:, ri[:, :, None], ci[:, None, :]].astype(np.float64)  # P x K x (2r+1) x (2r+1)
    return np.einsum("pkij,i,j->pk", win, k, k)


def _values_at_peaks_cpu(q, cos, sin, width, rank: torch.Tensor, peaks: torch.Tensor, sigma: float):
    """``(quality, angle, width)`` of :func:`smooth_maps` at the peaks, computed there only (CPU);
    ``rank`` is the smoothed quality clipped below, clipped to [0, 1] here at the peaks only."""
    rows, cols = peaks[:, 0].numpy(), peaks[:, 1].numpy()
    qp, cp, sp, wp = (_plane(t) for t in (q, cos, sin, width))
    wc = np.clip(wp, 0, 1)
    qc = np.clip(qp, 0, 1)
    s_cos, s_sin, s_w, s_qw, weight = _smoothed_at(np.stack([cp, sp, wc, qc * wc, qc]), rows, cols, sigma)
    angle = 0.5 * np.arctan2(s_sin, s_cos)
    wv = np.where(weight > 1e-3, s_qw / np.maximum(weight, 1e-3), s_w)
    qv = rank[peaks[:, 0], peaks[:, 1]].clamp(max=1.0).double().numpy()
    return np.stack([qv, angle, wv], 1).tolist()


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
    return_maps: bool | str = False,
):
    """Decode network maps into grasps in network-input pixels, best first.

    ``q, cos, sin, width`` are tensors (``H x W``, ``1 x H x W`` or ``1 x 1 x H x W``) on any device.
    ``top_k = 1`` with ``min_quality = 0`` is the paper's argmax grasp. With ``return_maps=True`` the
    smoothed ``(quality, angle, width)`` maps (still on the device) are returned as well; with
    ``return_maps="quality"`` only the quality map, as ``(quality, None, None)`` (on the CPU this
    skips building the full angle and width maps).
    """
    if return_maps not in (False, True, "quality"):
        raise ValueError(f"return_maps must be False, True or 'quality', got {return_maps!r}")
    on_cpu = _fast(q)
    # Peaks are ranked on the smoothed quality clipped below only: a network's quality often exceeds
    # 1 over a whole object, and clipped at 1 that is a plateau whose first pixel in scan order (its
    # top-left edge, moved by 1e-6 numeric noise) would win; unclipped, the most confident pixel wins.
    # Reported qualities (clipped at the peaks only) and a returned map are clipped to [0, 1].
    if on_cpu and return_maps is not True:  # the quality map only; angle and width at the peaks below
        rank = torch.from_numpy(np.maximum(_smooth_plane(_plane(q), sigma), np.float32(0)))
        angle = wmap = None
    else:
        rank, angle, wmap = smooth_maps(q, cos, sin, width, sigma, clamp_quality=False)
    peaks = find_peaks(rank, top_k, min_distance_px, min_quality)
    grasps: list[Grasp] = []
    if len(peaks):
        if on_cpu:  # evaluated at the peaks (the same values whether or not the full maps were built)
            vals = _values_at_peaks_cpu(q, cos, sin, width, rank, peaks, sigma)
        else:
            dev = rank.device
            rr, cc = peaks[:, 0].to(dev), peaks[:, 1].to(dev)
            vals = torch.stack([rank[rr, cc].clamp(max=1.0), angle[rr, cc], wmap[rr, cc]], 1).cpu().tolist()
        for (r, c), (qv, a, wv) in zip(peaks.tolist(), vals):
            a = (a + math.pi / 2) % math.pi - math.pi / 2
            grasps.append(Grasp(u=float(c), v=float(r), angle=float(a), width_px=max(float(wv), 0.0) * width_scale, quality=float(qv)))
    if return_maps == "quality":
        return grasps, (rank.clamp(max=1.0), None, None)
    if return_maps:
        return grasps, (rank.clamp(max=1.0), angle, wmap)
    return grasps
