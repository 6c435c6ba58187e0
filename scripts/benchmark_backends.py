#!/usr/bin/env python3
"""Network latency by backend, up-sampling order and thread count, interleaved in one process.

Every configuration is built first (compiled ones load or fill the on-disk compile cache), then the
configurations take turns frame by frame (round robin), so a load change on a shared machine hits
all of them alike. ``--busy N`` starts N extra processes that each keep one core busy
(a busy loop, like a RealSense driver / MoveIt / rviz beside the node) for the timed part,
and stops them afterwards. Prints median / p95 per configuration and ratios to the first one.

    .venv/bin/python scripts/benchmark_backends.py                       # csp_first vs eq5, eager vs compiled, 1 and 2 threads
    .venv/bin/python scripts/benchmark_backends.py --busy 1 --json       # same with one core kept busy
    .venv/bin/python scripts/benchmark_backends.py --orders csp_first --threads 2 --cpp-wrapper on off   # Inductor's C++ vs Python wrapper
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/benchmark_backends.py --busy 1

Random (untrained) weights of the given orders unless ``--model`` names a model file (then that
model's order only). Input: a smooth synthetic 224 x 224 RGB-D frame (``backends.example_input``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dsc_grasp_ros  # noqa: E402,F401  - first: sets OMP_WAIT_POLICY before torch loads OpenMP
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dsc_grasp_ros.core import backends  # noqa: E402
from dsc_grasp_ros.core.backends import example_input  # noqa: E402
from dsc_grasp_ros.core.inference import InferenceEngine  # noqa: E402
from dsc_grasp_ros.core.model_io import load_model  # noqa: E402
from dsc_grasp_ros.core.network import MODALITY_CHANNELS, UPSAMPLE_ORDERS, dsc_graspnet  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", nargs="+", default=list(UPSAMPLE_ORDERS), choices=UPSAMPLE_ORDERS, help="up-sampling orders (default: both)")
    ap.add_argument("--backends", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"], help="backends (default: both)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch thread counts (default: 1 2)")
    ap.add_argument("--model", help="a model file instead of random weights")
    ap.add_argument("--modality", default="rgbd", choices=sorted(MODALITY_CHANNELS), help="with random weights (default: %(default)s)")
    ap.add_argument("--size", type=int, default=224, help="input side (default: %(default)s)")
    ap.add_argument("--iters", type=int, default=30, help="timed frames per configuration (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed frames per configuration (default: %(default)s)")
    ap.add_argument("--busy", type=int, default=0, help="extra processes keeping one core busy each during timing (default: 0)")
    ap.add_argument("--compile-cache", help="compile cache folder (default: ~/.cache/dsc_grasp_ros/torchinductor)")
    ap.add_argument("--cpp-wrapper", nargs="+", default=["on"], choices=["on", "off"],
                    help="compiled configurations with Inductor's C++ wrapper (on, the package default) and/or its Python one (off)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    torch.set_num_interop_threads(1)
    nets = {}
    if args.model:
        m, meta = load_model(args.model)
        nets[m.cfg.upsample_order] = (m, meta.in_channels)
    else:
        for o in args.orders:
            torch.manual_seed(0)
            nets[o] = (dsc_graspnet(args.modality, upsample_order=o).eval(), MODALITY_CHANNELS[args.modality])

    configs, build = [], {}
    for t in args.threads:
        for order, (net, c) in nets.items():
            for b, wrap in [(b, w) for b in args.backends for w in (args.cpp_wrapper if b == "compiled" else [None])]:
                torch.set_num_threads(t)  # Inductor bakes the thread count into the kernels it compiles
                t0 = time.perf_counter()
                eng = InferenceEngine(net, "cpu", backend=b, threads=t, compile_cache=args.compile_cache)
                # torch.compile caches per code object: a second model of the same structure would
                # reuse the first one's compiled code (its threads, its wrapper) without a class of its own
                cls = type(eng._model)
                eng._model.__class__ = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
                backends.CPP_WRAPPER = wrap == "on"
                eng.warmup(c, (args.size, args.size), n=1)
                name = f"{order}/{eng.backend}/{t}t"
                if eng.backend == "compiled":
                    name = f"{order}/compiled-{'cpp' if eng.backend_info.get('cpp_wrapper') else 'py'}/{t}t"
                build[name] = {"build_s": round(time.perf_counter() - t0, 1), **{k: v for k, v in eng.backend_info.items() if k != "requested"}}
                print(f"built {name} in {build[name]['build_s']} s {eng.backend_info.get('reason') or ''}", file=sys.stderr)
                configs.append((name, eng, t, example_input((1, c, args.size, args.size))))

    # each burner spins until this process is gone (so none survives a killed benchmark)
    burn = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(args.busy)]
    times = {name: [] for name, *_ in configs}
    try:
        time.sleep(0.5 if burners else 0)
        for i in tqdm(range(args.warmup + args.iters), desc="rounds", file=sys.stderr, disable=args.json):
            for name, eng, t, x in configs:
                torch.set_num_threads(t)
                t0 = time.perf_counter()
                eng(x)
                dt = time.perf_counter() - t0
                if i >= args.warmup:
                    times[name].append(dt * 1e3)
    finally:
        for p in burners:  # only the processes started here
            p.kill()
            p.wait()

    first = configs[0][0]
    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "load_avg_1min": os.getloadavg()[0],
        "busy_processes": args.busy,
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")},
        "input": f"1x{configs[0][3].shape[1]}x{args.size}x{args.size}",
        "iters": args.iters,
        "results": {
            n: {"median_ms": float(np.median(v)), "p95_ms": float(np.percentile(v, 95)), "ratio_to_first": float(np.median(v) / np.median(times[first])), **build[n]}
            for n, v in times.items()
        },
    }
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{res['machine']}; load {res['load_avg_1min']:.1f}; busy processes {args.busy}; {res['input']}; {args.iters} frames each, interleaved; env {res['env']}")
    print(f"{'configuration':28s} {'median ms':>10s} {'p95 ms':>10s} {'/first':>7s} {'build s':>8s}")
    for n, r in res["results"].items():
        print(f"{n:28s} {r['median_ms']:10.1f} {r['p95_ms']:10.1f} {r['ratio_to_first']:7.2f} {r['build_s']:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
