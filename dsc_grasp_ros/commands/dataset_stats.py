"""``dsc-grasp dataset-stats``: statistics of grasp datasets as the network sees them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import ROOT

DESCRIPTION = """\
Statistics of a grasp dataset as the network sees it: depth spread, object size, grasps per image.

For any Cornell or Jacquard-format folder (our synthetic data included), and with --shared for
the real Cornell / Jacquard samples in ../shared/data. Per image, in the network crop:

* depth spread: standard deviation and 2-98 % range of the valid depth (metres), and the median
  depth;
* object size (network pixels): longest side of the minimum-area rectangle around each object
  blob; blobs from *_mask.png where a dataset has masks (Jacquard), else from the depth (more
  than 6 mm in front of a robustly fitted quadratic surface: Cornell; misses objects thinner than
  that); blobs under 20 (mask) or 100 (depth) network px are ignored;
* grasp opening (network pixels): the rectangles' opening, for rectangles centred in the crop;
* grasps per image: all rectangles of the image.
"""

EPILOG = """\
Crops (--crop): native = the centred 224x224 window at full resolution (the paper's Cornell
protocol), square = the largest centred square resized to 224 (the paper's Jacquard protocol:
1024 -> 224), auto = native for Cornell, square otherwise, scale = the ROS node's ROI
(train/evaluate --protocol scale: from our synthetic data's camera.json intrinsics and the median
depth, a metre spans --net-px-per-metre network pixels).

Prints a Markdown table (--json: a list with one object per folder). A missing folder exits with
status 2 and one line naming it.

examples:
  dsc-grasp dataset-stats --shared                       # real Cornell + Jacquard samples
  dsc-grasp dataset-stats DIR [DIR ...] --limit 300 --json
"""


def register(sub):
    ap = sub.add_parser("dataset-stats", help="depth spread, object size, grasp openings of datasets in the network crop",
                        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", help="dataset folders (Cornell or Jacquard format, searched recursively)")
    ap.add_argument("--shared", action="store_true", help="also the real samples in ../shared/data (Cornell: native crop, Jacquard: square)")
    ap.add_argument("--crop", choices=["auto", "native", "square", "scale"], default="auto", help="network crop (default: auto = native for Cornell, square otherwise; scale = the node's ROI from our synthetic data's camera.json at --net-px-per-metre, as train/evaluate --protocol scale)")
    ap.add_argument("--net-px-per-metre", type=float, default=None, help="scale of --crop scale (default: preprocess.DEFAULT_NET_PX_PER_METRE, 536)")
    ap.add_argument("--depth", choices=["perfect", "stereo"], default="perfect", help="Jacquard-format depth image (default: perfect)")
    ap.add_argument("--limit", type=int, default=None, help="at most N images per folder, evenly spread (default: all)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    ap.set_defaults(func=run, _parser=ap)


def run(a) -> int:
    ap = a._parser
    if a.limit is not None and a.limit < 1:
        ap.error("--limit must be >= 1")
    jobs = []
    if a.shared:
        shared = ROOT / ".." / "shared" / "data"
        if not shared.is_dir():
            print(f"dsc-grasp dataset-stats: {shared.resolve()} not found (the shared real samples)", file=sys.stderr)
            return 2
        jobs += [(shared / "cornell", "cornell (shared)", a.crop, "perfect"), (shared / "jacquard", "jacquard (shared)", a.crop, "perfect")]
        if a.depth == "stereo":
            jobs.append((shared / "jacquard", "jacquard stereo (shared)", a.crop, "stereo"))
    jobs += [(Path(f), None, a.crop, a.depth) for f in a.folders]
    if not jobs:
        ap.error("give dataset folders and/or --shared")
    from ..data.stats import folder_stats, table

    rows = []
    for path, name, crop, depth in jobs:
        try:
            rows.append(folder_stats(path, crop, depth, a.limit, name, a.net_px_per_metre))
        except (FileNotFoundError, ValueError) as e:
            print(f"dsc-grasp dataset-stats: {path}: {e}", file=sys.stderr)
            return 2
    print(json.dumps(rows, indent=1) if a.json else table(rows))
    return 0
