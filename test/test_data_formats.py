"""Dataset readers on files written in the real formats, and on the real samples when present."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dsc_grasp_ros.data import (
    DatasetFormatError,
    GraspDataset,
    find_items,
    read_cornell_grasps,
    read_depth,
    read_jacquard_grasps,
    read_object_map,
    read_rects,
    write_cornell_grasps,
    write_jacquard_grasps,
)
from dsc_grasp_ros.data.toy import write_toy_cornell, write_toy_jacquard
from dsc_grasp_ros.core.grasp import rect_corners

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _need(sub: str) -> Path:
    p = SHARED / sub
    if not p.is_dir():
        pytest.skip(f"real {sub} samples not found at {p} (shared data folder absent)")
    return p


# --------------------------------------------------------------------------- written fixtures
def test_jacquard_grasps_crlf_blank_lines_and_angle_sign(tmp_path):
    f = tmp_path / "0_x_grasps.txt"
    # theta = +30 deg in Jacquard (clockwise as seen) -> closing axis points down-right in the image
    f.write_bytes(b"100.0;50.0;30.0;40.0;10.0\r\n200;80;-90;20;5\r\n\r\n")
    r = read_jacquard_grasps(f)
    assert r.shape == (2, 5)
    assert r[0, :2].tolist() == [100.0, 50.0]
    assert math.isclose(r[0, 2], math.radians(-30.0))
    assert r[0, 3] == 40.0 and r[0, 4] == 10.0
    c = rect_corners(*r[0])
    d = c[1] - c[0]  # closing axis in (u, v): +u and +v (down) for a clockwise-as-seen 30 deg
    assert d[0] > 0 and d[1] > 0 and math.isclose(math.degrees(math.atan2(d[1], d[0])), 30.0, abs_tol=1e-6)
    assert math.isclose(abs(r[1, 2]), math.pi / 2)


def test_jacquard_round_trip_and_errors(tmp_path):
    rects = np.array([[10.5, 20.25, 0.3, 30.0, 8.0], [50, 60, -1.2, 12.0, 6.0]])
    f = tmp_path / "g.txt"
    write_jacquard_grasps(f, rects)
    assert b"\r\n" in f.read_bytes()
    np.testing.assert_allclose(read_jacquard_grasps(f), rects, atol=1e-4)
    f.write_text("1;2;3;4\n")
    with pytest.raises(DatasetFormatError, match="g.txt:1"):
        read_jacquard_grasps(f)


def test_cornell_groups_of_four_and_nan_rectangles(tmp_path):
    rects = np.array([[100, 80, 0.2, 30, 12], [60, 40, -1.0, 20, 10]])
    f = tmp_path / "pcd0100cpos.txt"
    write_cornell_grasps(f, rects)
    with open(f, "a") as fh:
        fh.write("NaN NaN\n1 2\n3 4\nNaN NaN\n")  # as in the real pcd0132cpos.txt
    got = read_cornell_grasps(f)
    np.testing.assert_allclose(got, rects, atol=1e-3)
    f.write_text("1 2\n3 4\n5 6\n")
    with pytest.raises(DatasetFormatError, match="multiple of 4"):
        read_cornell_grasps(f)


def test_find_items_on_written_folders(tmp_path):
    write_toy_jacquard(tmp_path / "jq", n_objects=3, per_object=2)
    items = find_items("jacquard-format", tmp_path / "jq")
    assert len(items) == 6 and len({it.group for it in items}) == 3
    assert items[0].id == "obj000/0_obj000" and items[0].group == "obj000"
    stereo = find_items("jacquard", tmp_path / "jq", depth="stereo")
    assert stereo[0].depth.endswith("_stereo_depth.tiff")
    d = read_depth(stereo[0].depth)
    assert d.dtype == np.float32 and (d == -1).any()  # LZW TIFF with Jacquard's invalid marker

    write_toy_cornell(tmp_path / "co", n=3)
    items = find_items("cornell", tmp_path / "co")
    assert [it.id for it in items] == ["01/pcd0100", "01/pcd0101", "01/pcd0102"]
    assert len(read_rects(items[0])) == 3  # the NaN rectangle appended by the writer is dropped
    (tmp_path / "map.txt").write_text("# image object\npcd0100 7\n101, 7\n0102 9 mug\n")
    om = read_object_map(tmp_path / "map.txt")
    assert [it.group for it in find_items("cornell", tmp_path / "co", object_map=tmp_path / "map.txt")] == ["7", "7", "9"]
    assert om == {"100": "7", "101": "7", "102": "9"}
    with pytest.raises(DatasetFormatError, match="no jacquard"):
        find_items("jacquard", tmp_path / "co")


def test_dataset_sample_shapes_non_square_images(tmp_path):
    write_toy_jacquard(tmp_path, n_objects=1, per_object=1, height=120, width=200)
    for modality, c in (("d", 1), ("rgb", 3), ("rgbd", 4)):
        ds = GraspDataset(find_items("jacquard-format", tmp_path), modality, input_size=64)
        s = ds[0]
        assert s["x"].shape == (c, 64, 64) and s["y"].shape == (4, 64, 64)
        assert s["y"][0].max() == 1.0 and len(s["rects"]) == 3
        # rectangles were mapped through the centred-square ROI: 120 px -> 64 px
        full = read_rects(ds.items[0])
        np.testing.assert_allclose(s["rects"][:, 3], full[:, 3] * 64 / 120, rtol=1e-6)


# --------------------------------------------------------------------------- real samples
def test_real_cornell_every_rectangle_parsed():
    root = _need("cornell")
    items = find_items("cornell", root)
    assert len(items) == 50
    counts = [len(read_rects(it)) for it in items]
    assert sum(counts) == 233  # 235 rectangles in the files, 2 with NaN corners (pcd0132)
    assert min(counts) >= 1
    r = read_rects(next(it for it in items if it.id.endswith("pcd0132")))
    assert len(r) == 3 and np.isfinite(r).all()
    for it in items:  # independent count: groups of 4 lines, minus groups containing NaN
        lines = [l.lower() for l in Path(it.grasps).read_text().splitlines() if l.strip()]
        groups = [lines[i : i + 4] for i in range(0, len(lines), 4)]
        assert len(read_rects(it)) == sum(not any("nan" in l for l in g) for g in groups)


def test_real_jacquard_every_rectangle_parsed():
    root = _need("jacquard")
    items = find_items("jacquard", root)
    assert len(items) == 23 and len({it.group for it in items}) == 5
    total = 0
    for it in items:
        lines = [l for l in Path(it.grasps).read_bytes().decode().split("\n") if l.strip()]
        r = read_rects(it)
        assert len(r) == len(lines) and np.isfinite(r).all()
        total += len(r)
    assert total == 2496
    for depth in ("perfect", "stereo"):
        d = read_depth(find_items("jacquard", root, depth=depth)[0].depth)
        assert d.shape == (1024, 1024) and d.dtype == np.float32


def test_real_samples_load_through_the_dataset():
    for name in ("cornell", "jacquard"):
        root = _need(name)
        ds = GraspDataset(find_items(name, root)[:2], "rgbd")
        s = ds[0]
        assert s["x"].shape == (4, 224, 224) and np.isfinite(s["x"].numpy()).all()
        assert s["y"][0].sum() > 0
