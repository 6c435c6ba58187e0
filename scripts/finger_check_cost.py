#!/usr/bin/env python3
"""Cost of the finger clearance check on benchmark scenes: the detector's ``geometry`` stage
(robust depth, pose, width, and the check) with ``finger_check`` off, prefer and require.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/finger_check_cost.py            # 10 objects x 2 trials x 3 frames
    OMP_NUM_THREADS=1 .venv/bin/python scripts/finger_check_cost.py --trials 1 --json

Prints median and p95 in milliseconds per frame (5 candidates, the node's defaults otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", default=None, help="benchmark objects, comma-separated (default: the 10 of the benchmark set)")
    p.add_argument("--trials", type=int, default=2, help="scenes per object (default: 2)")
    p.add_argument("--repeats", type=int, default=3, help="frames timed per scene and mode (default: 3)")
    p.add_argument("--camera", choices=("top", "oblique"), default="top")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)

    from dsc_grasp_ros.bench.policies import approach_in_camera
    from dsc_grasp_ros.bench.runner import observation
    from dsc_grasp_ros.bench.scene import BenchWorld, SceneSettings
    from dsc_grasp_ros.core.inference import DetectorConfig, GraspDetector
    from dsc_grasp_ros.sim import mesh_objects as mo

    world = BenchWorld(SceneSettings(camera=args.camera).validate(), None)
    det = GraspDetector(DetectorConfig(modality="rgbd", backend="eager"))
    modes = ("off", "prefer", "require")
    ms = {m: [] for m in modes}
    try:
        for name in mo.resolve_names(args.objects, None):
            for t in range(args.trials):
                scene = world.build(name, t, 0)
                try:
                    obs = observation(world, scene)
                    a = approach_in_camera(obs, "vertical")
                    for m in modes:
                        det.update(finger_check=m)
                        for _ in range(args.repeats):
                            ms[m].append(1e3 * det.detect(obs.rgb, obs.depth, obs.K, approach=a).timings["geometry"])
                finally:
                    world.discard(scene)
    finally:
        world.close()
    out = {m: {"median_ms": round(float(np.median(v)), 3), "p95_ms": round(float(np.percentile(v, 95)), 3), "frames": len(v)}
           for m, v in ms.items()}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for m, r in out.items():
            print(f"finger_check {m:8s} geometry median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms ({r['frames']} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
