"""Workspace box and instance masks on cluttered scenes: no kept grasp outside the box or off the
chosen object.

Each scene drops ``n_objects`` catalogue objects (pybullet_data's random shapes, settled) around a
point of the table in front of the robot base; an orbiting camera renders colour, depth and the
simulator's segmentation, which becomes the instance mask a segmenter would publish (labels 1..N
in the order the objects were dropped). For every frame the shipped model's grasps go through the
core's :func:`~dsc_grasp_ros.core.workspace.select_grasps` (the node's call) with a workspace box
that cuts the scene in half, support-plane removal and, in turn, each object as the target. Each
kept grasp is then checked against the simulator's ground truth, independently of the mask: its
centre (robot base) must be inside the box and within ``tolerance`` of the target object's
bounding box (PyBullet's AABB).

    python -m dsc_grasp_ros.bench.workspace_check --frames 100      (prints one JSON summary)
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from ..core.geometry import CameraIntrinsics, Transform
from ..core.workspace import WorkspaceBox, select_grasps


def run(frames: int = 100, scenes: int = 10, n_objects: int = 4, seed: int = 0, tolerance: float = 0.01, top_k: int = 20) -> dict:
    from ..core.inference import DetectorConfig, GraspDetector
    from ..sim import camera as cam
    from ..sim.scene import connect, disconnect, random_color, render, sample_lighting, settle
    from ..sim.objects import catalogue, sample_scale

    det = GraspDetector(DetectorConfig(device="cpu", top_k=top_k, min_quality=0.1))
    per_scene = max(1, int(math.ceil(frames / scenes)))
    counts = {"frames": 0, "requests": 0, "grasps_detected": 0, "grasps_kept": 0, "kept_outside_box": 0, "kept_off_target": 0,
              "requests_without_grasp": 0}
    dropped: dict[str, int] = {}
    rng = np.random.default_rng(seed)
    centre = np.array([0.5, 0.0])
    for s in range(scenes):
        if counts["frames"] >= frames:
            break
        p, client = connect()
        try:
            p.loadURDF("plane.urdf", [0, 0, 0], physicsClientId=client)
            specs = [i for i in catalogue() if i < 1000]
            bodies = []
            for k in range(n_objects):
                spec = catalogue()[int(rng.choice(specs))]
                ang = 2 * math.pi * k / n_objects + rng.uniform(-0.3, 0.3)
                xy = centre + rng.uniform(0.07, 0.11) * np.array([math.cos(ang), math.sin(ang)])
                b = p.loadURDF(spec.urdf, [xy[0], xy[1], 0.08], p.getQuaternionFromEuler(rng.uniform(-3, 3, 3).tolist()),
                               globalScaling=sample_scale(spec, rng), physicsClientId=client)
                p.changeVisualShape(b, -1, rgbaColor=random_color(rng), physicsClientId=client)
                bodies.append(b)
            settle(p, client, bodies, max_steps=960)
            aabb = {k + 1: np.array(p.getAABB(b, physicsClientId=client)) for k, b in enumerate(bodies)}
            # the box: the half of the scene with x > the centre (cuts through the clutter), table to 30 cm
            box = WorkspaceBox((float(centre[0]), -1.0, -0.02), (1.5, 1.0, 0.3))
            intr = cam.Intrinsics.d435(640, 480)
            light = sample_lighting(rng)
            az0 = rng.uniform(0, 2 * math.pi)
            for i in range(per_scene):
                if counts["frames"] >= frames:
                    break
                az = az0 + math.radians(3.0) * i
                tilt = math.radians(10.0)
                eye = np.array([centre[0], centre[1], 0.0]) + np.array([math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az),
                                                                        math.cos(tilt)]) * 0.55
                T_wc = cam.look_at(eye, np.array([centre[0], centre[1], 0.0]), roll=az)
                rgb, depth, seg = render(p, client, T_wc, intr, light)
                mask = np.zeros(seg.shape, np.int32)
                for k, b in enumerate(bodies):
                    mask[(seg & ((1 << 24) - 1)) == b] = k + 1
                T = Transform.from_matrix(T_wc)  # the base frame is the world frame here
                res = det.detect(rgb, depth, intr.K)
                counts["frames"] += 1
                counts["grasps_detected"] += len(res.grasps)
                camk = CameraIntrinsics.from_K(intr.K)
                for label in sorted(set(int(x) for x in np.unique(mask)) - {0}):
                    sel = select_grasps(res.grasps, T, box=box, support_plane="remove", depth=depth, cam=camk, mask=mask,
                                        target=label, per_object=0)
                    counts["requests"] += 1
                    counts["requests_without_grasp"] += int(not sel.grasps)
                    for r, n in sel.dropped.items():
                        dropped[r] = dropped.get(r, 0) + n
                    lo, hi = aabb[label]
                    for g in sel.grasps:
                        c = T.apply(np.asarray(g.position, float))
                        counts["grasps_kept"] += 1
                        counts["kept_outside_box"] += int(not box.contains(c)[0])
                        counts["kept_off_target"] += int(not np.all((c >= lo - tolerance) & (c <= hi + tolerance)))
        finally:
            disconnect(p, client)
    return {"settings": {"frames": frames, "scenes": scenes, "n_objects": n_objects, "seed": seed, "tolerance_m": tolerance,
                         "top_k": top_k, "box": "x >= scene centre (half the clutter), z in [-0.02, 0.3]",
                         "support_plane": "remove"}, "counts": counts, "dropped": dropped}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--objects", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = run(a.frames, a.scenes, a.objects, a.seed)
    print(json.dumps(out, indent=1))
    return 0 if out["counts"]["kept_outside_box"] == 0 and out["counts"]["kept_off_target"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
