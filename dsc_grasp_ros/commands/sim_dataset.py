"""``dsc-grasp sim-dataset``: Jacquard-format grasp data from simulated grasp trials (PyBullet)."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
Each scene i is generated from seed S+i alone, so the output does not depend on --workers, and an
interrupted run resumes where it stopped (complete scene folders are skipped; run the same command
again). Scene folders are <out>/sim<seed>/ with N_sim<seed>_{RGB.png, perfect_depth.tiff,
stereo_depth.tiff, mask.png, grasps.txt, camera.json} per view; see docs/sim.md.

Objects: catalogue indices 0-999 are pybullet_data's random_urdfs, 1000-1009 other small objects
(--list-objects). --object-range train excludes the held-out objects, --object-range test uses only
them: generate the training and the held-out-object test set with different --seed so that their
scene ids differ.

examples:
  dsc-grasp sim-dataset --scenes 500 --out /data/sim/train --workers 2 --seed 0 --object-range train
  dsc-grasp sim-dataset --scenes 50 --out /data/sim/test --seed 10000000 --object-range test
"""


def _range(text: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A-B or N, got {text!r}") from None
    if a < 1 or b < a:
        raise argparse.ArgumentTypeError(f"need 1 <= A <= B, got {text!r}")
    return a, b


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}") from None
    return w, h


def register(sub):
    p = sub.add_parser(
        "sim-dataset",
        help="generate Jacquard-format grasp data by simulated grasp trials (PyBullet)",
        description="Generate a Jacquard-format RGB-D grasp dataset: random PyBullet scenes seen by a "
        "RealSense-D435-like camera, grasp rectangles from physical grasp trials with a parallel-jaw gripper.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenes", type=int, help="number of scenes (seeds S .. S+N-1)")
    p.add_argument("--out", help="output folder (created; resumed when it holds a run with the same settings)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes, each with its own PyBullet client (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed S of the first scene (default: 0)")
    p.add_argument("--views", type=int, default=1, help="camera views per scene (default: 1); each view has its own grasp trials")
    p.add_argument("--objects-per-scene", type=_range, default=(1, 4), metavar="A-B", help="objects per scene, uniform in A..B (default: 1-4)")
    p.add_argument("--object-range", default="all", metavar="RANGES",
                   help="catalogue indices to draw objects from: 'all' (default), 'train' (without the held-out objects), "
                   "'test' (held-out only) or ranges like '0-899,1000-1005'")
    p.add_argument("--candidates", type=int, default=80, help="grasp candidates per object and view (default: 80)")
    p.add_argument("--min-grasps", type=int, default=3, help="views with fewer successful grasps are re-shot or dropped (default: 3)")
    p.add_argument("--size", type=_size, default=(640, 480), metavar="WxH", help="image size (default: 640x480; intrinsics scale with it)")
    p.add_argument("--hole-value", type=float, default=-1.0, help="value of stereo-depth holes (default: -1 as in Jacquard; a RealSense gives 0)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop starting new scenes after this long (scenes in progress are dropped; rerun to continue)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--list-objects", action="store_true", help="print the object catalogue (index, name, held-out flag) and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..sim.objects import HELD_OUT, catalogue

    if args.list_objects:
        for i, spec in catalogue().items():
            print(f"{i}\t{spec.name}\t{'held-out' if i in HELD_OUT else 'train'}")
        return 0
    if args.scenes is None or not args.out:
        print("sim-dataset: --scenes and --out are required (see --help)")
        return 2
    if args.scenes < 0 or args.workers < 1 or args.views < 1 or args.candidates < 1:
        print("sim-dataset: --scenes must be >= 0, --workers, --views and --candidates >= 1")
        return 2
    from ..sim.dataset import GenConfig, OutputLocked, generate

    cfg = GenConfig(
        views=args.views,
        objects_per_scene=tuple(args.objects_per_scene),
        object_range=args.object_range,
        width=args.size[0],
        height=args.size[1],
        candidates=args.candidates,
        min_grasps=args.min_grasps,
        hole_value=args.hole_value,
    )
    try:
        summary = generate(args.out, args.scenes, args.seed, args.workers, cfg, progress=not args.quiet, time_limit=args.time_limit)
    except (ValueError, OutputLocked) as e:
        print(f"sim-dataset: {e}")
        return 2
    s = dict(summary)
    s["objects"] = f"{len(summary['objects'])} catalogue objects"
    s.pop("config", None)
    print(json.dumps(s, indent=1))
    return 1 if summary["this_run"]["errors"] else 0
