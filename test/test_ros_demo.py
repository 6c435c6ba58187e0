"""The README's first command, ./scripts/run_demo.sh, runs on its own and exits 0, printing the
grasps and writing one annotated image per frame of the bundled bag."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pytest

from ros_helpers import ROOT, pick_domain_id

BAG = ROOT / "data" / "bags" / "sim_rgbd"


def test_run_demo(tmp_path):
    if not (BAG / "metadata.yaml").is_file():
        pytest.skip(f"bundled bag {BAG} missing")
    import os

    env = dict(os.environ, ROS_DOMAIN_ID=str(pick_domain_id()), OMP_NUM_THREADS="1")
    out = tmp_path / "demo"
    r = subprocess.run([str(ROOT / "scripts" / "run_demo.sh"), "--out", str(out)], env=env, capture_output=True, text=True,
                       timeout=300, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pngs = sorted(out.glob("grasps_*.png"))
    assert len(pngs) >= 27, r.stdout[-2000:]  # the bag has 30 frames; every one is processed (lockstep)
    n_sets = int(re.search(r"listener: (\d+) candidate sets", r.stdout).group(1))
    assert n_sets >= 27, r.stdout[-2000:]
    rows = list(csv.DictReader(open(out / "grasps.csv")))  # one row per published grasp
    assert all(row["frame_id"] == "camera_color_optical_frame" for row in rows)
    if rows:  # (a trained model may find nothing above min_quality in some frames)
        assert "camera_color_optical_frame: p=(" in r.stdout
    import cv2

    img = cv2.imread(str(pngs[0]))
    assert img is not None and img.shape[0] == 480 and img.shape[1] > 640  # image + quality map beside it
