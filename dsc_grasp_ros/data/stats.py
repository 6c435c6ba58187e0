"""Statistics of a grasp dataset as the network sees it (``dsc-grasp dataset-stats``): depth
spread, object size, grasps per image.

For any Cornell or Jacquard-format folder (our synthetic data included), and with ``--shared`` for
the real Cornell / Jacquard samples in ``../shared/data``. Per image, in the network crop:

* **depth spread**: standard deviation and 2-98 % range of the valid depth (metres), and the median
  depth;
* **object size** (network pixels): longest side of the minimum-area rectangle around each object
  blob; blobs from ``*_mask.png`` where a dataset has masks (Jacquard), else from the depth (more
  than 6 mm in front of a robustly fitted quadratic surface: Cornell; misses objects thinner than that); blobs under 20 (mask) or 100 (depth) network px are ignored;
* **grasp opening** (network pixels): the rectangles' opening, for rectangles centred in the crop;
* **grasps per image**: all rectangles of the image.

Crops (``--crop``): ``native`` = the centred 224x224 window at full resolution (the paper's
Cornell protocol), ``square`` = the largest centred square resized to 224 (the paper's Jacquard
protocol: 1024 -> 224), ``auto`` = native for Cornell, square otherwise, ``scale`` = the ROS node's
ROI (``train/evaluate --protocol scale``: from our synthetic data's ``camera.json`` intrinsics and
the median depth, a metre spans ``--net-px-per-metre`` network pixels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NET = 224
MIN_BLOB = 20  # network pixels (objects from masks)
MIN_BLOB_DEPTH = 100  # network pixels (objects from depth: smaller blobs are sensor noise)
DEPTH_OBJECT_M = 0.006  # without a mask: object = more than this in front of the fitted surface


def _roi(h: int, w: int, crop: str, item=None, depth=None, net_px_per_metre=None):
    from ..core.preprocess import ROI, protocol_roi

    if crop == "scale":  # the node's ROI (train/evaluate --protocol scale); no camera.json: as paper
        from .datasets import read_camera_K

        K = read_camera_K(item.camera) if item is not None and item.camera else None
        return protocol_roi("scale", item.format if item is not None else "jacquard", h, w, NET, K, depth, net_px_per_metre)
    if crop == "native":
        if h < NET or w < NET:
            raise ValueError(f"image {w}x{h} is smaller than the {NET}x{NET} native crop")
        return ROI((w - NET) // 2, (h - NET) // 2, NET, NET, NET, NET)
    if crop == "square":
        return ROI.centred_square(h, w, NET)
    raise ValueError(f"unknown crop {crop!r}")


def plane_residual(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Depth minus a robust least-squares quadratic surface in ``(u, v)`` (metres; NaN where invalid).

    Quadratic rather than planar: Cornell's depth images of a flat table are slightly curved.
    """
    h, w = depth.shape
    vv, uu = np.mgrid[0:h, 0:w]
    u, v = (uu[valid] - w / 2) / w, (vv[valid] - h / 2) / h
    A = np.column_stack([u, v, np.ones(u.size), u * u, u * v, v * v]).astype(np.float64)
    z = depth[valid].astype(np.float64)
    keep = np.ones(len(z), bool)
    for _ in range(4):
        coef, *_ = np.linalg.lstsq(A[keep], z[keep], rcond=None)
        r = z - A @ coef
        mad = np.median(np.abs(r[keep] - np.median(r[keep]))) + 1e-4
        keep = np.abs(r) < 3 * 1.4826 * mad
    res = np.full(depth.shape, np.nan)
    res[valid] = r
    return res


def object_sizes(mask: np.ndarray, min_area: int = MIN_BLOB) -> list[float]:
    """Longest side (px) of the minimum-area rectangle of each blob of ``mask`` (>= ``min_area`` px)."""
    import cv2

    n, lab, st, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = []
    for k in range(1, n):
        if st[k, cv2.CC_STAT_AREA] < min_area:
            continue
        ys, xs = np.nonzero(lab == k)
        (_, _), (a, b), _ = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
        out.append(float(max(a, b)))
    return out


