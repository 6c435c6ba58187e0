"""Readers and writers for the on-disk formats of the grasp datasets.

* **Cornell**: ``pcdXXXXcpos.txt`` holds 4 lines ``x y`` per grasp rectangle (Cornell corner
  order: p0->p1 along the jaw-closing axis); a rectangle with a ``NaN`` corner is dropped whole
  (the original files contain such lines). ``pcdXXXXr.png`` colour, ``pcdXXXXd.tiff`` float32
  depth in metres.
* **Jacquard**: ``N_<id>_grasps.txt`` lines ``x;y;theta_deg;opening;jaw_size`` (CRLF or LF),
  ``N_<id>_RGB.png``, ``N_<id>_perfect_depth.tiff`` / ``N_<id>_stereo_depth.tiff`` (float32
  metres, LZW-compressed: read with :mod:`tifffile` + ``imagecodecs``).

All rectangle parsing ends in :func:`dsc_grasp_ros.grasp.cornell_to_rects` /
:func:`~dsc_grasp_ros.grasp.jacquard_to_rects`, which hold the angle and corner conventions.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import tifffile

from ..grasp import cornell_to_rects, jacquard_to_rects, rect_corners, rects_to_jacquard

__all__ = [
    "DatasetFormatError",
    "read_cornell_grasps",
    "read_jacquard_grasps",
    "write_cornell_grasps",
    "write_jacquard_grasps",
    "read_rgb",
    "read_depth",
    "write_depth",
    "write_rgb",
]


class DatasetFormatError(ValueError):
    """A dataset file that does not follow its format; the message names the file and line."""


def read_cornell_grasps(path) -> np.ndarray:
    """Cornell ``cpos``/``cneg`` file -> Nx5 rectangles ``(u, v, angle, opening, jaw)``.

    Blank lines are ignored; the remaining lines must come in groups of 4 ``x y`` pairs.
    A group with any ``NaN`` coordinate is dropped (as GR-ConvNet does).
    """
    path = Path(path)
    pts = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        parts = s.split()
        if len(parts) != 2:
            raise DatasetFormatError(f"{path}:{lineno}: expected 'x y', got {line!r}")
        try:
            pts.append((float(parts[0]), float(parts[1])))
        except ValueError as e:
            raise DatasetFormatError(f"{path}:{lineno}: {e}") from None
    if len(pts) % 4:
        raise DatasetFormatError(f"{path}: {len(pts)} corner lines is not a multiple of 4")
    return cornell_to_rects(np.array(pts, dtype=np.float64).reshape(-1, 2))


def read_jacquard_grasps(path) -> np.ndarray:
    """Jacquard ``*_grasps.txt`` -> Nx5 rectangles (CRLF tolerated, blank lines ignored)."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        parts = s.split(";")
        if len(parts) != 5:
            raise DatasetFormatError(f"{path}:{lineno}: expected 'x;y;theta;opening;jaw', got {line!r}")
        try:
            row = [float(p) for p in parts]
        except ValueError as e:
            raise DatasetFormatError(f"{path}:{lineno}: {e}") from None
        if not all(math.isfinite(v) for v in row):
            continue
        rows.append(row)
    return jacquard_to_rects(np.array(rows, dtype=np.float64).reshape(-1, 5))


def write_jacquard_grasps(path, rects) -> None:
    """Write Nx5 rectangles as a Jacquard grasp file (CRLF line ends, like the original)."""
    rows = rects_to_jacquard(rects)
    Path(path).write_text("".join(f"{x:.5f};{y:.5f};{t:.4f};{o:.4f};{j:.4f}\r\n" for x, y, t, o, j in rows), newline="")


def write_cornell_grasps(path, rects) -> None:
    """Write Nx5 rectangles as a Cornell ``cpos`` file (4 corner lines per rectangle)."""
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    lines = []
    for c in rect_corners(*rects.T).reshape(-1, 4, 2) if len(rects) else []:
        lines += [f"{x:.3f} {y:.3f}" for x, y in c]
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))


def read_rgb(path) -> np.ndarray:
    """Colour image -> ``H x W x 3`` uint8 **RGB** (grey and RGBA images are converted)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetFormatError(f"{path}: cannot read image")
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_rgb(path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))


def read_depth(path) -> np.ndarray:
    """Depth TIFF (float metres or uint16 millimetres; LZW decoded by ``imagecodecs``) or PNG."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        d = tifffile.imread(str(path))
    else:
        d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if d is None:
            raise DatasetFormatError(f"{path}: cannot read depth image")
    d = np.asarray(d)
    if d.ndim == 3 and d.shape[-1] == 1:
        d = d[..., 0]
    if d.ndim != 2:
        raise DatasetFormatError(f"{path}: depth must be single-channel, got shape {d.shape}")
    return d


def write_depth(path, depth_m: np.ndarray, compress: bool = True) -> None:
    """Write float32 metres as a TIFF (LZW like Jacquard when ``compress``)."""
    tifffile.imwrite(str(path), np.asarray(depth_m, np.float32), compression="lzw" if compress else None)
