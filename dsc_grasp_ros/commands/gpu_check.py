"""``dsc-grasp gpu-check``: everything the CUDA path needs measured, in one command and one JSON report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import ROOT

DESCRIPTION = """\
Run, on a GPU, every check of the CUDA path and write one JSON report (default: gpu_check.json):

  env       torch, CUDA and cuDNN versions, the device, its memory
  tests     the CUDA tests of the suite (CUDA-graph inference, AMP training) through pytest
  network   the shipped model's forward on the device: eager (fp16, channels_last) and CUDA graphs,
            median/p95 latency at batch 1, and the largest difference to the CPU fp32 outputs
  core      the per-frame core (pre-processing, network, post-processing, geometry) on 640x480
            frames: median/p95 per stage (dsc-grasp benchmark core)
  node      grasp_node over DDS on the bundled bag at 30 Hz (dsc-grasp benchmark node)
  train     a short AMP training run on a generated toy dataset: steps per second, loss

Each step is timed and reported on its own (ok, seconds, result or error); a failing step does not
stop the others. The whole run is sized to stay under 8 minutes on one GPU. Without a GPU, use
--device cpu --quick: the same steps run on the CPU with tiny sizes (the test suite does this),
and the CUDA-only parts say that they were skipped and why.
"""

EPILOG = """\
examples:
  dsc-grasp gpu-check                                   # on a GPU: everything, gpu_check.json
  dsc-grasp gpu-check --skip node --out /tmp/gpu.json   # without ROS 2
  dsc-grasp gpu-check --device cpu --quick              # dry run on a CPU (seconds)
