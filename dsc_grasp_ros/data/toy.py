"""Tiny synthetic datasets in the real on-disk formats, for tests and smoke runs.

Each image shows one elongated box on a table (colour and depth); its grasp rectangles close
across the box's short side at a few points along its long axis. The files are exactly what the
Cornell or Jacquard readers expect, so a toy folder exercises the whole pipeline (readers, ROI,
targets, training, decoding, metric) in seconds. Not a substitute for real data.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..core.grasp import rect_corners
from .formats import write_cornell_grasps, write_depth, write_jacquard_grasps, write_rgb

__all__ = ["toy_scene", "write_toy_jacquard", "write_toy_cornell"]


def toy_scene(rng: np.random.Generator, height: int = 128, width: int = 160, margin: float = 0.3, size: float = 1.0):
    """One scene: ``(rgb uint8, depth float32 metres, rects Nx5 full-image px)``.

    The box is placed within the centred square (``margin`` of its side from the border), so
    its grasps survive the centred crop; ``size`` scales the box (1: about 0.36 x 0.12 of the
    square's side).
    """
    s = min(height, width)
    cx = width / 2 + rng.uniform(-0.5 + margin, 0.5 - margin) * s
    cy = height / 2 + rng.uniform(-0.5 + margin, 0.5 - margin) * s
    length = rng.uniform(0.30, 0.42) * s * size
    thick = rng.uniform(0.10, 0.14) * s * size
    axis = rng.uniform(-math.pi / 2, math.pi / 2)  # box long axis (image angle, counter-clockwise)
    rgb = np.full((height, width, 3), 150, np.uint8) + rng.integers(0, 12, (height, width, 3), dtype=np.uint8)
    depth = np.full((height, width), 0.70, np.float32) + rng.normal(0, 0.0005, (height, width)).astype(np.float32)
    box = rect_corners(cx, cy, axis, length, thick)
    poly = np.round(box).astype(np.int32)
    colour = tuple(int(c) for c in rng.integers(20, 110, 3))
    cv2.fillPoly(rgb, [poly], colour)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [poly], 1)
    depth[mask > 0] = 0.70 - 0.05
    grasp_angle = axis + math.pi / 2  # close across the box
    rects = []
    for t in (-0.25, 0.0, 0.25):
        u = cx + t * length * math.cos(axis)
        v = cy - t * length * math.sin(axis)
        rects.append([u, v, (grasp_angle + math.pi / 2) % math.pi - math.pi / 2, thick * 1.6, thick * 0.8])
    return rgb, depth, np.array(rects)


def write_toy_jacquard(
    root, n_objects: int = 2, per_object: int = 2, height: int = 128, width: int = 160, seed: int = 0,
    stereo_holes: bool = True, size: float = 1.0,
) -> Path:
    """Jacquard-format folder ``root/<obj>/<k>_<obj>_{RGB.png,perfect_depth.tiff,stereo_depth.tiff,mask.png,grasps.txt}``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for o in range(n_objects):
        obj = f"obj{o:03d}"
        d = root / obj
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_object):
            rgb, depth, rects = toy_scene(rng, height, width, size=size)
            stem = d / f"{k}_{obj}"
            write_rgb(f"{stem}_RGB.png", rgb)
            write_depth(f"{stem}_perfect_depth.tiff", depth)
            stereo = depth.copy()
            if stereo_holes:
                stereo[rng.random(stereo.shape) < 0.02] = -1.0  # Jacquard marks invalid stereo depth with -1
            write_depth(f"{stem}_stereo_depth.tiff", stereo)
            cv2.imwrite(f"{stem}_mask.png", ((depth < 0.68) * 255).astype(np.uint8))
            write_jacquard_grasps(f"{stem}_grasps.txt", rects)
    return root


def write_toy_cornell(root, n: int = 4, height: int = 120, width: int = 160, seed: int = 0, start: int = 100) -> Path:
    """Cornell-format folder ``root/01/pcdXXXX{r.png,d.tiff,cpos.txt}`` (plus a NaN rectangle in the first)."""
    root = Path(root)
    d = root / "01"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        rgb, depth, rects = toy_scene(rng, height, width)
        stem = d / f"pcd{start + i:04d}"
        write_rgb(f"{stem}r.png", rgb)
        write_depth(f"{stem}d.tiff", depth, compress=False)
        write_cornell_grasps(f"{stem}cpos.txt", rects)
        if i == 0:  # the real files contain rectangles with NaN corners: they must be skipped
            with open(f"{stem}cpos.txt", "a") as f:
                f.write("NaN NaN\n10 10\n20 10\nNaN NaN\n")
        Path(f"{stem}cneg.txt").write_text("")
    return root
