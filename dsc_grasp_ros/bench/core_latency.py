"""Per-stage latency of the ROS-free core on 640x480 RGB-D frames (``dsc-grasp benchmark core``).

Stages: preprocess (ROI crop/resize, inpainting, normalisation), network (forward, synchronised
on CUDA), postprocess (smoothing, angle decoding, top-k peaks), geometry (depth, pose, width).
:func:`measure` reports whether the whole per-frame core is within 1.25x of the network's forward time.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..core.inference import DetectorConfig, GraspDetector


def synthetic_frames(n: int, seed: int = 0):
    """Varied 640x480 frames: a plane at 0.5-0.7 m with 1-4 boxes, 5% depth holes."""
    rng = np.random.default_rng(seed)
    K = np.array([[615.0, 0, 320], [0, 615.0, 240], [0, 0, 1]])
    vv, uu = np.mgrid[0:480, 0:640]
    frames = []
    for _ in range(min(n, 20)):
        z = rng.uniform(0.5, 0.7)
        depth = np.full((480, 640), z, np.float32)
        rgb = np.full((480, 640, 3), rng.integers(100, 200, 3), np.uint8)
        for _ in range(rng.integers(1, 5)):
            cu, cv, hw, hh = rng.uniform(150, 490), rng.uniform(100, 380), rng.uniform(15, 60), rng.uniform(15, 60)
            m = (np.abs(uu - cu) < hw) & (np.abs(vv - cv) < hh)
            depth[m] = z - rng.uniform(0.02, 0.1)
            rgb[m] = rng.integers(0, 255, 3)
        depth[rng.random(depth.shape) < 0.05] = 0
        frames.append((rgb, (depth * 1000).astype(np.uint16), K))
    return [frames[i % len(frames)] for i in range(n)]


def measure(device: str, frames, model: str | None, warmup: int = 10, backend: str = "auto", threads: int | None = None,
            compile_cache: str | None = None, progress: bool = True, precision: str = "auto") -> dict:
    """Per-stage timings of the core detector on ``frames`` (after ``warmup`` untimed ones) on one device."""
    if model and not Path(model).is_file():
        raise FileNotFoundError(f"model file {model} not found")
    extra = {} if threads is None else {"threads": threads}
    det = GraspDetector(DetectorConfig(model_path=model, device=device, top_k=5, min_quality=0.0, backend=backend,
                                       compile_cache=compile_cache, precision=precision, **extra))
    for f in frames[:warmup]:
        det.detect(*f)
    stages = {k: [] for k in ("preprocess", "network", "postprocess", "geometry")}
    total = []
    for f in tqdm(frames, desc=f"core on {det.device}", unit="frame", file=sys.stderr, disable=not progress):
        r = det.detect(*f)
        for k, v in r.timings.items():
            stages[k].append(v * 1e3)
        total.append(sum(r.timings.values()) * 1e3)
    summ = {k: {"median_ms": float(np.median(v)), "p95_ms": float(np.percentile(v, 95))} for k, v in stages.items()}
    summ["total"] = {"median_ms": float(np.median(total)), "p95_ms": float(np.percentile(total, 95))}
    ratio = summ["total"]["median_ms"] / summ["network"]["median_ms"]
    return {
        "device": str(det.device),
        "device_name": torch.cuda.get_device_name(det.device) if det.device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "backend": det.engine.backend,
        "backend_info": {k: v for k, v in det.engine.backend_info.items()
                         if k in ("cpp_wrapper", "compile_s", "cache_dir", "reason", "openvino_reason", "openvino")},
        "precision": dict(det.engine.precision_info),
        "upsample_order": det.meta.network.get("upsample_order", "eq5") if isinstance(det.meta.network, dict) else None,
        "depth_ref": det.meta.depth_ref,
        "model": str(model) if model else "shipped RGB-D model",
        "fp16": det.engine.fp16,
        "frames": len(frames),
        "warmup_frames": warmup,
        "load_avg_1min": os.getloadavg()[0],
        "input": "640x480 RGB-D (uint16 mm), model " + det.meta.modality,
        "stages": summ,
        "core_over_network": ratio,
        "target_met": ratio <= 1.25,
    }
