"""Network latency of DSC-GraspNet and the two peers, side by side in one process, interleaved
(``dsc-grasp benchmark network``).

Every round runs each selected network once (batch 1) in a rotating order, so that a load spike,
thermal change or another process hits all of them alike. :func:`run` measures and returns the
results document; :func:`markdown` renders it as the README table. The command line's help
(:mod:`dsc_grasp_ros.commands.benchmark`) describes the networks and the outputs.
"""



from __future__ import annotations

import datetime
import inspect
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core import network as net_mod
from .peers import PEERS, load_peer


# --------------------------------------------------------------------------- what can run
def upsample_orders() -> list[str]:
    """The up-sampling orders this checkout's network knows (default first)."""
    orders = list(getattr(net_mod, "UPSAMPLE_ORDERS", ()))
    default = getattr(net_mod.DSCGraspNetConfig, "upsample_order", None)
    if default in orders:
        orders.remove(default)
        orders.insert(0, default)
    return orders or [""]


def engine_backends() -> list[str]:
    """InferenceEngine backends (``auto`` left out: it is ``compiled`` on CPU); [] = no backend arg."""
    from ..core.inference import InferenceEngine

    if "backend" not in inspect.signature(InferenceEngine.__init__).parameters:
        return []
    from ..core.backends import BACKENDS

    return [b for b in BACKENDS if b != "auto"]


def available_networks() -> list[str]:
    names = []
    for order in upsample_orders():
        stem = f"dsc-{order}" if order else "dsc"
        names.append(f"{stem}-plain")
        backends = engine_backends()
        names += [f"{stem}-{b}" for b in backends] if backends else [f"{stem}-engine"]
    return names + sorted(PEERS) + ["grconvnet3-ch32"]


def default_networks(compile: bool = True) -> list[str]:
    """Everything available: both orders plain and through every engine backend (a cold
    ``compiled`` costs about a minute per order on 2 cores, then Inductor's disk cache), the peers;
    ``compile=False`` leaves the ``-compiled`` ones out (quick runs, CI)."""
    return [n for n in available_networks() if compile or not n.endswith("-compiled")]


