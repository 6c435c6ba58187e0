"""``dsc-grasp sim-dataset``: Jacquard-format grasp data from simulated grasp trials (PyBullet)."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
Each scene i is generated from seed S+i alone, so the output does not depend on --workers, and an
interrupted run resumes where it stopped (complete scene folders are skipped; run the same command
again). Scene folders are <out>/sim<seed>/ with N_sim<seed>_{RGB.png, perfect_depth.tiff,
stereo_depth.tiff, mask.png, grasps.txt, camera.json} per view; see docs/sim.md.

Presets (--preset; options left out take the preset's default):
  v1       the first data set (default, reproducible): pybullet_data's procedural objects, camera
           0.35-0.7 m above the support, tilt <= 20 deg, one view per scene
  v2       the real household meshes of ../shared/objects/pile_train without the benchmark set, 1-6
           objects in clutter, walls/boxes/table edges, camera 0.35-1.5 m away and tilted up to 35 deg,
           RealSense-like depth, 2 views per scene, cheaper labelling
  cornell  Cornell-like: one of those meshes alone on a plain board or floor, camera 0.5-0.8 m away
           tilted up to 30 deg, Kinect-v1-like structured-light depth (axial noise, 1/8-pixel disparity
           steps, projector shadow, edge and dark/shiny holes), 2 views per scene
  wrist    close range for a camera on the hand: 1-4 of those meshes without clutter, camera
           0.15-0.5 m away tilted up to 30 deg, D405-like field of view and depth (18 mm baseline,
           0.1 mm unit, nothing nearer than 7 cm), 2 views per scene
v2, cornell and wrist record their name in dataset_config.json, each scene.json and each camera.json
(v1 writes the files of the first data set, without it).

Objects (v1): catalogue indices 0-999 are pybullet_data's random_urdfs, 1000-1009 other small objects.
Objects (v2, cornell, wrist): names in the object folder; 'all' = every non-benchmark object, 'train' =
those minus the held-out ones, 'test' = the held-out ones (--list-objects shows the split). Benchmark
objects are refused. Generate the training and the held-out-object test set with different --seed so
that their scene ids differ.

examples:
  dsc-grasp sim-dataset --preset v2 --scenes 1500 --out /data/simv2/train --workers 2 --seed 0 --object-range train
  dsc-grasp sim-dataset --preset v2 --scenes 100 --out /data/simv2/test --workers 2 --seed 10000000 --object-range test
  dsc-grasp sim-dataset --scenes 500 --out /data/sim/train --workers 2 --seed 0 --object-range train   # v1
  dsc-grasp sim-dataset --preset cornell --scenes 120 --seed 30000000 --out /data/simcornell --time-limit 900
  dsc-grasp sim-dataset --preset wrist --scenes 120 --seed 31000000 --out /data/simwrist --distance 0.15-0.4
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


#: The presets of :data:`dsc_grasp_ros.sim.presets.PRESETS` (named here so that building the parser imports no
#: simulation code; a test checks they agree).
PRESET_NAMES = ("v1", "v2", "cornell", "wrist")


def register(sub):
    p = sub.add_parser(
        "sim-dataset",
        help="generate Jacquard-format grasp data by simulated grasp trials (PyBullet)",
        description="Generate a Jacquard-format RGB-D grasp dataset: random PyBullet scenes seen by a "
        "RealSense- or Kinect-like RGB-D camera, grasp rectangles from physical grasp trials with a parallel-jaw gripper.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenes", type=int, help="number of scenes (seeds S .. S+N-1)")
    p.add_argument("--out", help="output folder (created; resumed when it holds a run with the same settings)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes, each with its own PyBullet client (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed S of the first scene (default: 0)")
    p.add_argument("--preset", choices=PRESET_NAMES, default="v1",
                   help="scene generator: v1 (default, the first data set), v2 (real meshes, clutter, backgrounds, far tilted "
                   "cameras, RealSense depth), cornell (one mesh on a plain board, Kinect-v1 depth) or wrist (close range, "
                   "D405 depth); see below")
    p.add_argument("--views", type=int, default=None, help="camera views per scene, each with its own grasp trials (default: v1 1, the others 2)")
    p.add_argument("--objects-per-scene", type=_range, default=None, metavar="A-B", help="objects per scene, uniform in A..B (default: v1 1-4, v2 1-6, cornell 1, wrist 1-4)")
    p.add_argument("--object-range", default=None, metavar="RANGES",
                   help="objects to draw from: 'all', 'train' (without the held-out objects), 'test' (held-out only); v1 also "
                   "index ranges like '0-899,1000-1005', the mesh presets also NAME,NAME,... (default: v1 all, the others train)")
    p.add_argument("--objects-root", default=None, metavar="DIR", help="v2, cornell, wrist: object folder (default: ../shared/objects beside the project)")
    p.add_argument("--distance", type=_frange, default=None, metavar="A-B",
                   help="v2, cornell, wrist: camera distance range along its axis in metres, 0.2 <= A <= B <= 2.5 (wrist: "
                   "0.15 <= A) (default: v2 0.35-1.5, cornell 0.5-0.8, wrist 0.15-0.5)")
    p.add_argument("--max-tilt", type=float, default=None, metavar="DEG", help="largest camera tilt from vertical, 0-60 degrees (default: v1 20, v2 35, cornell and wrist 30)")
    p.add_argument("--candidates", type=int, default=None, help="grasp candidates per object and view (default: v1 80, v2 24, cornell 48, wrist 24)")
    p.add_argument("--max-candidates-per-view", type=int, default=None, help="v2, cornell, wrist: candidates per view shared by its objects (default: 72, cornell 48)")
    p.add_argument("--gripper", default=None, choices=_gripper_names(), metavar="NAME",
                   help="the labeller's gripper stroke: franka_hand (80 mm, the Panda; the default and every data set before "
                   "this option), robotiq_2f_85 (85 mm) or robotiq_2f_140 (140 mm: boxes wider than 8 cm get grasps across "
                   "their wide side too). Only the opening changes; the finger boxes, force and speed stay the labeller's. "
                   "Recorded in dataset_config.json and each camera.json; train such data without --max-opening 0.08 "
                   "(default: franka_hand)")
    p.add_argument("--min-grasps", type=int, default=3, help="views with fewer successful grasps are re-shot or dropped (default: 3)")
    p.add_argument("--size", type=_size, default=(640, 480), metavar="WxH", help="image size (default: 640x480; intrinsics scale with it)")
    p.add_argument("--hole-value", type=float, default=-1.0, help="value of stereo-depth holes (default: -1 as in Jacquard; a RealSense gives 0)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop starting new scenes after this long (scenes in progress are dropped; rerun to continue)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--list-objects", action="store_true", help="print the object catalogue (index, name, train/held-out/benchmark) of the preset and exit")
    p.set_defaults(func=run)


def _gripper_names() -> list[str]:
    from ..sim.gripper import SIM_GRIPPERS

    return list(SIM_GRIPPERS)


#: The camera distance limits of --distance (m): the nearest for each preset (a wrist camera comes closer), the farthest.
DISTANCE_MIN = {"wrist": 0.15}
DISTANCE_MIN_DEFAULT, DISTANCE_MAX = 0.2, 2.5


def _frange(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A-B in metres, got {text!r}") from None
    lo = min(DISTANCE_MIN.values())
    if not (lo <= a <= b <= DISTANCE_MAX):
        raise argparse.ArgumentTypeError(f"need {DISTANCE_MIN_DEFAULT} <= A <= B <= {DISTANCE_MAX} m ({lo} <= A with --preset wrist), got {text!r}")
    return a, b


def _distance_error(preset: str, distance) -> str | None:
    """Why ``distance`` (A, B) is outside the preset's limits, or None."""
    lo = DISTANCE_MIN.get(preset, DISTANCE_MIN_DEFAULT)
    a, b = distance
    if lo <= a <= b <= DISTANCE_MAX:
        return None
    return f"--distance must be within {lo}-{DISTANCE_MAX} m for --preset {preset} (A <= B), got {a:g}-{b:g}"


