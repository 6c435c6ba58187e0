"""``dsc-grasp bag``: record the bundled demo bag from the simulator, replay a bag over DDS."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import ROOT, add_group

RAW = argparse.RawDescriptionHelpFormatter

RECORD_DESCRIPTION = """\
Record the bundled demo bag: a simulated RGB-D sequence (PyBullet) as a rosbag2 MCAP.

Topics are the realsense2_camera 4.5x aligned-depth ones (color rgb8, depth 16UC1 mm, CameraInfo),
stamped at 30 Hz, frame_id camera_color_optical_frame; the camera pose goes to /tf (the sim camera
orbits slowly) and to the bag's metadata. MCAP chunks are zstd-compressed (the bag must stay under
--max-mb). With --synthetic it records the numpy ray-cast box scene instead (no PyBullet).
Needs no ROS 2 installation (the bag is written with the rosbags library).
"""

RECORD_EPILOG = """\
examples:
  dsc-grasp bag record-sim --force                          # re-record data/bags/sim_rgbd
  dsc-grasp bag record-sim --synthetic --out runs/demo_bag  # the box scene, no PyBullet
  dsc-grasp bag record-sim --frames 60 --seed 3 --out runs/bag60
"""

REPLAY_HELP = "replay a rosbag2 over DDS (stored CDR + /clock; --hz, --loop, --lockstep, --restamp); needs ROS 2"


def _register_record(sub):
    ap = sub.add_parser("record-sim", help="record the demo bag from the simulator (or the synthetic box scene)",
                        description=RECORD_DESCRIPTION, epilog=RECORD_EPILOG, formatter_class=RAW)
    ap.add_argument("--out", default=str(ROOT / "data" / "bags" / "sim_rgbd"), help="bag folder to write (default: data/bags/sim_rgbd)")
    ap.add_argument("--frames", type=int, default=30, help="frames to record (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=7, help="scene seed (default: %(default)s)")
    ap.add_argument("--width", type=int, default=640, help="image width (default: %(default)s)")
    ap.add_argument("--height", type=int, default=480, help="image height (default: %(default)s)")
    ap.add_argument("--synthetic", action="store_true", help="numpy box scene instead of the pybullet simulator")
    ap.add_argument("--max-mb", type=float, default=10.0, help="fail if the bag is larger than this (default: %(default)s)")
    ap.add_argument("--force", action="store_true", help="overwrite --out")
    ap.set_defaults(func=run_record)


def run_record(a) -> int:
    from ..devtools import bag as bagmod

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
        from ..sim.scene import render_sequence

        frames = [bagmod.Frame(f.rgb, f.depth, f.K, f.T_base_camera) for f in render_sequence(a.frames, a.seed, a.width, a.height)]
    meta = bagmod.write_rgbd_bag(out, frames, fps=30.0)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(f"wrote {out}: {len(meta['frames'])} frames {a.width}x{a.height} at 30 Hz, {size:.1f} MB, "
          f"{'moving' if meta['moving_camera'] else 'fixed'} camera")
    if size > a.max_mb:
        print(f"bag is {size:.1f} MB > {a.max_mb} MB", file=sys.stderr)
        return 1
    return 0


def _register_replay(sub):
    # every argument (--help included) goes to the replayer's own parser
    ap = sub.add_parser("replay", help=REPLAY_HELP, description=REPLAY_HELP, add_help=False, prefix_chars="\0")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="BAG and the replayer's options (dsc-grasp bag replay --help)")
    ap.set_defaults(func=run_replay)


def run_replay(args) -> int:
    try:
        from ..devtools import replay
    except ImportError as e:
        print(f"dsc-grasp bag replay: error: needs ROS 2 (rclpy): {e}", file=sys.stderr)
        return 2
    return int(replay.main(args.args, prog="dsc-grasp bag replay") or 0)


DESCRIPTION = """\
rosbag2 tools for the node's demo, tests and benchmarks:

  record-sim  record the bundled demo bag (data/bags/sim_rgbd) from the simulator
  replay      publish a bag's messages over DDS at its timing, a fixed rate or in lockstep
"""

EPILOG = """\
examples:
  dsc-grasp bag record-sim --synthetic --out runs/demo_bag
  dsc-grasp bag replay data/bags/sim_rgbd --hz 30 --loop 3
  dsc-grasp bag replay --help
"""


def register(sub):
    s = add_group(sub, "bag", help="record the demo bag from the simulator; replay a bag over DDS",
                  description=DESCRIPTION, epilog=EPILOG)
    _register_record(s)
    _register_replay(s)

