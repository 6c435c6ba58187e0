"""``dsc-grasp evaluate --save-images``: what the network saw, drawn for people, in the right place.

Known geometry: the view is the network's crop (same rectangles as the training sample), the
ground truth is drawn where its rectangle is, and the top-1 grasp is green when the metric counts it
correct and red when not.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsc_grasp_ros.data import GraspDataset, find_items
from dsc_grasp_ros.data.toy import write_toy_jacquard
from dsc_grasp_ros.core.grasp import rect_corners
from dsc_grasp_ros.core.visualize import CORRECT_COLOUR, GT_COLOUR, WRONG_COLOUR, evaluation_tile, tile_grid


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_jacquard(tmp_path_factory.mktemp("toy"), n_objects=2, per_object=1, height=96, width=128, seed=2)


@pytest.mark.parametrize("modality", ["rgbd", "d"])
def test_view_is_the_network_crop(toy, modality):
    ds = GraspDataset(find_items("jacquard-format", toy), modality, input_size=64)
    img, rects = ds.view(0)
    x, r = ds.sample(0)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    np.testing.assert_allclose(rects, r)  # same crop, same rectangles
    # the colour view is the resized centred square of the RGB image (96 x 128 -> the middle 96 x 96)
    from dsc_grasp_ros.data.formats import read_rgb
    import cv2

    full = read_rgb(ds.items[0].rgb)[:, 16:112, :3]
    expect = cv2.resize(np.ascontiguousarray(full), (64, 64), interpolation=cv2.INTER_LINEAR)
    assert np.abs(img.astype(int) - expect.astype(int)).mean() < 3.0


def _has(img, colour, pts) -> int:
    return sum(int(np.all(img[int(round(v)), int(round(u))] == colour)) for u, v in pts)


@pytest.mark.parametrize("correct", [True, False])
def test_tile_draws_truth_and_the_verdict_colour(correct):
    img = np.zeros((100, 100, 3), np.uint8)
    gt = np.array([[30.0, 60.0, 0.0, 30.0, 12.0]])
    grasp = {"u": 70.0, "v": 40.0, "angle_deg": 90.0, "width_px": 20.0, "quality": 0.9}
    tile = evaluation_tile(img, gt, {"id": "x", "correct": correct, "best_iou": 0.5, "grasp": grasp})
    # the ground-truth outline passes through the middle of each edge of its rectangle
    c = rect_corners(*gt[0])
    mids = [(c[k] + c[(k + 1) % 4]) / 2 for k in range(4)]
    assert _has(tile, GT_COLOUR, mids) == 4
    # the grasp's centre dot in the verdict's colour, and nowhere the other verdict's colour
    want, other = (CORRECT_COLOUR, WRONG_COLOUR) if correct else (WRONG_COLOUR, CORRECT_COLOUR)
    assert np.all(tile[40, 70] == want)
    assert not np.any(np.all(tile[15:] == other, axis=-1))
    # no grasp at all: the tile says so, and still shows the truth
    empty = evaluation_tile(img, gt, {"id": "x", "correct": False, "best_iou": 0.0, "grasp": None}, size=50)
    assert empty.shape == (50, 50, 3)


def test_grid_lays_tiles_out_row_by_row():
    tiles = [np.full((10, 10, 3), k, np.uint8) for k in range(5)]
    g = tile_grid(tiles, cols=3, gap=2)
    assert g.shape == (22, 34, 3)
    assert g[0, 0, 0] == 0 and g[0, 12, 0] == 1 and g[12, 12, 0] == 4 and g[12, 30, 0] == 255  # empty cell white
    with pytest.raises(ValueError, match="no tiles"):
        tile_grid([], 3)