def _list_objects(preset: str, root) -> int:
    if preset == "v1":
        from ..sim.objects import HELD_OUT, catalogue

        for i, spec in catalogue().items():
            print(f"{i}\t{spec.name}\t{'held-out' if i in HELD_OUT else 'train'}")
        return 0
    from ..sim.mesh_objects import all_names, benchmark_names, is_held_out

    bench = set(benchmark_names(root))
    for i, n in enumerate(all_names(root)):
        print(f"{i}\t{n}\t{'benchmark (never used)' if n in bench else 'held-out' if is_held_out(n) else 'train'}")
    return 0


def run(args) -> int:
    if args.list_objects:
        try:
            return _list_objects(args.preset, args.objects_root)
        except (FileNotFoundError, ValueError) as e:
            print(f"sim-dataset: {e}")
            return 2
    if args.scenes is None or not args.out:
        print("sim-dataset: --scenes and --out are required (see --help)")
        return 2
    bad = [n for n in ("views", "candidates", "max_candidates_per_view") if getattr(args, n) is not None and getattr(args, n) < 1]
    if args.scenes < 0 or args.workers < 1 or bad:
        print("sim-dataset: --scenes must be >= 0, --workers, --views, --candidates and --max-candidates-per-view >= 1")
        return 2
    if args.max_tilt is not None and not (0 <= args.max_tilt <= 60):
        print(f"sim-dataset: --max-tilt must be within 0-60 degrees, got {args.max_tilt}")
        return 2
    if args.preset == "v1" and (args.distance is not None or args.objects_root is not None or args.max_candidates_per_view is not None):
        print("sim-dataset: --distance, --objects-root and --max-candidates-per-view need --preset v2, cornell or wrist")
        return 2
    if args.distance is not None and (why := _distance_error(args.preset, args.distance)):
        print(f"sim-dataset: {why}")
        return 2
    from ..sim.dataset import GenConfig, OutputLocked, generate

    kw = dict(width=args.size[0], height=args.size[1], min_grasps=args.min_grasps, hole_value=args.hole_value)
    for arg, field in (("views", "views"), ("object_range", "object_range"), ("candidates", "candidates"),
                       ("max_tilt", "max_tilt_deg"), ("distance", "dist_range"), ("max_candidates_per_view", "max_candidates_per_view")):
        if getattr(args, arg) is not None:
            kw[field] = getattr(args, arg)
    if args.gripper is not None:
        kw["gripper"] = args.gripper
    if args.objects_per_scene is not None:
        kw["objects_per_scene"] = tuple(args.objects_per_scene)
    if args.objects_root is not None:
        from pathlib import Path

        kw["objects_root"] = str(Path(args.objects_root).expanduser().resolve())
    cfg = GenConfig.of_preset(args.preset, **kw)
    try:
        summary = generate(args.out, args.scenes, args.seed, args.workers, cfg, progress=not args.quiet, time_limit=args.time_limit)
    except (ValueError, OutputLocked, FileNotFoundError, RuntimeError) as e:
        print(f"sim-dataset: {e}")
        return 2
    s = dict(summary)
    s["objects"] = f"{len(summary['objects'])} objects"
    s.pop("object_names", None)
    s.pop("config", None)
    print(json.dumps(s, indent=1))
    return 1 if summary["this_run"]["errors"] else 0
