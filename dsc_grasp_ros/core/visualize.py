"""Pictures for people: grasp rectangles over the colour image, the quality map beside it."""

from __future__ import annotations

import cv2
import numpy as np

from .conventions import PREDICTED_JAW_RATIO
from .grasp import rect_corners

__all__ = ["depth_to_rgb", "draw_grasps", "evaluation_tile", "finger_boxes", "quality_colour", "tile_grid"]


def _draw_grasp_rect(img, u, v, angle, opening, jaw, col, thick: int, dot: int, line_type: int) -> None:
    """A grasp rectangle in place: closing-axis edges (p0-p1, p2-p3) ``thick``, jaw edges (p1-p2,
    p3-p0) three times that, and a dot of radius ``dot`` at the centre."""
    pts = np.round(rect_corners(u, v, angle, opening, jaw)).astype(np.int32)
    cv2.line(img, tuple(pts[0]), tuple(pts[1]), col, thick, line_type)
    cv2.line(img, tuple(pts[2]), tuple(pts[3]), col, thick, line_type)
    cv2.line(img, tuple(pts[1]), tuple(pts[2]), col, 3 * thick, line_type)
    cv2.line(img, tuple(pts[3]), tuple(pts[0]), col, 3 * thick, line_type)
    cv2.circle(img, (int(round(u)), int(round(v))), dot, col, -1, line_type)


def quality_colour(q: float) -> tuple[int, int, int]:
    """RGB colour for a quality in [0, 1]: red (poor) -> yellow -> green (good)."""
    q = float(np.clip(q, 0, 1))
    return (int(255 * min(1, 2 * (1 - q))), int(255 * min(1, 2 * q)), 0)


def depth_to_rgb(depth: np.ndarray) -> np.ndarray:
    """Depth in grey for people (near bright, 2-98 percentile range; invalid pixels black)."""
    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    out = np.zeros(d.shape, np.uint8)
    if valid.any():
        lo, hi = np.percentile(d[valid], [2, 98])
        out[valid] = np.clip(255 * (hi - d[valid]) / max(hi - lo, 1e-6), 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)


#: Colours of the finger footprints drawn by :func:`draw_grasps`: clear of the object / not.
FINGERS_CLEAR_COLOUR = (0, 220, 255)
FINGERS_BLOCKED_COLOUR = (255, 0, 200)


def finger_boxes(g, fingers) -> list[np.ndarray] | None:
    """The two finger footprints (4 corners each, full-image pixels) of a checked grasp at the
    controller's opening (``width + 2 x margin``), or None when ``g`` carries no metric width."""
    width_m = float(getattr(g, "width_m", 0.0) or 0.0)
    if width_m <= 0 or g.width_px <= 0:
        return None
    ppm = g.width_px / width_m
    half = g.width_px / 2 + fingers.margin * ppm + fingers.thickness * ppm / 2
    ca, sa = np.cos(g.angle), np.sin(g.angle)
    boxes = []
    for sgn in (-1.0, 1.0):
        cu, cv = g.u + sgn * half * ca, g.v - sgn * half * sa
        boxes.append(rect_corners(cu, cv, g.angle, fingers.thickness * ppm, fingers.width * ppm))
    return boxes


