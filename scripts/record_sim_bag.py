#!/usr/bin/env python3
"""Record the bundled demo bag: a simulated RGB-D sequence (pybullet) as a rosbag2 MCAP.

    .venv/bin/python scripts/record_sim_bag.py [--out data/bags/sim_rgbd] [--frames 30] [--seed 7]

Topics are the realsense2_camera 4.5x aligned-depth ones (color rgb8, depth 16UC1 mm, CameraInfo),
stamped at 30 Hz, frame_id camera_color_optical_frame; the camera pose goes to /tf (the sim camera
orbits slowly) and to the bag's metadata. MCAP chunks are zstd-compressed (the bag must stay < 10 MB).
With --synthetic it records the numpy ray-cast box scene instead (no pybullet).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsc_grasp_ros.devtools import bag as bagmod  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "data" / "bags" / "sim_rgbd"))
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--synthetic", action="store_true", help="numpy box scene instead of the pybullet simulator")
    ap.add_argument("--max-mb", type=float, default=10.0, help="fail if the bag is larger than this")
    ap.add_argument("--force", action="store_true", help="overwrite --out")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if out.exists():
        if not a.force:
            print(f"{out} exists (use --force to overwrite)", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if a.synthetic:
        frames = [bagmod.render_box_scene(a.width, a.height)] * a.frames
    else:
        from dsc_grasp_ros.sim.scene import render_sequence

        frames = [bagmod.Frame(f.rgb, f.depth, f.K, f.T_base_camera) for f in render_sequence(a.frames, a.seed, a.width, a.height)]
    meta = bagmod.write_rgbd_bag(out, frames, fps=30.0)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(f"wrote {out}: {len(meta['frames'])} frames {a.width}x{a.height} at 30 Hz, {size:.1f} MB, "
          f"{'moving' if meta['moving_camera'] else 'fixed'} camera")
    if size > a.max_mb:
        print(f"bag is {size:.1f} MB > {a.max_mb} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
