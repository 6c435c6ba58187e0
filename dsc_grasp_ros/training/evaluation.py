"""The paper's grasp metric (Jiang et al.; Section IV-A.2) and model evaluation on a dataset.

A predicted grasp rectangle is **correct** when, for at least one ground-truth rectangle of the
image, both hold:

* the angle difference, modulo π (a parallel gripper is symmetric), is **below 30°**, and
* the Jaccard index (intersection over union) is **above 0.25**.

The IoU is the exact area of the polygon intersection over the polygon union (shapely), not a
raster approximation. The predicted rectangle is the top-1 grasp of
:func:`dsc_grasp_ros.core.postprocess.decode_grasps` drawn with :meth:`dsc_grasp_ros.core.grasp.Grasp.corners`:
its side along the closing axis is the predicted opening, its side along the jaws is
``opening * PREDICTED_JAW_RATIO`` (= opening / 2, GR-ConvNet's convention). Ground truth keeps
the dataset's jaw size. Both live in network-input pixels (the evaluated 224x224 crop).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from shapely.geometry import Polygon

from ..core.conventions import WIDTH_SCALE_PX, angle_difference
from ..core.grasp import Grasp, grasps_to_rects, rect_corners

__all__ = [
    "ANGLE_THRESHOLD_DEG",
    "IOU_THRESHOLD",
    "rect_polygon",
    "rect_iou",
    "match_grasp",
    "grasp_correct",
    "evaluate_model",
]

ANGLE_THRESHOLD_DEG = 30.0
IOU_THRESHOLD = 0.25


def rect_polygon(rect) -> Polygon:
    """Shapely polygon of one ``(u, v, angle, opening, jaw)`` rectangle."""
    return Polygon(rect_corners(*np.asarray(rect, dtype=np.float64)[:5]))


def _polygon_iou(pa: Polygon, pb: Polygon) -> float:
    inter = pa.intersection(pb).area
    union = pa.area + pb.area - inter
    return float(inter / union) if union > 0 else 0.0


def rect_iou(a, b) -> float:
    """Exact Jaccard index of two rectangles ``(u, v, angle, opening, jaw)``."""
    return _polygon_iou(rect_polygon(a), rect_polygon(b))


def match_grasp(
    pred,
    gts,
    angle_threshold_deg: float = ANGLE_THRESHOLD_DEG,
    iou_threshold: float = IOU_THRESHOLD,
) -> dict:
    """Compare one predicted rectangle with all ground-truth rectangles.

    Returns ``{'correct', 'best_iou', 'match'}``: ``best_iou`` is the highest IoU among the
    rectangles within the angle threshold (0 if none), ``match`` the index of that rectangle.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gts = np.asarray(gts, dtype=np.float64).reshape(-1, 5)
    if len(gts) == 0:
        return {"correct": False, "best_iou": 0.0, "match": None}
    dang = np.degrees(angle_difference(pred[2], gts[:, 2]))
    best, best_i = 0.0, None
    pp = rect_polygon(pred)
    for i in np.flatnonzero(dang < angle_threshold_deg):
        iou = _polygon_iou(pp, rect_polygon(gts[i]))
        if iou > best:
            best, best_i = iou, int(i)
    return {"correct": best > iou_threshold, "best_iou": best, "match": best_i}


def grasp_correct(pred, gts, **kw) -> bool:
    """``True`` when ``pred`` satisfies the paper's metric for some rectangle of ``gts``."""
    return match_grasp(pred, gts, **kw)["correct"]


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    dataset,
    device="cpu",
    width_scale: float = WIDTH_SCALE_PX,
    sigma: float = 2.0,
    progress: bool = False,
    amp: bool = False,
    warmup: int = 2,
    batch_size: int = 1,
) -> dict:
    """Top-1 accuracy of ``model`` on ``dataset`` (a :class:`~dsc_grasp_ros.data.GraspDataset`
    without augmentation), one image at a time as the robot would run it.

    Returns ``{'accuracy', 'correct', 'count', 'inference_ms': {...}, 'per_image': [...]}``;
    inference time is the forward pass plus decoding per image (synchronised on CUDA; with
    ``batch_size > 1`` a batch's time is shared by its images), the first ``warmup`` images
    excluded from the timing statistics.
    """
    from ..core.postprocess import decode_grasps

    model.eval()
    per_image, times = [], []
    dev = torch.device(device)
    batch_size = max(1, int(batch_size))
    starts = range(0, len(dataset), batch_size)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(dataset), desc="evaluate", unit="img", dynamic_ncols=True, leave=False)
    for b, start in enumerate(starts):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        x = torch.stack([s["x"] for s in samples]).to(dev)
        _sync(dev)
        t0 = time.perf_counter()
        with torch.autocast(dev.type, enabled=amp and dev.type == "cuda"):
            out = model(x)
        out = [o.float() for o in out]
        preds = [decode_grasps(*(o[j] for o in out), sigma=sigma, top_k=1, width_scale=width_scale) for j in range(len(samples))]
        _sync(dev)
        dt = (time.perf_counter() - t0) * 1000.0 / len(samples)
        if start >= warmup or len(dataset) <= warmup:
            times.extend([dt] * len(samples))
        for j, (s, grasps) in enumerate(zip(samples, preds)):
            g: Grasp | None = grasps[0] if grasps else None
            res = match_grasp(grasps_to_rects([g])[0], s["rects"]) if g else {"correct": False, "best_iou": 0.0, "match": None}
            per_image.append(
                {
                    "id": dataset.items[start + j].id,
                    "correct": bool(res["correct"]),
                    "best_iou": round(res["best_iou"], 4),
                    "grasp": None
                    if g is None
                    else {
                        "u": round(g.u, 2),
                        "v": round(g.v, 2),
                        "angle_deg": round(math.degrees(g.angle), 2),
                        "width_px": round(g.width_px, 2),
                        "quality": round(g.quality, 4),
                    },
                    "ground_truth_count": int(len(s["rects"])),
                    "ms": round(dt, 3),
                }
            )
        if bar is not None:
            bar.update(len(samples))
    if bar is not None:
        bar.close()
    correct = sum(r["correct"] for r in per_image)
    count = len(per_image)
    t = np.array(times) if times else np.zeros(1)
    return {
        "accuracy": correct / count if count else float("nan"),
        "correct": int(correct),
        "count": int(count),
        "inference_ms": {
            "mean": float(t.mean()),
            "median": float(np.median(t)),
            "p95": float(np.percentile(t, 95)),
            "what": f"forward + decode per image, batch {batch_size}, input already on the device",
        },
        "per_image": per_image,
    }
