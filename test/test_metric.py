"""The paper's metric with hand-computed cases: angle below 30 deg (mod pi) and exact IoU > 0.25."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsc_grasp_ros.training.evaluation import grasp_correct, match_grasp, rect_iou
from dsc_grasp_ros.core.grasp import Grasp, grasps_to_rects


def R(u, v, deg, opening, jaw):
    return np.array([u, v, math.radians(deg), opening, jaw], dtype=np.float64)


def test_identical_rectangles():
    r = R(50, 40, 17, 30, 12)
    assert rect_iou(r, r) == pytest.approx(1.0)
    m = match_grasp(r, [r])
    assert m["correct"] and m["best_iou"] == pytest.approx(1.0) and m["match"] == 0


@pytest.mark.parametrize("deg,ok", [(29.0, True), (31.0, False), (-29.0, True), (-31.0, False)])
def test_angle_threshold_29_vs_31_degrees(deg, ok):
    # a square keeps a large IoU when rotated about its centre, so only the angle decides
    gt = R(0, 0, 10, 40, 40)
    pred = R(0, 0, 10 + deg, 40, 40)
    assert rect_iou(gt, pred) > 0.7
    assert grasp_correct(pred, [gt]) is ok


def test_angle_is_modulo_pi():
    gt = R(0, 0, 85, 30, 15)
    assert grasp_correct(R(0, 0, -85, 30, 15), [gt])  # 10 deg apart across the wrap
    assert grasp_correct(R(0, 0, 265, 30, 15), [gt])  # same axis, opposite direction
    assert not grasp_correct(R(0, 0, 40, 30, 15), [gt])


def test_known_partial_overlaps():
    a = R(0, 0, 0, 20, 10)  # 20 x 10, area 200
    assert rect_iou(a, R(10, 0, 0, 20, 10)) == pytest.approx(100 / 300)  # half overlap: 1/3
    assert rect_iou(a, R(15, 0, 0, 20, 10)) == pytest.approx(50 / 350)  # quarter overlap: 1/7
    assert rect_iou(a, R(0, 0, 0, 10, 10)) == pytest.approx(0.5)  # contained, half the area
    assert rect_iou(a, R(30, 0, 0, 20, 10)) == 0.0
    # a square and the same square turned 45 deg: the octagon has area 2(sqrt2 - 1) s^2 -> IoU 1/sqrt2
    assert rect_iou(R(0, 0, 0, 10, 10), R(0, 0, 45, 10, 10)) == pytest.approx(1 / math.sqrt(2))
    # thresholds: 1/3 > 0.25 is correct, 1/7 is not
    assert grasp_correct(R(10, 0, 0, 20, 10), [a]) and not grasp_correct(R(15, 0, 0, 20, 10), [a])


def test_iou_and_angle_must_hold_for_the_same_rectangle():
    gts = [R(0, 0, 0, 20, 10), R(100, 0, 60, 20, 10)]
    pred = R(0, 0, 60, 20, 10)  # overlaps the first (wrong angle), has the angle of the second (no overlap)
    m = match_grasp(pred, gts)
    assert not m["correct"] and m["best_iou"] == 0.0
    assert match_grasp(R(0, 0, 0, 20, 10), gts)["match"] == 0
    assert not match_grasp(pred, np.zeros((0, 5)))["correct"]


def test_predicted_rectangle_convention():
    # a predicted grasp's rectangle: opening along the closing axis, jaw = opening / 2
    g = Grasp(u=10, v=20, angle=0.0, width_px=40)
    r = grasps_to_rects([g])[0]
    np.testing.assert_allclose(r, [10, 20, 0, 40, 20])
    assert rect_iou(r, R(10, 20, 0, 40, 20)) == pytest.approx(1.0)
    assert rect_iou(r, R(10, 20, 0, 40, 40)) == pytest.approx(0.5)