"""

STEPS = ("env", "tests", "network", "core", "node", "train")


def register(sub):
    p = sub.add_parser("gpu-check", help="measure the CUDA path in one run (tests, network, core, node, AMP training) -> JSON",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu for a dry run (default: %(default)s)")
    p.add_argument("--model", default=None, help="model file (default: the shipped RGB-D model)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a few frames and steps): checks the command, measures nothing")
    p.add_argument("--skip", default="", metavar="STEPS", help=f"comma-separated steps to leave out, of: {', '.join(STEPS)}")
    p.add_argument("--out", default="gpu_check.json", help="the JSON report (default: %(default)s)")
    p.set_defaults(func=run)


def _stats(ms: list[float]) -> dict:
    import numpy as np

    return {"median_ms": round(float(np.median(ms)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3), "n": len(ms)}


def step_env(args) -> dict:
    import torch

    out = {"torch": torch.__version__, "python": platform.python_version(), "cuda_available": torch.cuda.is_available(),
           "cuda": torch.version.cuda, "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    if torch.cuda.is_available():
        dev = torch.device(args.device if args.device.startswith("cuda") else "cuda")
        p = torch.cuda.get_device_properties(dev)
        out.update(device=p.name, capability=f"{p.major}.{p.minor}", memory_gib=round(p.total_memory / 2**30, 1),
                   cudnn=torch.backends.cudnn.version())
    return out


def step_tests(args) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test/test_backends.py", "test/test_train.py",
           "-k", "cuda or amp"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    tail = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-300:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors|deselected)", tail)}
    skips = [line for line in r.stdout.splitlines() if line.startswith("SKIPPED")]
    return {"command": " ".join(cmd[2:]), "returncode": r.returncode, "summary": tail, "counts": counts, "skipped": skips,
            "ok": r.returncode == 0}


def step_network(args) -> dict:
    import torch

    from ..core.backends import example_input, max_abs_diff
    from ..core.engine import InferenceEngine
    from ..core.model_io import load_model

    model, meta = load_model(args.model, None, "cpu")
    shape = (1, meta.in_channels, meta.input_size, meta.input_size)
    x = example_input(shape)
    ref = InferenceEngine(model, "cpu", backend="eager", threads=0)(x)
    frames, warmup = (3, 1) if args.quick else (300, 30)
    out = {"shape": list(shape), "backends": {}}
    for backend in ("eager", "auto"):
        if args.device == "cpu" and backend == "auto" and args.quick:
            out["backends"][backend] = {"skipped": "a CPU dry run does not compile (minutes on a cold cache)"}
            continue
        eng = InferenceEngine(model, args.device, backend=backend)
        eng.warmup(shape[1], shape[2:], n=warmup)
        ms = []
        for _ in range(frames):
            t0 = time.perf_counter()
            eng(x)
            eng.synchronize()
            ms.append((time.perf_counter() - t0) * 1e3)
        y = [o.float().cpu() for o in eng(x)]
        out["backends"][backend] = {"runs": eng.backend, "dtype": str(eng.dtype).replace("torch.", ""), **_stats(ms),
                                    "max_abs_diff_vs_cpu_fp32": float(max_abs_diff(y, ref)), "info": {
                                        k: v for k, v in eng.backend_info.items() if k in ("reason", "state", "compile_s")}}
        del eng
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return out


def step_core(args) -> dict:
    from ..bench.core_latency import measure, synthetic_frames

    n = 5 if args.quick else 200
    r = measure(args.device, synthetic_frames(n), args.model, warmup=2 if args.quick else 20,
                backend="eager" if args.quick else "auto", progress=False)
    return r


def step_node(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "node.json"
        cmd = [sys.executable, "-m", "dsc_grasp_ros.cli", "benchmark", "node", "--device", args.device, "--json", str(report)]
        if args.quick:
            cmd += ["--seconds", "2", "--lockstep-frames", "3", "--backend", "eager"]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not report.is_file():
            raise RuntimeError(f"'{' '.join(cmd[2:])}' exited {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}")
        return {"command": " ".join(cmd[2:]), **json.loads(report.read_text())}


def step_train(args) -> dict:
    from ..data.toy import write_toy_jacquard

    steps = 2 if args.quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        data = write_toy_jacquard(Path(tmp) / "toy", n_objects=4, per_object=4, height=224, width=224)
        cmd = [sys.executable, "-m", "dsc_grasp_ros.cli", "train", "--dataset", "jacquard-format", "--path", str(data),
               "--out", str(Path(tmp) / "run"), "--device", args.device, "--max-steps", str(steps), "--epochs", "1000",
               "--batch-size", "8", "--workers", "0", "--precise-bn", "0", "--no-progress", "--json", "--eval-every", "1000"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=420)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"training exited {r.returncode}: {r.stderr.strip()[-400:]}")
        summary = json.loads(r.stdout[r.stdout.index("{"):])
        hist = Path(tmp) / "run" / "history.json"
        history = json.loads(hist.read_text()) if hist.is_file() else None
    amp = args.device.startswith("cuda")
    return {"steps": steps, "batch_size": 8, "amp": amp, "wall_s": round(wall, 1), "steps_per_s": round(steps / wall, 2),
            "summary": {k: summary.get(k) for k in ("accuracy", "epochs_run", "wall_minutes")},
            "last_epoch": (history or [{}])[-1] if isinstance(history, list) else None}


def run(args) -> int:
    import torch

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(STEPS)
    if unknown:
        print(f"dsc-grasp gpu-check: error: unknown step(s) in --skip: {sorted(unknown)} (steps: {', '.join(STEPS)})", file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("dsc-grasp gpu-check: error: no CUDA device here; run it on a GPU, or --device cpu --quick for a dry run",
              file=sys.stderr)
        return 2
    report = {"command": "dsc-grasp gpu-check " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["gpu-check"] else "dsc-grasp gpu-check",
              "device": args.device, "quick": args.quick, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "steps": {}}
    t_all = time.perf_counter()
    for name in STEPS:
        if name in skip:
            report["steps"][name] = {"ok": None, "skipped": "--skip"}
            continue
        t0 = time.perf_counter()
        try:
            result = globals()[f"step_{name}"](args)
            ok = bool(result.pop("ok", True))
            report["steps"][name] = {"ok": ok, "seconds": round(time.perf_counter() - t0, 1), "result": result}
        except Exception as e:  # noqa: BLE001 - a failing step is reported, the others still run
            report["steps"][name] = {"ok": False, "seconds": round(time.perf_counter() - t0, 1), "error": f"{type(e).__name__}: {e}"}
        print(f"{name:8s} {'ok' if report['steps'][name]['ok'] else 'FAILED'} in {report['steps'][name]['seconds']} s",
              file=sys.stderr, flush=True)
    report["seconds"] = round(time.perf_counter() - t_all, 1)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    failed = [n for n, s in report["steps"].items() if s.get("ok") is False]
    print(f"report: {args.out} ({report['seconds']} s){'; failed: ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0
