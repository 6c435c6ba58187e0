"""The finger clearance check on benchmark scenes: its cost (``dsc-grasp benchmark finger-check``)
and its picture (``dsc-grasp plot finger-check``).

Both build the scenes of ``dsc-grasp bench`` (object, trial, seed) in PyBullet and run the core
detector at the node's defaults (eager backend) with ``finger_check`` off and on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODES = ("off", "prefer", "require")


def cost(objects: str | None = None, trials: int = 2, repeats: int = 3, camera: str = "top") -> dict:
    """The detector's ``geometry`` stage (robust depth, pose, width, and the check) per frame with
    ``finger_check`` off, prefer and require: ``{mode: {median_ms, p95_ms, frames}}``."""
    from ..core.inference import DetectorConfig, GraspDetector
    from ..sim import mesh_objects as mo
    from .policies import approach_in_camera
    from .runner import observation
    from .scene import BenchWorld, SceneSettings

    world = BenchWorld(SceneSettings(camera=camera).validate(), None)
    det = GraspDetector(DetectorConfig(modality="rgbd", backend="eager"))
    ms = {m: [] for m in MODES}
    try:
        for name in mo.resolve_names(objects, None):
            for t in range(trials):
                scene = world.build(name, t, 0)
                try:
                    obs = observation(world, scene)
                    a = approach_in_camera(obs, "vertical")
                    for m in MODES:
                        det.update(finger_check=m)
                        for _ in range(repeats):
                            ms[m].append(1e3 * det.detect(obs.rgb, obs.depth, obs.K, approach=a).timings["geometry"])
                finally:
                    world.discard(scene)
    finally:
        world.close()
    return {m: {"median_ms": round(float(np.median(v)), 3), "p95_ms": round(float(np.percentile(v, 95)), 3), "frames": len(v)}
            for m, v in ms.items()}


def figure(out, objects: str = "tomato_soup_can,potted_meat_can,mustard_bottle", trials=(0,), seed: int = 0, camera: str = "top",
           modality: str = "rgbd", crop: int = 200) -> int:
    """Write the picture to ``out``: one row per scene, the shipped model's best grasp with the check
    off (left) and on (right, finger footprints cyan = clear of the object, magenta = not), each a
    ``crop`` x ``crop`` window around the object. Returns the number of scenes."""
    import cv2

    from ..core.imageio import write_rgb
    from ..core.inference import DetectorConfig, GraspDetector
    from ..core.visualize import draw_grasps
    from ..sim import mesh_objects as mo
    from .policies import approach_in_camera
    from .runner import _object_pixel, observation
    from .scene import BenchWorld, SceneSettings

    world = BenchWorld(SceneSettings(camera=camera).validate(), None)
    det = GraspDetector(DetectorConfig(modality=modality, backend="eager"))
    rows = []
    try:
        for name in mo.resolve_names(objects, None):
            for t in trials:
                scene = world.build(name, t, seed)
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
                        r = crop // 2
                        x0, y0 = min(max(u - r, 0), w - 2 * r), min(max(v - r, 0), h - 2 * r)
                        panel = np.ascontiguousarray(img[y0:y0 + 2 * r, x0:x0 + 2 * r])
                        cv2.putText(panel, f"{Path(name).stem[:18]} #{t}: check {mode}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                                    (0, 0, 0), 1, cv2.LINE_AA)
                        panels.append(panel)
                    rows.append(np.concatenate([panels[0], np.full((2 * r, 4, 3), 255, np.uint8), panels[1]], 1))
                finally:
                    world.discard(scene)
    finally:
        world.close()
    grid = np.concatenate([np.concatenate([row, np.full((4, row.shape[1], 3), 255, np.uint8)], 0) for row in rows], 0)
    write_rgb(out, grid)
    return len(rows)
