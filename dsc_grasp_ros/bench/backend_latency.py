"""Network latency by backend, up-sampling order and thread count, interleaved in one process
(``dsc-grasp benchmark backends``).

Every configuration is built first (compiled ones load or fill the on-disk compile cache), then the
configurations take turns frame by frame (round robin), so a load change on a shared machine hits
all of them alike. ``busy`` extra processes each keep one core busy for the timed part (a busy
loop, like a RealSense driver / MoveIt / rviz beside the node) and are stopped afterwards.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from ..core import backends
from ..core.backends import example_input
from ..core.inference import InferenceEngine
from ..core.model_io import load_model
from ..core.network import MODALITY_CHANNELS, dsc_graspnet


def measure(orders, backend_names=("eager", "compiled"), threads=(1, 2), model: str | None = None, modality: str = "rgbd",
            size: int = 224, iters: int = 30, warmup: int = 3, busy: int = 0, compile_cache: str | None = None,
            cpp_wrapper=("on",), progress: bool = True, precisions=("fp32",)) -> dict:
    """Build every configuration (order x backend x threads x C++/Python wrapper x precision), time them
    interleaved and return the results document (median / p95 per configuration, ratio to the first)."""
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # settable once per process, before any parallel work: keep what is set
        pass
    nets = {}
    if model:
        m, meta = load_model(model)
        nets[m.cfg.upsample_order] = (m, meta.in_channels)
    else:
        for o in orders:
            torch.manual_seed(0)
            nets[o] = (dsc_graspnet(modality, upsample_order=o).eval(), MODALITY_CHANNELS[modality])

    configs, build = [], {}
    for t in threads:
        for order, (net, c) in nets.items():
            for b, wrap, prec in [(b, w, pr) for b in backend_names for w in (cpp_wrapper if b == "compiled" else [None])
                                  for pr in precisions]:
                torch.set_num_threads(t)  # Inductor bakes the thread count into the kernels it compiles
                t0 = time.perf_counter()
                eng = InferenceEngine(net, "cpu", backend=b, threads=t, compile_cache=compile_cache, precision=prec)
                # torch.compile caches per code object: a second model of the same structure would
                # reuse the first one's compiled code (its threads, its wrapper) without a class of its own
                cls = type(eng._model)
                eng._model.__class__ = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
                backends.CPP_WRAPPER = wrap == "on"
                eng.warmup(c, (size, size), n=1)
                name = f"{order}/{eng.backend}/{t}t"
                if eng.backend == "compiled":
                    name = f"{order}/compiled-{'cpp' if eng.backend_info.get('cpp_wrapper') else 'py'}/{t}t"
                if prec != "fp32":
                    name += f"/{eng.precision_info['runs']}"
                build[name] = {"build_s": round(time.perf_counter() - t0, 1), **{k: v for k, v in eng.backend_info.items() if k != "requested"}}
                print(f"built {name} in {build[name]['build_s']} s {eng.backend_info.get('reason') or ''}", file=sys.stderr)
                configs.append((name, eng, t, example_input((1, c, size, size))))

    # each burner spins until this process is gone (so none survives a killed benchmark)
    burn = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(busy)]
    times = {name: [] for name, *_ in configs}
    try:
        time.sleep(0.5 if burners else 0)
        for i in tqdm(range(warmup + iters), desc="rounds", file=sys.stderr, disable=not progress):
            for name, eng, t, x in configs:
                torch.set_num_threads(t)
                t0 = time.perf_counter()
                eng(x)
                dt = time.perf_counter() - t0
                if i >= warmup:
                    times[name].append(dt * 1e3)
    finally:
        for p in burners:  # only the processes started here
            p.kill()
            p.wait()

    first = configs[0][0]
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "load_avg_1min": os.getloadavg()[0],
        "busy_processes": busy,
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")},
        "input": f"1x{configs[0][3].shape[1]}x{size}x{size}",
        "iters": iters,
        "results": {
            n: {"median_ms": float(np.median(v)), "p95_ms": float(np.percentile(v, 95)), "ratio_to_first": float(np.median(v) / np.median(times[first])), **build[n]}
            for n, v in times.items()
        },
    }
