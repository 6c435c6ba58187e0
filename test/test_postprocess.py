"""Decoding grasp maps: known grasps come back, rotation equivariance, angle wrap, top-k rules."""

import math

import numpy as np
import pytest
import torch

from dsc_grasp_ros.core.conventions import WIDTH_SCALE_PX, angle_difference
from dsc_grasp_ros.core.grasp import draw_grasp_maps
from dsc_grasp_ros.core.postprocess import decode_grasps, find_peaks, smooth_maps


def maps_of(rects, shape=(224, 224), mode="gaussian"):
    return [torch.from_numpy(m) for m in draw_grasp_maps(np.asarray(rects, float), shape, mode=mode)]


def test_known_grasp_is_decoded():
    g = decode_grasps(*maps_of([[120, 80, 0.4, 60, 30]]), sigma=2.0, top_k=1)[0]
    assert (g.u, g.v) == (120, 80)
    assert abs(g.angle - 0.4) < 1e-4
    assert abs(g.width_px - 60) < 1e-3 and g.quality > 0.9


@pytest.mark.parametrize("angle", [0.0, 0.3, 1.2, -0.7, -1.5])
def test_rotating_the_frame_by_90_degrees_rotates_the_grasp_by_90(angle):
    size = 224
    q, c, s, w = draw_grasp_maps(np.array([[150.0, 70.0, angle, 50.0, 25.0]]), (size, size), mode="gaussian")
    # rotate every map 90 deg counter-clockwise as seen on the image; cos/sin maps are
    # re-derived from the rotated angle field, as a network would predict on the rotated frame
    ang = 0.5 * np.arctan2(s, c)
    rot = [np.rot90(m).copy() for m in (q, ang, w)]
    q2, a2, w2 = rot
    c2, s2 = np.cos(2 * (a2 + math.pi / 2)) * (q2 > 0), np.sin(2 * (a2 + math.pi / 2)) * (q2 > 0)
    g0 = decode_grasps(*maps_of([[150.0, 70.0, angle, 50.0, 25.0]]), top_k=1)[0]
    g1 = decode_grasps(*(torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)) for m in (q2, c2, s2, w2)), top_k=1)[0]
    # np.rot90 maps pixel (u, v) -> (v, size-1-u)
    assert (g1.u, g1.v) == (g0.v, size - 1 - g0.u)
    assert angle_difference(g1.angle, g0.angle + math.pi / 2) < 1e-4
    assert abs(g1.width_px - g0.width_px) < 1e-3


def test_angle_is_decoded_after_smoothing_cos_sin_not_the_wrapped_angle():
    # two halves at +89 deg and -89 deg: the same physical grasp axis (near vertical)
    a = np.full((32, 32), math.radians(89.0), np.float32)
    a[:, 16:] = math.radians(-89.0)
    maps = [torch.ones(32, 32), torch.from_numpy(np.cos(2 * a)), torch.from_numpy(np.sin(2 * a)), torch.zeros(32, 32)]
    _, angle, _ = smooth_maps(*maps, sigma=3.0)
    assert angle_difference(float(angle[16, 16]), math.pi / 2) < math.radians(2)  # not 0


def test_top_k_are_distinct_and_above_min_quality():
    rects = [[40, 40, 0, 40, 20], [48, 40, 0, 40, 20], [150, 150, 1.0, 50, 20], [100, 190, -0.5, 30, 10]]
    q, c, s, w = maps_of(rects)
    q = q * torch.tensor([1.0])  # peak heights: equal; scale the last grasp down
    q[170:210, 80:120] *= 0.3
    gs = decode_grasps(q, c, s, w, sigma=1.0, top_k=5, min_distance_px=20, min_quality=0.5)
    centres = [(g.u, g.v) for g in gs]
    assert len(gs) == 2, centres
    for i in range(len(gs)):
        for j in range(i):
            assert math.dist(centres[i], centres[j]) >= 20
    assert gs[0].quality >= gs[1].quality
    assert all(g.quality >= 0.5 for g in gs)
    assert len(decode_grasps(q, c, s, w, sigma=1.0, top_k=5, min_distance_px=20, min_quality=0.0)) == 4


def test_width_uses_the_shared_scale():
    g = decode_grasps(*maps_of([[100, 100, 0.0, 75, 20]]), top_k=1)[0]
    assert abs(g.width_px - 75) < 1e-3
    g = decode_grasps(*maps_of([[100, 100, 0.0, 75, 20]]), top_k=1, width_scale=2 * WIDTH_SCALE_PX)[0]
    assert abs(g.width_px - 150) < 1e-3


def test_find_peaks_only_returns_k_values():
    q = torch.rand(64, 64)
    p = find_peaks(q, 3, 5, 0.0)
    assert p.shape == (3, 2) and p.device.type == "cpu"
    assert q[p[0, 0], p[0, 1]] == q.max()


def test_small_grasp_keeps_its_opening_after_smoothing():
    # rect labels: a narrow compact rectangle whose neighbours have width 0
    q, c, s, w = maps_of([[100, 100, 0.3, 24, 6]], mode="rect")
    g = decode_grasps(q, c, s, w, sigma=2.0, top_k=1)[0]
    assert abs(g.width_px - 24) < 0.5


def test_width_is_clamped_to_the_target_range():
    q, c, s, w = maps_of([[100, 100, 0.0, 75, 20]])
    g = decode_grasps(q, c, s, w * 40.0 - 5.0, top_k=1)[0]  # an out-of-distribution width map
    assert 0.0 <= g.width_px <= WIDTH_SCALE_PX
