"""Depth units and invalid depth, ROI mapping round trips, the shared normalisation."""

import cv2
import numpy as np
import pytest

from dsc_grasp_ros.core.grasp import rect_corners, transform_rects
from dsc_grasp_ros.core.preprocess import ROI, InputError, depth_to_metres, inpaint_depth, normalise, prepare


def test_depth_units_and_invalid_mask():
    mm = np.array([[0, 600], [1500, 65535]], np.uint16)
    d, inv = depth_to_metres(mm)
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, [[0, 0.6], [1.5, 65.535]], rtol=1e-6)
    assert inv.tolist() == [[True, False], [False, False]]
    f = np.array([[np.nan, 0.5], [np.inf, -1.0]], np.float32)
    d, inv = depth_to_metres(f)
    assert inv.tolist() == [[True, False], [True, True]] and d[inv].sum() == 0
    with pytest.raises(InputError, match="dtype"):
        depth_to_metres(np.zeros((2, 2), np.int8))


def test_inpaint_fills_holes_from_neighbours():
    d = np.full((40, 40), 0.7, np.float32)
    d[:, 20:] = 0.8
    inv = np.zeros_like(d, bool)
    inv[18:22, 5:10] = True
    d[inv] = 0
    out = inpaint_depth(d, inv)
    assert np.all(np.abs(out[18:22, 5:10] - 0.7) < 1e-3)
    with pytest.raises(InputError, match="no valid pixel"):
        inpaint_depth(np.zeros((4, 4), np.float32), np.ones((4, 4), bool))


@pytest.mark.parametrize("roi", [ROI.centred_square(480, 640), ROI(100, 40, 300, 200, 224, 224), ROI(8, 16, 64, 64, 64, 64)])
def test_roi_mapping_round_trips_and_matches_crop(roi):
    rng = np.random.default_rng(0)
    uv = rng.uniform([roi.x, roi.y], [roi.x + roi.w - 1, roi.y + roi.h - 1], (50, 2))
    np.testing.assert_allclose(roi.to_full(roi.to_net(uv)), uv, atol=1e-9)
    # the affine matrix is the same map
    np.testing.assert_allclose(uv @ roi.matrix[:, :2].T + roi.matrix[:, 2], roi.to_net(uv), atol=1e-9)
    # a bright square in the full image lands where to_net says after crop+resize
    img = np.zeros((480, 640), np.float32)
    cu, cv = roi.x + roi.w * 0.3, roi.y + roi.h * 0.6
    img[int(cv) - 10 : int(cv) + 11, int(cu) - 10 : int(cu) + 11] = 1.0
    net = roi.crop(img, cv2.INTER_AREA)
    ys, xs = np.nonzero(net > 0)
    w = net[ys, xs]
    centroid = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    np.testing.assert_allclose(centroid, roi.to_net([int(cu), int(cv)]), atol=0.05)


def test_grasp_mapping_to_full_with_anisotropic_roi():
    roi = ROI(100, 40, 300, 150, 224, 224)  # sx = 300/224, sy = 150/224
    u, v, a, w = roi.grasp_to_full(100.0, 50.0, np.pi / 4, 40.0)
    # the mapped rectangle must be the rectangle mapped corner by corner
    net_rect = np.array([[100.0, 50.0, np.pi / 4, 40.0, 20.0]])
    inv = np.array([[roi.sx, 0, roi.x + 0.5 * roi.sx - 0.5], [0, roi.sy, roi.y + 0.5 * roi.sy - 0.5]])
    ends = rect_corners(*net_rect.T)[0][[0, 1]]  # the closing-axis edge p0->p1
    ends_full = ends @ inv[:, :2].T + inv[:, 2]
    d = ends_full[1] - ends_full[0]
    assert np.isclose(w, np.hypot(*d)) and np.isclose(a, np.arctan2(-d[1], d[0]))
    assert np.allclose([u, v], roi.to_full([100.0, 50.0]))
    # and transform_rects with the forward matrix brings a square-scaled rect back
    sq = ROI.centred_square(480, 640)
    r = transform_rects(np.array([[320.0, 240.0, 0.3, 96.0, 48.0]]), sq.matrix)[0]
    np.testing.assert_allclose(r, [sq.to_net([320, 240])[0], sq.to_net([320, 240])[1], 0.3, 96 * 224 / 480, 48 * 224 / 480], atol=1e-9)


def test_roi_from_box_validation():
    with pytest.raises(InputError, match="does not fit"):
        ROI.from_box([600, 0, 100, 100], 480, 640)
    with pytest.raises(InputError, match="multiple of 8"):
        ROI.from_box([0, 0, 100, 100], 480, 640, out_size=None)


def test_normalise_channel_order_and_statistics():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    depth = np.linspace(0.5, 0.7, 64, dtype=np.float32).reshape(8, 8)
    x = normalise(rgb, depth, "rgbd")
    assert x.shape == (4, 8, 8) and x.dtype == np.float32
    assert abs(x[0].mean()) < 1e-6  # depth first, centred
    assert np.allclose(x[1], 1 - 1 / 3) and np.allclose(x[2], -1 / 3)  # rgb minus the image mean
    assert normalise(None, depth, "d").shape == (1, 8, 8)
    assert normalise(rgb, None, "rgb").shape == (3, 8, 8)
    assert np.abs(normalise(None, depth * 10, "d")).max() <= 1.0  # clipped to +-1 m
    with pytest.raises(InputError, match="needs a depth"):
        normalise(rgb, None, "rgbd")


def test_prepare_errors_name_the_problem():
    roi = ROI.centred_square(480, 640)
    rgb = np.zeros((480, 640, 3), np.uint8)
    with pytest.raises(InputError, match="sizes differ"):
        prepare(rgb, np.ones((240, 320), np.float32), roi, "rgbd")
    with pytest.raises(InputError, match="no valid pixel"):
        prepare(rgb, np.zeros((480, 640), np.uint16), roi, "rgbd")
    with pytest.raises(InputError, match="HxWx3 uint8"):
        prepare(np.zeros((480, 640, 3), np.float32), np.ones((480, 640), np.float32), roi, "rgbd")
    nan_depth = np.full((480, 640), np.nan, np.float32)
    nan_depth[:, :60] = 0.6  # valid only left of the centred square (x >= 80)
    with pytest.raises(InputError, match="region of interest"):
        prepare(rgb, nan_depth, roi, "d")


def test_prepare_inpaints_holes_and_keeps_mask():
    depth = np.full((480, 640), 600, np.uint16)
    depth[200:260, 300:340] = 0
    x, info = prepare(None, depth, ROI.centred_square(480, 640), "d")
    assert info.invalid_net.any() and np.all(np.abs(info.depth_net - 0.6) < 1e-4)
    assert np.abs(x).max() < 1e-4  # a flat plane normalises to zeros, holes included
    assert info.depth_full.shape == (480, 640) and info.depth_full[230, 320] == 0


def test_input_errors_carry_a_stable_code():
    roi = ROI.centred_square(480, 640)
    rgb = np.zeros((480, 640, 3), np.uint8)
    cases = [
        ((rgb, np.ones((240, 320), np.float32)), "size_mismatch"),
        ((rgb, np.zeros((480, 640), np.uint16)), "all_invalid_depth"),
        ((rgb.astype(np.float32), np.ones((480, 640), np.float32)), "bad_image"),
    ]
    for (c, d), code in cases:
        with pytest.raises(InputError) as e:
            prepare(c, d, roi, "rgbd")
        assert e.value.code == code
