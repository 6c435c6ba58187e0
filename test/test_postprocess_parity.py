"""The CPU fast path of post-processing (OpenCV blur/dilation, angle and width at the peaks only)
and the torch path the GPU runs give the results of the previous all-torch implementation, kept
here verbatim as the reference (``_ref_*``), to float rounding."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dsc_grasp_ros.core import postprocess as P
from dsc_grasp_ros.core.conventions import WIDTH_SCALE_PX, angle_difference
from dsc_grasp_ros.core.grasp import draw_grasp_maps


# --------------------------------------------------------------------------- reference (the decoder of 0.0.1)
def _ref_kernel(sigma):
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _ref_smooth(x, sigma):
    if sigma <= 0:
        return x
    k = _ref_kernel(float(sigma)).to(x.device, x.dtype)
    r = k.numel() // 2
    c = x.shape[1]
    pad_mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=pad_mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode=pad_mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x


def _as4d(t):
    while t.dim() < 4:
        t = t.unsqueeze(0)
    return t


def _ref_smooth_maps(q, cos, sin, width, sigma=2.0):
    q4 = _as4d(q)[:1, :1].float()
    w4 = _as4d(width)[:1, :1].float().clamp(0, 1)
    maps = torch.cat([q4, _as4d(cos)[:1, :1].float(), _as4d(sin)[:1, :1].float(), w4, q4.clamp(0, 1) * w4], 1)
    s = _ref_smooth(maps, sigma)[0]
    quality = s[0].clamp(0, 1)
    angle = 0.5 * torch.atan2(s[2], s[1])
    weight = _ref_smooth(q4.clamp(0, 1), sigma)[0, 0] if sigma > 0 else q4.clamp(0, 1)[0, 0]
    wmap = torch.where(weight > 1e-3, s[4] / weight.clamp_min(1e-3), s[3])
    return quality, angle, wmap


def _ref_find_peaks(quality, top_k, min_distance_px, min_quality):
    h, w = quality.shape
    r = max(0, int(math.floor(min_distance_px)))
    q = quality[None, None]
    if r > 0:
        k = 2 * r + 1
        pooled = F.max_pool2d(F.max_pool2d(q, (1, k), stride=1, padding=(0, r)), (k, 1), stride=1, padding=(r, 0))
        is_peak = (q == pooled) & (q >= min_quality)
    else:
        is_peak = q >= min_quality
    scores = torch.where(is_peak, q, torch.full_like(q, -1.0)).flatten()
    n = min(scores.numel(), max(4 * top_k, top_k + 8))
    vals, idx = torch.topk(scores, n)
    keep = []
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


def _ref_decode(q, cos, sin, width, sigma=2.0, top_k=1, min_distance_px=10.0, min_quality=0.0, width_scale=WIDTH_SCALE_PX):
    quality, angle, wmap = _ref_smooth_maps(q, cos, sin, width, sigma)
    # the one change since 0.0.1: peaks are ranked on the smoothed quality clipped below only (a
    # plateau clipped at 1 let its scan-order-first pixel win); reported qualities stay in [0, 1]
    rank = _ref_smooth(_as4d(q)[:1, :1].float(), sigma)[0, 0].clamp_min(0)
    peaks = _ref_find_peaks(rank, top_k, min_distance_px, min_quality)
    out = []
    for r, c in peaks.tolist():
        a = float(angle[r, c])
        a = (a + math.pi / 2) % math.pi - math.pi / 2
        out.append((float(c), float(r), a, max(float(wmap[r, c]), 0.0) * width_scale, float(quality[r, c])))
    return out, (quality, angle, wmap)


# --------------------------------------------------------------------------- inputs
def _network_like(seed, size=224):
    """Maps like a network's: drawn grasps plus smooth noise and out-of-range values."""
    rng = np.random.default_rng(seed)
    m = min(10, size // 3)
    rects = [[rng.uniform(m, size - m), rng.uniform(m, size - m), rng.uniform(-1.57, 1.57), rng.uniform(10, 90), rng.uniform(5, 30)]
             for _ in range(rng.integers(1, 7))]
    q, c, s, w = draw_grasp_maps(np.asarray(rects), (size, size), mode="gaussian")
    noise = rng.normal(0, 0.15, (4, size, size)).astype(np.float32)
    maps = [m + n for m, n in zip((q, c, s, w), noise)]
    maps[0] = 1.2 * maps[0] - 0.1  # some quality outside [0, 1]
    return [torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)) for m in maps]


def _network_output(seed, size=224):
    """Views of one 1 x 4 x H x W tensor, as the engine returns them."""
    y = torch.stack(_network_like(seed, size))[None]
    return y[:, 0:1], y[:, 1:2], y[:, 2:3], y[:, 3:4]


CASES = [  # sigma, top_k, min_distance_px, min_quality
    (2.0, 5, 10.0, 0.2),
    (2.0, 1, 10.0, 0.0),
    (1.0, 20, 3.5, 0.0),
    (3.5, 5, 25.0, 0.1),
    (0.0, 5, 10.0, 0.2),
    (2.0, 5, 0.0, 0.3),
    (2.0, 5, 10.0, -math.inf),
]


def _assert_same(got, ref):
    assert len(got) == len(ref)
    for g, (u, v, a, wpx, qv) in zip(got, ref):
        assert (g.u, g.v) == (u, v)
        assert angle_difference(g.angle, a) < 1e-5
        assert abs(g.width_px - wpx) < 1e-3  # 150 px scale: 1e-5 of the map
        assert abs(g.quality - qv) < 1e-6