def default_reference(names: list[str]) -> str:
    """Our fast path when it runs (first ``dsc-*-compiled``), else the first ``dsc-*-eager``, else the
    first ``dsc*`` network, else the first one."""
    dsc = [n for n in names if n.startswith("dsc")]
    for suffix in ("-compiled", "-eager"):
        hit = [n for n in dsc if n.endswith(suffix)]
        if hit:
            return hit[0]
    return (dsc or names)[0]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; ``platform`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- FLOPs
def conv_gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds x 2 of all (transposed) convolutions for input ``x``, in GFLOPs."""
    total = [0]

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, torch.nn.ConvTranspose2d):
            total[0] += inp[0].numel() * (m.out_channels // m.groups) * k
        else:
            total[0] += out.numel() * (m.in_channels // m.groups) * k

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hs:
            h.remove()
    return 2 * total[0] / 1e9


# --------------------------------------------------------------------------- builders
def build(name: str, device: torch.device, peers_dir, threads: int | None):
    """``(callable, input, info, module)`` for a network name (``module``: the nn.Module, for counting)."""
    g = torch.Generator().manual_seed(0)
    if name in PEERS:
        peer = load_peer(name, peers_dir, device)
        c = 4 if peer.modality == "rgbd" else 1
        x = (0.3 * torch.randn(1, c, peer.input_size, peer.input_size, generator=g)).to(device)
        info = {"kind": "peer", "title": peer.spec.title, "weights": str(peer.path), "input": f"1x{c}x{peer.input_size}x{peer.input_size}"}
        return peer.model, x, info, peer.model
    if name == "grconvnet3-ch32":
        from .peers import GRConvNet3

        torch.manual_seed(0)
        model = GRConvNet3(in_channels=4, channels=32, dropout=0.1).eval().to(device)
        x = (0.3 * torch.randn(1, 4, 224, 224, generator=g)).to(device)
        return model, x, {"kind": "peer", "title": "GR-ConvNet3 (RGB-D, 32 ch, random weights)", "input": "1x4x224x224"}, model
    if not name.startswith("dsc"):
        raise ValueError(f"unknown network {name!r}: available {available_networks()}")
    parts = name.split("-")
    path = parts[-1]
    order = "-".join(parts[1:-1])
    if name not in available_networks():
        raise ValueError(f"network {name!r} is not available in this checkout: available {available_networks()}")
    torch.manual_seed(0)
    model = net_mod.dsc_graspnet("rgbd", **({"upsample_order": order} if order else {})).eval()
    x = (0.3 * torch.randn(1, 4, 224, 224, generator=g)).to(device)
    info = {"kind": "ours", "title": f"DSC-GraspNet RGB-D ({order or 'default order'}, {path})", "input": "1x4x224x224"}
    if path == "plain":
        return model.to(device), x, info, model
    from ..core.inference import InferenceEngine

    kw = {"backend": path} if path != "engine" else {}
    if "threads" in inspect.signature(InferenceEngine.__init__).parameters and threads:
        kw["threads"] = threads
    eng = InferenceEngine(model, str(device), fp16=False, **kw)
    t0 = time.perf_counter()
    if hasattr(eng, "prepare"):
        eng.prepare(tuple(x.shape))
    eng(x)
    info["setup_s"] = round(time.perf_counter() - t0, 2)
    info["backend"] = getattr(eng, "backend", "engine")
    info["backend_info"] = {k: v for k, v in getattr(eng, "backend_info", {}).items() if k in ("requested", "reason", "compile_s", "parity", "cache_dir")}
    return eng, x, info, model


# --------------------------------------------------------------------------- load generator
def _burn():
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def summarise(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)), "mean_ms": float(a.mean()),
            "min_ms": float(a.min()), "n": int(a.size)}


def measure(names: list[str], device: torch.device, *, iters: int = 50, warmup: int = 5, threads: int | None = None,
            peers_dir=None, reference: str | None = None, burn_cores: int = 0, progress: bool = True,
            command: str = "dsc-grasp benchmark network") -> dict:
    """Build every network of ``names``, run them interleaved (``warmup`` + ``iters`` rounds) and
    return the results document (machine, settings, per-network statistics and ratios). Raises
    :class:`~dsc_grasp_ros.bench.peers.PeerError` or ``ValueError`` for a network that cannot be
    built, ``ValueError`` for a ``reference`` that is not among them."""
    nets, infos = {}, {}
    for n in names:
        if progress:
            print(f"setting up {n} ...", file=sys.stderr, flush=True)
        fn, x, info, module = build(n, device, peers_dir, threads)
        cpu_module = module.to("cpu") if device.type == "cpu" else module
        info["params"] = int(sum(p.numel() for p in module.parameters()))
        info["conv_gflops"] = round(conv_gflops(cpu_module, x.cpu()) if device.type == "cpu" else float("nan"), 3)
        nets[n], infos[n] = (fn, x), info
    ref = reference or default_reference(names)
    if ref not in nets:
        raise ValueError(f"--reference {ref!r} is not among the networks run")

    burners = []
    for _ in range(burn_cores):
        p = mp.Process(target=_burn, daemon=True)
        p.start()
        burners.append(p)
    load_before = os.getloadavg()
    times = {n: [] for n in names}
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    bar = None
    if progress:  # on stderr: --json output on stdout stays clean
        from tqdm import tqdm

        bar = tqdm(total=warmup + iters, desc="interleaved", unit="round", file=sys.stderr, dynamic_ncols=True)
    t_start = time.perf_counter()
    try:
        with torch.inference_mode():
            for it in range(warmup + iters):
                k = it % len(names)
                for n in names[k:] + names[:k]:  # rotate the order every round
                    fn, x = nets[n]
                    sync()
                    t0 = time.perf_counter()
                    fn(x)
                    sync()
                    if it >= warmup:
                        times[n].append((time.perf_counter() - t0) * 1e3)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        for p in burners:
            p.terminate()
            p.join()
    wall = time.perf_counter() - t_start
    load_after = os.getloadavg()

    stats = {n: {**infos[n], **summarise(times[n])} for n in names}
    ref_med = stats[ref]["median_ms"]
    gr = "grconvnet3" if "grconvnet3" in stats else None
    for n in names:
        stats[n]["ratio_to_reference"] = round(stats[n]["median_ms"] / ref_med, 3)
        if gr:
            stats[n]["grconvnet3_over_this"] = round(stats[gr]["median_ms"] / stats[n]["median_ms"], 3)
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": command,
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "burn_cores": burn_cores,
            "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        },
        "batch": 1,
        "iters": iters,
        "warmup": warmup,
        "order": "round-robin, rotated each round",
        "wall_s": round(wall, 1),
        "reference": ref,
        "networks": stats,
    }


def text_table(result: dict) -> str:
    """The text table the command prints (machine line, one row per network, the ratios' meaning)."""
    m, stats, ref = result["machine"], result["networks"], result["reference"]
    gr = "grconvnet3" if "grconvnet3" in stats else None
    lines = [f"\n{m['device']} ({m['cpu']}, {m['cores']} cores), torch {m['torch']}, {m['threads']} threads, "
             f"{m['burn_cores']} burner process(es); 1-min load avg {m['loadavg_1min_before_after'][0]} -> {m['loadavg_1min_before_after'][1]}",
             f"batch 1, {result['iters']} interleaved rounds (+{result['warmup']} warm-up), {result['wall_s']:.0f} s\n"]
    hdr = f"  {'network':<24} {'input':<12} {'params':>9} {'GFLOPs':>7} {'median ms':>10} {'p95 ms':>8} {'/ ref':>7}"
    hdr += f" {'GR-ConvNet3 /':>14}" if gr else ""
    lines.append(hdr)
    for n, s in stats.items():
        line = (f"  {n:<24} {s['input'].split('x', 1)[1]:<12} {s['params']:>9,} {s['conv_gflops']:>7.2f} {s['median_ms']:>10.2f} "
                f"{s['p95_ms']:>8.2f} {s['ratio_to_reference']:>7.2f}")
        line += f" {s['grconvnet3_over_this']:>14.2f}" if gr else ""
        lines.append(line)
        bi = s.get("backend_info") or {}
        if bi.get("reason"):
            lines.append(f"    {n}: fell back to {s.get('backend')}: {bi['reason']}")
    note = f"\n  '/ ref' = median / median of {ref}"
    if gr:
        note += "; 'GR-ConvNet3 /' = GR-ConvNet3's median / this one's (> 1: faster than GR-ConvNet3)"
    lines.append(note)
    return "\n".join(lines)

def markdown(result: dict) -> str:
    """The results as a markdown table for the README: one row per network (the run's order),
    median and p95 with ratios, preceded by the machine and the run's settings."""
    m, nets, ref = result["machine"], result["networks"], result["reference"]
    gr = "grconvnet3" if "grconvnet3" in nets else None
    load = m["loadavg_1min_before_after"]
    lines = [
        f"Measured {result['date_utc']} UTC on {m['device']} ({m['cpu']}, {m['cores']} cores), torch {m['torch']}, "
        f"{m['threads']} thread(s), OpenMP waits {(m.get('omp_wait_policy') or 'default').lower()}, "
        f"{m['burn_cores']} busy-loop process(es), 1-minute load average {load[0]} before / {load[1]} after; batch 1, "
        f"{result['iters']} rounds (+{result['warmup']} warm-up) interleaved in one process, order rotated each round "
        f"({result['wall_s']:.0f} s). `{result['command']}`",
        "",
        "| network | input | parameters | conv GFLOPs | median (ms) | p95 (ms) | median / " + f"`{ref}`" + " |"
        + (" GR-ConvNet3 median / this |" if gr else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if gr else ""),
    ]
    for n, s in nets.items():
        label = f"**`{n}`**" if n == ref else f"`{n}`"
        backend = s.get("backend")
        if backend and not n.endswith(f"-{backend}"):  # e.g. compiled that fell back to eager
            label += f" (ran {backend})"
        row = (f"| {label} | {s['input'].split('x', 1)[1]} | {s['params']:,} | {s['conv_gflops']:.2f} | {s['median_ms']:.1f} | "
               f"{s['p95_ms']:.1f} | {s['ratio_to_reference']:.2f} |")
        if gr:
            row += f" {s['grconvnet3_over_this']:.2f} |"
        lines.append(row)
    lines += ["", "`dsc-<order>-plain`: our network as an nn.Module (eval); `-eager`: BatchNorm folded + merged heads "
              "(the node's eager backend); `-compiled`: that through torch.compile (the node's default on CPU). "
              "Our networks have random weights, the peers their published ones (latency does not depend on them)."]
    fell = [f"`{n}`: {s['backend_info']['reason']}" for n, s in nets.items() if (s.get("backend_info") or {}).get("reason")]
    if fell:
        lines.append("Fell back: " + "; ".join(fell))
    return "\n".join(lines) + "\n"