def draw_grasps(rgb, grasps, quality_map=None, roi=None, depth=None, labels: bool = True, fingers=None) -> np.ndarray:
    """Annotated RGB image: rectangles (jaws drawn thick), ranks and qualities; the ROI box.

    ``rgb`` may be ``None`` (then ``depth`` is shown in grey). ``grasps`` are objects with
    ``u, v, angle, width_px, quality`` and ``jaw`` or ``jaw_px`` in full-image pixels. With
    ``quality_map`` (network pixels) it is drawn beside the image with a colour bar. With
    ``fingers`` (:class:`~dsc_grasp_ros.core.clearance.FingerGeometry`), grasps that went through the
    finger check (``fingers_clear`` True or False) get their two finger footprints at the
    controller's opening: cyan when clear of the object, magenta when not.
    """
    img = depth_to_rgb(depth) if rgb is None else np.ascontiguousarray(rgb[..., :3]).copy()
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    h, w = img.shape[:2]
    thick = max(1, round(min(h, w) / 240))
    if roi is not None:
        cv2.rectangle(img, (roi.x, roi.y), (roi.x + roi.w - 1, roi.y + roi.h - 1), (80, 160, 255), thick)
    for rank, g in reversed(list(enumerate(grasps))):
        jaw = getattr(g, "jaw_px", None) or getattr(g, "jaw", None) or g.width_px / 2
        col = quality_colour(g.quality)
        _draw_grasp_rect(img, g.u, g.v, g.angle, g.width_px, jaw, col, thick, 2 * thick, cv2.LINE_AA)
        clear = getattr(g, "fingers_clear", None)
        boxes = finger_boxes(g, fingers) if (fingers is not None and clear is not None) else None
        for box in boxes or ():
            fcol = FINGERS_CLEAR_COLOUR if clear else FINGERS_BLOCKED_COLOUR
            cv2.polylines(img, [np.round(box).astype(np.int32)], True, fcol, thick, cv2.LINE_8)
        if labels:
            txt = f"#{rank + 1} q={g.quality:.2f}"
            org = (int(g.u) + 6, int(g.v) - 6)
            cv2.putText(img, txt, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, (0, 0, 0), 3 * thick, cv2.LINE_AA)
            cv2.putText(img, txt, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, (255, 255, 255), thick, cv2.LINE_AA)
    if quality_map is None:
        return img
    q = np.clip(np.asarray(quality_map, dtype=np.float32), 0, 1)
    qh = h
    qw = max(1, int(round(q.shape[1] * qh / q.shape[0])))
    q8 = cv2.resize((q * 255).astype(np.uint8), (qw, qh), interpolation=cv2.INTER_NEAREST)
    qc = cv2.cvtColor(cv2.applyColorMap(q8, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)
    bar = np.linspace(255, 0, qh).astype(np.uint8)[:, None].repeat(12, 1)
    barc = cv2.cvtColor(cv2.applyColorMap(bar, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)
    panel = np.concatenate([qc, np.full((qh, 4, 3), 255, np.uint8), barc], 1)
    cv2.putText(panel, "quality", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(panel, "1", (qw - 14, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(panel, "0", (qw - 14, qh - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([img, np.full((h, 6, 3), 255, np.uint8), panel], 1)


#: Colours of :func:`evaluation_tile`: ground truth, a correct top-1 grasp, a wrong one.
GT_COLOUR, CORRECT_COLOUR, WRONG_COLOUR = (90, 170, 255), (0, 210, 0), (255, 40, 40)


def evaluation_tile(img: np.ndarray, rects: np.ndarray, result: dict, size: int | None = None) -> np.ndarray:
    """One scored image of ``dsc-grasp evaluate`` for people: the network's view (``img``, network
    pixels) with the ground-truth rectangles (thin, blue) and the top-1 grasp (jaws thick; green when
    the metric counts it correct, red when not), its id and best IoU written on it; ``size``: the
    tile's side in pixels (default: the image's)."""
    tile = np.ascontiguousarray(img[..., :3]).copy()
    for r in np.asarray(rects, dtype=np.float64).reshape(-1, 5):
        pts = np.round(rect_corners(r[0], r[1], r[2], r[3], r[4])).astype(np.int32)
        cv2.polylines(tile, [pts], True, GT_COLOUR, 1, cv2.LINE_8)
    g = result.get("grasp")
    col = CORRECT_COLOUR if result.get("correct") else WRONG_COLOUR
    if g:  # the rectangle the metric scored: jaw = opening x PREDICTED_JAW_RATIO
        w = g["width_px"]
        _draw_grasp_rect(tile, g["u"], g["v"], np.radians(g["angle_deg"]), w, w * PREDICTED_JAW_RATIO, col, 1, 3, cv2.LINE_8)
    if size and size != tile.shape[0]:
        tile = cv2.resize(tile, (size, size), interpolation=cv2.INTER_AREA)
    text = f"{result.get('id', '')} IoU {result.get('best_iou', 0.0):.2f}" + ("" if g else " no grasp")
    cv2.rectangle(tile, (0, 0), (tile.shape[1] - 1, 14), (0, 0, 0), -1)
    cv2.putText(tile, text[-34:], (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.36, col, 1, cv2.LINE_AA)
    return tile


def tile_grid(tiles: list[np.ndarray], cols: int, gap: int = 4) -> np.ndarray:
    """Equal-sized RGB tiles in a white grid of ``cols`` columns, row by row."""
    if not tiles:
        raise ValueError("no tiles to lay out")
    h, w = tiles[0].shape[:2]
    cols = max(1, min(int(cols), len(tiles)))
    rows = -(-len(tiles) // cols)
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = t
    return out
