"""Augmentation (paper IV-A.3): labels move with the image; decoded targets equal the labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dsc_grasp_ros.core.conventions import angle_difference
from dsc_grasp_ros.data import Augmentation, GraspDataset, find_items, rot90_array, rot90_matrix, zoom_roi
from dsc_grasp_ros.data.toy import write_toy_jacquard
from dsc_grasp_ros.training.evaluation import match_grasp
from dsc_grasp_ros.core.grasp import grasps_to_rects, transform_rects
from dsc_grasp_ros.core.postprocess import decode_grasps

S = 96


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = write_toy_jacquard(tmp_path_factory.mktemp("aug"), n_objects=3, per_object=1, height=150, width=200, seed=3)
    return GraspDataset(find_items("jacquard-format", root), "rgbd", input_size=S)


def _box_pose(x: np.ndarray):
    """Centre (u, v) and long-axis angle of the raised box in the depth channel of an input."""
    d = x[0]
    m = d < d.min() + 0.02  # the box top is 5 cm above the table
    vv, uu = np.nonzero(m)
    u0, v0 = uu.mean(), vv.mean()
    cov = np.cov(np.stack([uu - u0, -(vv - v0)]))  # y up, so the angle is counter-clockwise
    w, e = np.linalg.eigh(cov)
    ax = e[:, 1]
    return np.array([u0, v0]), math.atan2(ax[1], ax[0])


def test_rot90_matrix_matches_numpy():
    img = np.zeros((1, 8, 8))
    img[0, 2, 5] = 1  # (u, v) = (5, 2)
    for k in range(4):
        r = rot90_array(img, k)
        v, u = np.argwhere(r[0])[0]
        np.testing.assert_allclose(rot90_matrix(k, 8) @ [5, 2, 1], [u, v])


def test_zoom_roi_is_centred_and_shrinks():
    full = zoom_roi(480, 640, 1.0, 224)
    half = zoom_roi(480, 640, 0.5, 224)
    assert (full.x, full.y, full.w) == (80, 0, 480)
    assert half.w == 240 and half.x + half.w / 2 == full.x + full.w / 2 and half.y + half.h / 2 == 240


@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize("zoom", [1.0, 0.62])
def test_labels_follow_the_image(ds, k, zoom):
    for i in range(len(ds)):
        x, rects = ds.sample(i, k, zoom)
        assert x.shape == (4, S, S)
        # 1) the image content moved like the labels: the box centre is the middle rectangle's
        #    centre, and its long axis is perpendicular to the closing axis
        centre, axis = _box_pose(x)
        np.testing.assert_allclose(centre, rects[1, :2], atol=1.0)
        assert math.degrees(angle_difference(axis + math.pi / 2, rects[1, 2])) < 4.0
        # 2) labels equal the independently transformed un-augmented labels
        x0, r0 = ds.sample(i, 0, 1.0)
        c = (S - 1) / 2
        zm = np.array([[1 / zoom, 0, c - c / zoom], [0, 1 / zoom, c - c / zoom]])  # zoom about the centre
        expect = transform_rects(transform_rects(r0, zm), rot90_matrix(k, S))
        np.testing.assert_allclose(rects[:, :2], expect[:, :2], atol=0.6)  # integer ROI rounding
        assert np.all(np.degrees(angle_difference(rects[:, 2], expect[:, 2])) < 1e-6)
        np.testing.assert_allclose(rects[:, 3:], expect[:, 3:], rtol=0.02)
        # 3) the decoded ground truth of the transformed sample is one of the transformed rectangles
        y = ds.targets(rects)
        g = decode_grasps(*(torch.from_numpy(m) for m in y), sigma=2.0, top_k=1)[0]
        assert match_grasp(grasps_to_rects([g])[0], rects)["correct"]
        nearest = rects[np.argmin(np.hypot(rects[:, 0] - g.u, rects[:, 1] - g.v))]
        assert math.degrees(angle_difference(g.angle, nearest[2])) < 1.0
        # the peak lies on that rectangle's compact (1/3 opening x jaw) quality region
        du, dv = g.u - nearest[0], g.v - nearest[1]
        along = du * math.cos(nearest[2]) - dv * math.sin(nearest[2])
        across = du * math.sin(nearest[2]) + dv * math.cos(nearest[2])
        assert abs(along) <= nearest[3] / 6 + 1 and abs(across) <= nearest[4] / 2 + 1


def test_random_augmentation_is_seeded_and_covers_all_turns(ds):
    aug = Augmentation()
    ks = {aug.sample(u, 0.0)[0] for u in np.linspace(0, 0.999, 50)}
    assert ks == {0, 1, 2, 3}
    assert aug.sample(0.0, 0.0)[1] == 0.5 and math.isclose(aug.sample(0.0, 0.999999)[1], 1.0, abs_tol=1e-5)
    ads = GraspDataset(ds.items, "rgbd", S, augment=aug)
    torch.manual_seed(5)
    a = [ads[0]["rects"] for _ in range(4)]
    torch.manual_seed(5)
    b = [ads[0]["rects"] for _ in range(4)]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    assert any(not np.allclose(a[0], r) for r in a[1:])  # and it does vary


def test_gaussian_labels(ds):
    _, rects = ds.sample(0)
    g = GraspDataset(ds.items, "rgbd", S, label_mode="gaussian")
    y = g.targets(rects)
    assert 0.99 < y[0].max() <= 1.0 and (y[0] > 0).sum() > (ds.targets(rects)[0] > 0).sum()
    dec = decode_grasps(*(torch.from_numpy(m) for m in y), sigma=2.0)[0]
    assert match_grasp(grasps_to_rects([dec])[0], rects)["correct"]