def image_stats(item, crop: str, net_px_per_metre: float | None = None) -> dict:
    import cv2

    from .datasets import read_rects
    from .formats import read_depth

    depth = np.asarray(read_depth(item.depth), dtype=np.float32)
    if depth.dtype != np.float32 or depth.ndim != 2:
        raise ValueError(f"{item.depth}: expected a float depth image")
    h, w = depth.shape
    roi = _roi(h, w, crop, item, depth, net_px_per_metre)
    d = roi.crop(np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32), cv2.INTER_NEAREST)
    valid = d > 0
    v = d[valid]
    rects = read_rects(item)
    rec = {
        "id": item.id,
        "grasps": int(len(rects)),
        "valid_depth_fraction": float(valid.mean()),
        "depth_median_m": float(np.median(v)) if v.size else None,
        "depth_std_m": float(v.std()) if v.size else None,
        "depth_range_m": float(np.percentile(v, 98) - np.percentile(v, 2)) if v.size else None,
    }
    if len(rects):
        c = roi.to_net(rects[:, :2])
        inside = (c >= 0).all(1) & (c <= NET - 1).all(1)
        rec["grasps_in_crop"] = int(inside.sum())
        rec["opening_net_px"] = [float(x) for x in rects[inside, 3] / roi.sx]
    else:
        rec["grasps_in_crop"], rec["opening_net_px"] = 0, []
    mask_file = Path(item.grasps.replace("_grasps.txt", "_mask.png")) if item.format == "jacquard" else None
    if mask_file is not None and mask_file.is_file():
        m = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE)
        rec["object_source"] = "mask"
        rec["object_size_net_px"] = object_sizes(roi.crop(m, cv2.INTER_NEAREST) > 127)
    elif valid.sum() > 100:
        res = plane_residual(d, valid)
        rec["object_source"] = "depth-plane"
        rec["object_size_net_px"] = object_sizes(np.nan_to_num(res, nan=0.0) < -DEPTH_OBJECT_M, MIN_BLOB_DEPTH)
    else:
        rec["object_source"], rec["object_size_net_px"] = "none", []
    return rec


def _q(values) -> dict | None:
    a = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if a.size == 0:
        return None
    return {"p10": round(float(np.percentile(a, 10)), 4), "median": round(float(np.median(a)), 4),
            "p90": round(float(np.percentile(a, 90)), 4), "mean": round(float(a.mean()), 4)}


def folder_stats(
    path, crop: str = "auto", depth: str = "perfect", limit: int | None = None, name: str | None = None, net_px_per_metre: float | None = None
) -> dict:
    """Aggregate statistics of one dataset folder (Cornell or Jacquard format, found by its files)."""
    from .datasets import find_items

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder {path} does not exist")
    fmt = "cornell" if next(path.rglob("pcd*cpos.txt"), None) is not None else "jacquard-format"
    items = find_items(fmt, path, depth=depth)
    if limit and len(items) > limit:  # evenly spread, deterministic
        items = [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]
    c = crop if crop != "auto" else ("native" if fmt == "cornell" else "square")
    recs = [image_stats(it, c, net_px_per_metre) for it in items]
    sizes = [s for r in recs for s in r["object_size_net_px"]]
    openings = [o for r in recs for o in r["opening_net_px"]]
    sources = sorted({r["object_source"] for r in recs})
    return {
        "name": name or path.name,
        "format": fmt,
        "depth": depth if fmt != "cornell" else "cornell",
        "crop": c,
        "images": len(recs),
        "grasps": int(sum(r["grasps"] for r in recs)),
        "grasps_per_image": _q([r["grasps"] for r in recs]),
        "grasps_in_crop_per_image": _q([r["grasps_in_crop"] for r in recs]),
        "depth_median_m": _q([r["depth_median_m"] for r in recs]),
        "depth_std_m": _q([r["depth_std_m"] for r in recs]),
        "depth_range_m": _q([r["depth_range_m"] for r in recs]),
        "valid_depth_fraction": _q([r["valid_depth_fraction"] for r in recs]),
        "object_size_net_px": _q(sizes),
        "objects_per_image": _q([len(r["object_size_net_px"]) for r in recs]),
        "object_source": sources,
        "opening_net_px": _q(openings),
    }


def _fmt(q, key="median", nd=3):
    return "-" if q is None else f"{q[key]:.{nd}f}"


def table(rows: list[dict]) -> str:
    head = ("| data | crop | images | grasps/img (median) | depth std m (p10/med/p90) | depth range m (median) "
            "| object size net px (p10/med/p90) | opening net px (median) |")
    out = [head, "|" + "---|" * 8]
    for r in rows:
        ds, sz = r["depth_std_m"], r["object_size_net_px"]
        out.append(
            f"| {r['name']} | {r['crop']} | {r['images']} | {_fmt(r['grasps_per_image'], nd=0)} | "
            f"{_fmt(ds, 'p10')} / {_fmt(ds)} / {_fmt(ds, 'p90')} | {_fmt(r['depth_range_m'])} | "
            f"{_fmt(sz, 'p10', 0)} / {_fmt(sz, nd=0)} / {_fmt(sz, 'p90', 0)} ({'/'.join(r['object_source'])}) | "
            f"{_fmt(r['opening_net_px'], nd=0)} |"
        )
    return "\n".join(out)
