"""Grasps from a camera close to the object (``dsc-grasp benchmark close-range``).

The single-shot benchmark with its top-down camera at several heights above the table and the
intrinsics of two RealSense models, the workspace shrunk so the object stays in view: the same
scenes for the scale ROI clamped to the image (objects look larger than in training when the
camera is near) and padded past it (objects keep the training scale). Success of the executed
grasp, per camera and distance, with Wilson 95 % intervals.
"""

from __future__ import annotations

import math

#: colour-camera intrinsics at 640x480 (vertical field of view): a D435's colour sensor (fx ~ 615 px)
#: and a D405 (fx ~ 337 px, 87 degrees horizontal)
CAMERAS = {"d435": 2 * math.degrees(math.atan(240 / 615.0)), "d405": 2 * math.degrees(math.atan(240 / 337.0))}


def sweep(distances, cameras, objects, trials: int, seed: int = 0, objects_root=None, progress: bool = True, model=None) -> dict:
    """Run every (camera, distance) on the same objects and trials; returns the results document."""
    from .policies import ModelPolicy
    from .runner import ExecutionSettings, run_benchmark
    from .scene import SceneSettings

    policies = [ModelPolicy(model, name="clamp", close_range="clamp"), ModelPolicy(model, name="pad", close_range="pad")]
    rows = []
    try:
        for cam in cameras:
            for d in distances:
                s = SceneSettings(camera_distance=float(d), vfov_deg=CAMERAS[cam], workspace_half=0.02, settled_half=0.06)
                _, doc, _ = run_benchmark(policies, objects, trials, seed, s, ExecutionSettings(), objects_root,
                                          progress=progress, tiles=False)
                for name, summ in doc["policies"].items():
                    rows.append({"camera": cam, "distance_m": float(d), "roi": name, **summ["overall"], "failures": summ["failures"]})
    finally:
        for p in policies:
            p.close()
    return {"objects": objects, "trials_per_object": trials, "seed": seed, "rows": rows}


def format_table(doc: dict) -> str:
    lines = [f"{'camera':7s} {'distance':>8s} {'clamp':>16s} {'pad':>16s}"]
    by = {(r["camera"], r["distance_m"], r["roi"]): r for r in doc["rows"]}
    for cam, d in dict.fromkeys((r["camera"], r["distance_m"]) for r in doc["rows"]):
        cells = []
        for roi in ("clamp", "pad"):
            r = by.get((cam, d, roi))
            cells.append(f"{r['successes']}/{r['trials']} ({100 * r['successes'] / max(1, r['trials']):.0f} %)" if r else "-")
        lines.append(f"{cam:7s} {d:7.2f}m {cells[0]:>16s} {cells[1]:>16s}")
    return "\n".join(lines)