@pytest.mark.parametrize("fast", [True, False], ids=["cpu_fast", "torch_path"])
@pytest.mark.parametrize("sigma,top_k,min_dist,min_q", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decode_matches_the_previous_implementation(monkeypatch, fast, seed, sigma, top_k, min_dist, min_q):
    monkeypatch.setattr(P, "CPU_FAST", fast)
    maps = _network_output(seed)
    ref, (rq, ra, rw) = _ref_decode(*maps, sigma, top_k, min_dist, min_q)
    _assert_same(P.decode_grasps(*maps, sigma, top_k, min_dist, min_q), ref)
    got, (gq, ga, gw) = P.decode_grasps(*maps, sigma, top_k, min_dist, min_q, return_maps=True)
    _assert_same(got, ref)
    torch.testing.assert_close(gq, rq, atol=1e-6, rtol=0)
    assert float((torch.remainder(ga - ra + math.pi / 2, math.pi) - math.pi / 2).abs().max()) < 1e-4
    torch.testing.assert_close(gw, rw, atol=1e-5, rtol=0)
    got_q, (gq2, none_a, none_w) = P.decode_grasps(*maps, sigma, top_k, min_dist, min_q, return_maps="quality")
    _assert_same(got_q, ref)
    assert none_a is None and none_w is None
    torch.testing.assert_close(gq2, rq, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size,sigma", [(32, 3.0), (9, 2.0), (5, 2.0), (224, 1.0)])
def test_small_maps_and_borders_match(size, sigma):
    # maps no larger than the kernel radius take replicate padding; peaks next to the border
    for seed in range(3):
        maps = _network_like(seed, size)
        maps[0][0, 0] = maps[0][-1, -1] = 3.0  # the best grasps in two corners
        ref, _ = _ref_decode(*maps, sigma, 5, 2.0, 0.0)
        got = P.decode_grasps(*maps, sigma, 5, 2.0, 0.0)
        _assert_same(got, ref)


def test_smooth_and_peaks_match_on_noise():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 80)
    for sigma in (0.5, 2.0, 4.0):
        ref = _ref_smooth(x, sigma)
        torch.testing.assert_close(P.smooth(x, sigma), ref, atol=1e-6, rtol=0)
        torch.testing.assert_close(P.smooth(x.double(), sigma).float(), ref, atol=1e-6, rtol=0)  # the torch path
    q = torch.rand(64, 64)
    for r, k, mq in [(5, 3, 0.0), (0, 4, 0.5), (7.5, 10, -math.inf)]:
        assert torch.equal(P.find_peaks(q, k, r, mq), _ref_find_peaks(q, k, r, mq))


def test_cpu_path_runs_on_inference_tensors_and_does_not_modify_inputs():
    maps = _network_output(3)
    before = [m.clone() for m in maps]
    with torch.inference_mode():
        y = torch.cat([m.clone() for m in maps], 1)
        got = P.decode_grasps(y[:, 0:1], y[:, 1:2], y[:, 2:3], y[:, 3:4], 2.0, 5, 10.0, 0.2)
    _assert_same(got, _ref_decode(*maps, 2.0, 5, 10.0, 0.2)[0])
    for a, b in zip(maps, before):
        assert torch.equal(a, b)


@pytest.mark.parametrize("fast", [True, False], ids=["cpu_fast", "torch_path"])
@pytest.mark.parametrize("scale", [0.002, 0.006, 0.02])
def test_faint_quality_switches_to_the_plain_width_like_before(monkeypatch, fast, scale):
    # weights around the 1e-3 switch between quality-weighted and plain smoothed width
    monkeypatch.setattr(P, "CPU_FAST", fast)
    q, c, s, w = _network_like(5)
    q = q.clamp(0, 1) * scale
    ref, _ = _ref_decode(q, c, s, w, 2.0, 20, 5.0, 0.0)
    _assert_same(P.decode_grasps(q, c, s, w, 2.0, 20, 5.0, 0.0), ref)


@pytest.mark.parametrize("fast", [True, False], ids=["cpu_fast", "torch_path"])
def test_saturated_quality_picks_the_most_confident_pixel_not_the_plateau_edge(monkeypatch, fast):
    """A network's quality often exceeds 1 over a whole object (the shipped models' do). Clipped at 1
    before ranking, that is a plateau, and its first pixel in scan order (the top-left edge) won:
    with 0.0.1's decoding this grasp landed 6 px off the blob's centre. Ranked unclipped, the centre
    wins; the reported quality is still 1."""
    if not fast:
        monkeypatch.setattr(P, "_fast", lambda t: False)
    yy, xx = np.mgrid[0:100, 0:120].astype(np.float32)
    q = 1.6 * np.exp(-(((xx - 70.0) / 14) ** 2 + ((yy - 45.0) / 10) ** 2))  # > 1 inside an ellipse around (70, 45)
    maps = [torch.from_numpy(q), torch.ones(100, 120), torch.zeros(100, 120), torch.full((100, 120), 0.2)]
    (g,) = P.decode_grasps(*maps, 2.0, 1, 10.0, 0.2)
    assert (g.u, g.v) == (70.0, 45.0)
    assert g.quality == pytest.approx(1.0)
    old, _ = _ref_decode_f962fbe(*maps)
    assert math.hypot(old[0][0] - 70, old[0][1] - 45) > 5  # the old ranking: the plateau's edge


def _ref_decode_f962fbe(q, cos, sin, width, sigma=2.0):
    quality, angle, wmap = _ref_smooth_maps(q, cos, sin, width, sigma)
    (r, c), = _ref_find_peaks(quality, 1, 10.0, 0.2).tolist()
    return [(float(c), float(r))], quality
