#!/usr/bin/env python3
"""Picture of the finger clearance check: benchmark scenes, the shipped model's best grasp with the
check off (left) and on (right, finger footprints cyan = clear of the object, magenta = not).

    .venv/bin/python scripts/finger_check_figure.py --out docs/img/finger_check.png
    .venv/bin/python scripts/finger_check_figure.py --objects tomato_soup_can,mustard_bottle --trials 0,1 --camera oblique

Rows: one benchmark scene each (``dsc-grasp bench`` scenes: object, trial, --seed); the crop is the
object's neighbourhood in the camera image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", default="tomato_soup_can,potted_meat_can,mustard_bottle", help="benchmark objects, comma-separated")
    p.add_argument("--trials", default="0", help="trial numbers, comma-separated (default: 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--camera", choices=("top", "oblique"), default="top")
    p.add_argument("--modality", choices=("rgbd", "d", "rgb"), default="rgbd", help="shipped model (default: rgbd)")
    p.add_argument("--crop", type=int, default=200, help="crop size in pixels around the object (default: 200)")
    p.add_argument("--out", default="finger_check.png", help="PNG to write")
    args = p.parse_args(argv)

    import cv2

    from dsc_grasp_ros.bench.policies import approach_in_camera
    from dsc_grasp_ros.bench.runner import _object_pixel, observation
    from dsc_grasp_ros.bench.scene import BenchWorld, SceneSettings
    from dsc_grasp_ros.core.imageio import write_rgb
    from dsc_grasp_ros.core.inference import DetectorConfig, GraspDetector
    from dsc_grasp_ros.sim import mesh_objects as mo
    from dsc_grasp_ros.core.visualize import draw_grasps

    world = BenchWorld(SceneSettings(camera=args.camera).validate(), None)
    det = GraspDetector(DetectorConfig(modality=args.modality, backend="eager"))
    rows = []
    try:
        for name in mo.resolve_names(args.objects, None):
            for t in (int(x) for x in args.trials.split(",")):
                scene = world.build(name, t, args.seed)
                try:
                    obs = observation(world, scene)
                    a = approach_in_camera(obs, "vertical")
                    panels = []
                    for mode in ("off", "prefer"):
                        det.update(finger_check=mode)
                        res = det.detect(None if det.modality == "d" else obs.rgb, obs.depth, obs.K, approach=a)
                        img = draw_grasps(obs.rgb, res.grasps[:1], labels=False, fingers=det.cfg.fingers())
                        u, v = (int(round(c)) for c in _object_pixel(world, scene))
                        h, w = img.shape[:2]
                        r = args.crop // 2
                        x0, y0 = min(max(u - r, 0), w - 2 * r), min(max(v - r, 0), h - 2 * r)
                        crop = np.ascontiguousarray(img[y0:y0 + 2 * r, x0:x0 + 2 * r])
                        cv2.putText(crop, f"{Path(name).stem[:18]} #{t}: check {mode}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                                    (0, 0, 0), 1, cv2.LINE_AA)
                        panels.append(crop)
                    rows.append(np.concatenate([panels[0], np.full((2 * r, 4, 3), 255, np.uint8), panels[1]], 1))
                finally:
                    world.discard(scene)
    finally:
        world.close()
    grid = np.concatenate([np.concatenate([row, np.full((4, row.shape[1], 3), 255, np.uint8)], 0) for row in rows], 0)
    write_rgb(args.out, grid)
    print(f"wrote {args.out} ({len(rows)} scenes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
