"""``dsc-grasp candidates``: every grasp candidate the detector proposes on closed-loop scenes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DESCRIPTION = """\
What the detector proposes on closed-loop scenes: every candidate, accepted or rejected (why).

For each model, on the scenes of the per-epoch closed-loop check ('dsc-grasp train
--closed-loop-trials': 10 synthetic training objects, run seed 1000) or the benchmark objects
(--objects benchmark), runs the core detector at the node's defaults but with --min-quality
(default 0: show every peak) and prints, per scene and model, the accepted candidates as
(quality, opening in mm) and the rejected ones with their reason. Used to see *why* a model ends
trials as no_grasp (e.g. openings wider than the gripper: too_wide). Needs PyBullet and the
meshes in ../shared/objects.
"""

EPILOG = """\
With --json: one JSON line per scene and model: {"object", "trial", "model", "accepted":
[[quality, opening_mm], ...], "rejected": [[code, reason], ...]}.

examples:
  dsc-grasp candidates models/dsc_graspnet_rgbd.pt runs/x/model.pt --objects 4 --trials 2
  dsc-grasp candidates models/dsc_graspnet_rgbd.pt --objects benchmark --trials 1 --json
"""


def register(sub):
    ap = sub.add_parser("candidates", help="every grasp candidate (accepted, or rejected and why) on closed-loop scenes",
                        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model files (.pt with the .json beside it)")
    ap.add_argument("--objects", default="4", help="N: the first N objects of the closed-loop check; 'benchmark'; or NAME[,NAME...] (default: 4)")
    ap.add_argument("--trials", type=int, default=2, help="scenes per object (default: 2)")
    ap.add_argument("--seed", type=int, default=None, help="run seed of the scenes (default: the check's, 1000; 0, the benchmark's, with --objects benchmark or names)")
    ap.add_argument("--min-quality", type=float, default=0.0, help="detector min_quality (default: 0, every peak)")
    ap.add_argument("--max-opening", type=float, default=0.08, help="detector max_gripper_opening in metres (default: 0.08, the node's)")
    ap.add_argument("--json", action="store_true", help="one JSON line per scene and model")
    ap.set_defaults(func=run)


def run(args) -> int:
    missing = [m for m in args.models if not Path(m).is_file()]
    if missing:
        print(f"dsc-grasp candidates: error: model file {missing[0]} not found", file=sys.stderr)
        return 2
    from ..bench.runner import observation
    from ..bench.scene import BenchWorld
    from ..core.inference import DetectorConfig, GraspDetector
    from ..sim import mesh_objects as mo
    from ..training.closed_loop import CLOSED_LOOP_SEED, check_objects

    if args.objects.isdigit():
        objects, seed = check_objects()[: int(args.objects)], CLOSED_LOOP_SEED
    else:
        objects, seed = mo.resolve_names(args.objects), 0
    seed = seed if args.seed is None else args.seed
    dets = {m: GraspDetector(DetectorConfig(model_path=m, backend="eager", min_quality=args.min_quality,
                                            max_gripper_opening=args.max_opening)) for m in args.models}
    world = BenchWorld()
    try:
        for obj in objects:
            for t in range(args.trials):
                scene = world.build(obj, t, seed)  # the scenes of dsc-grasp bench --seed SEED
                obs = observation(world, scene)
                for m, d in dets.items():
                    r = d.detect(None if d.modality == "d" else obs.rgb, obs.depth, obs.K)
                    acc = [(round(g.quality, 2), round(1000 * g.width_m)) for g in r.grasps]
                    rej = [(c, s) for c, s in zip(r.rejected_codes, r.rejected)]
                    if args.json:
                        print(json.dumps({"object": Path(obj).stem, "trial": t, "model": m, "accepted": acc, "rejected": rej}))
                    else:
                        print(f"{Path(obj).stem[:24]:24s} {t}  {Path(m).name:28s} accepted (q, mm) {acc}")
                        for c, s in rej:
                            print(f"{'':56s} rejected {c}: {s}")
                world.discard(scene)
    finally:
        world.close()
    return 0
