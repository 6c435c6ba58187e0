#!/usr/bin/env python3
"""Per-stage latency of the ROS-free core on 640x480 RGB-D frames: median and p95.

Stages: preprocess (ROI crop/resize, inpainting, normalisation), network (forward, synchronised
on CUDA), postprocess (smoothing, angle decoding, top-k peaks), geometry (depth, pose, width).
Reports whether the whole per-frame core is within 1.25x of the network's forward time.

  .venv/bin/python scripts/benchmark_core.py                    # CPU and, if present, CUDA
  .venv/bin/python scripts/benchmark_core.py --device cpu --frames 200 --json
  .venv/bin/python scripts/benchmark_core.py --device cpu --model runs/v3_rgbd/model.pt --backend auto --frames 100

The report names the model file, its up-sampling order and depth reference (``plane`` costs more
pre-processing than ``mean``), the backend that actually ran, and the 1-minute load average at
the end (timings from a loaded machine are not comparable with a quiet one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dsc_grasp_ros  # noqa: E402,F401  (before torch: sets OMP_WAIT_POLICY=PASSIVE, see README "Threads")
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dsc_grasp_ros.core.inference import DetectorConfig, GraspDetector  # noqa: E402


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


def bench(device: str, frames, model: str | None, warmup: int = 10, backend: str = "auto", threads: int | None = None,
          compile_cache: str | None = None) -> dict:
    if model and not Path(model).is_file():
        raise SystemExit(f"model file {model} not found")
    extra = {} if threads is None else {"threads": threads}
    det = GraspDetector(DetectorConfig(model_path=model, device=device, top_k=5, min_quality=0.0, backend=backend,
                                       compile_cache=compile_cache, **extra))
    for f in frames[:warmup]:
        det.detect(*f)
    stages = {k: [] for k in ("preprocess", "network", "postprocess", "geometry")}
    total = []
    for f in tqdm(frames, desc=f"core on {det.device}", unit="frame", file=sys.stderr):
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
        "backend_info": {k: v for k, v in det.engine.backend_info.items() if k in ("cpp_wrapper", "compile_s", "cache_dir", "reason")},
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", action="append", help="cpu, cuda, ... (repeatable; default: cpu and cuda when present)")
    ap.add_argument("--frames", type=int, default=100, help="timed frames per device (default 100, at least 100 for the report)")
    ap.add_argument("--model", help="model file (default: the shipped RGB-D model)")
    ap.add_argument("--backend", default="auto", help="auto (compiled on CPU, default), eager or compiled: see README 'Network backend and threads'")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the package default, 2)")
    ap.add_argument("--compile-cache", help="compile cache folder (default: the package's, ~/.cache/dsc_grasp_ros/torchinductor)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed frames first (default %(default)s; the compile, if any, happens at load)")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args()
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if args.frames < 1:
        ap.error("--frames must be at least 1")
    frames = synthetic_frames(args.frames)
    results = [bench(d, frames, args.model, warmup=args.warmup, backend=args.backend, threads=args.threads,
                     compile_cache=args.compile_cache) for d in devices]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"\n{r['device']} ({r['device_name']}, {r['threads']} threads, backend {r['backend']}, {r['upsample_order']}, depth ref {r['depth_ref']}, "
              f"fp16={r['fp16']}), {r['frames']} frames after {r['warmup_frames']} warm-up, {r['input']}; load {r['load_avg_1min']:.1f}")
        print(f"  model: {r['model']}")
        if r["backend"] == "compiled":
            bi = r["backend_info"]
            print(f"  compiled: {'C++' if bi.get('cpp_wrapper') else 'Python'} wrapper, built/loaded in {bi.get('compile_s')} s, cache {bi.get('cache_dir')}")
        elif r["backend_info"].get("reason"):
            print(f"  fell back: {r['backend_info']['reason']}")
        print(f"  {'stage':<12} {'median ms':>10} {'p95 ms':>10}")
        for k, v in r["stages"].items():
            print(f"  {k:<12} {v['median_ms']:>10.2f} {v['p95_ms']:>10.2f}")
        print(f"  core / network forward = {r['core_over_network']:.3f} (target <= 1.25: {'met' if r['target_met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
