#!/usr/bin/env python3
"""Network latency of DSC-GraspNet and the two peers, side by side in ONE process, interleaved.

Every iteration runs each selected network once (batch 1) in a rotating order, so that a load
spike, thermal change or another process hits all of them alike; the ratios between networks
measured this way are far more stable than absolute times. Printed per network: median, p95 and
mean of the forward pass (synchronised on CUDA), parameters, convolution GFLOPs, and the ratio of
every median to the reference network's (--reference) and to GR-ConvNet3's.

Networks (names for --networks; `list` prints the ones available in this checkout):
  dsc-<order>-plain          our network as a plain nn.Module, eval mode (no BatchNorm folding)
  dsc-<order>-<backend>      our network through InferenceEngine(backend=<backend>): what the
                             node runs (eager: BatchNorm folded + merged heads; compiled:
                             torch.compile of that, cold compile on first use, cache on disk)
  grconvnet3, ggcnn2         the peers from ../shared/peers (224x224 RGB-D, 300x300 depth),
                             their published architectures (dsc_grasp_ros/bench/peers.py)
  grconvnet3-ch32            GR-ConvNet3 at its 32-channel default width (1.90 M parameters,
                             random weights: no published ch32 weights are in ../shared/peers)
<order> is an up-sampling order of dsc_grasp_ros.core.network (csp_first = the authors' order, the
default; eq5 = literal Eq. 5). Our networks run with random weights (latency does not depend
on them); the peers with their published weights. Inputs are random, normalised-range tensors.

The ratios are taken against --reference (default: our fastest path present, dsc-csp_first-compiled,
else the first dsc-*-eager, else the first dsc-* network).

Outputs: a text table (default), --json [FILE] (the full results; '-' or no FILE = stdout only) and
--markdown [FILE] (a README-ready table with the machine, torch version, threads and date).

examples:
  .venv/bin/python scripts/benchmark_networks.py --threads 2                 # default set
  .venv/bin/python scripts/benchmark_networks.py --threads 2 --iters 100 --markdown bench.md --json bench.json  # README table
  .venv/bin/python scripts/benchmark_networks.py --no-compile --iters 2 --warmup 0   # quick check (CI), no torch.compile
  .venv/bin/python scripts/benchmark_networks.py --networks dsc-csp_first-compiled grconvnet3 --iters 100 --json
  .venv/bin/python scripts/benchmark_networks.py --threads 2 --burn-cores 1  # a second process keeps one core busy
  .venv/bin/python scripts/benchmark_networks.py --networks list
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import multiprocessing as mp
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dsc_grasp_ros  # noqa: E402,F401 - before torch: the package's passive OpenMP waits, as the node and benchmark_core run
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dsc_grasp_ros.core import network as net_mod  # noqa: E402
from dsc_grasp_ros.bench.peers import PEERS, PeerError, load_peer  # noqa: E402


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
    from dsc_grasp_ros.core.inference import InferenceEngine

    if "backend" not in inspect.signature(InferenceEngine.__init__).parameters:
        return []
    from dsc_grasp_ros.core.backends import BACKENDS

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
        from dsc_grasp_ros.bench.peers import GRConvNet3

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
    from dsc_grasp_ros.core.inference import InferenceEngine

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", nargs="+", default=None, help="networks to run (default: see above; 'list' prints the available ones)")
    ap.add_argument("--iters", type=int, default=50, help="timed iterations, each running every network once (1-100000, default %(default)s)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations first (0-1000, default %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads (1-256; default: torch's choice, the core count)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    ap.add_argument("--reference", default=None, help="network the ratios are taken against (default: the first dsc-* network)")
    ap.add_argument("--peers-dir", default=None, help="folder with the peer weights (default: <project root>/../shared/peers)")
    ap.add_argument("--burn-cores", type=int, default=0, help="start N busy-loop processes for the run, like a robot PC's other work (0-64, default 0)")
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="leave the -compiled networks out of the default set (quick runs, CI: no torch.compile)")
    ap.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                    help="write the results as JSON to FILE; without FILE (or '-'): print only the JSON on stdout")
    ap.add_argument("--markdown", nargs="?", const="-", default=None, metavar="FILE",
                    help="a README-ready markdown table (machine, torch, threads, date) to FILE; without FILE (or '-'): "
                         "print it on stdout instead of the text table")
    ap.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar or set-up lines on stderr")
    args = ap.parse_args(argv)

    if args.json == "-" and args.markdown == "-":
        ap.error("--json and --markdown cannot both print on stdout: give one of them a FILE")
    if args.networks == ["list"]:
        print("\n".join(available_networks()))
        return 0
    for flag, lo, hi in (("iters", 1, 100000), ("warmup", 0, 1000), ("burn_cores", 0, 64)):
        if not lo <= getattr(args, flag) <= hi:
            ap.error(f"--{flag.replace('_', '-')} must be in [{lo}, {hi}]")
    if args.threads is not None:
        if not 1 <= args.threads <= 256:
            ap.error("--threads must be in [1, 256]")
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: CUDA is not available")
    names = args.networks or default_networks(args.compile)
    nets, infos = {}, {}
    try:
        for n in names:
            if args.progress:
                print(f"setting up {n} ...", file=sys.stderr, flush=True)
            fn, x, info, module = build(n, device, args.peers_dir, args.threads)
            cpu_module = module.to("cpu") if device.type == "cpu" else module
            info["params"] = int(sum(p.numel() for p in module.parameters()))
            info["conv_gflops"] = round(conv_gflops(cpu_module, x.cpu()) if device.type == "cpu" else float("nan"), 3)
            nets[n], infos[n] = (fn, x), info
    except (PeerError, ValueError) as e:
        print(f"benchmark_networks: error: {e}", file=sys.stderr)
        return 2
    ref = args.reference or default_reference(names)
    if ref not in nets:
        ap.error(f"--reference {ref!r} is not among the networks run")

    burners = []
    for _ in range(args.burn_cores):
        p = mp.Process(target=_burn, daemon=True)
        p.start()
        burners.append(p)
    load_before = os.getloadavg()
    times = {n: [] for n in names}
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    bar = None
    if args.progress:  # on stderr: --json output on stdout stays clean
        from tqdm import tqdm

        bar = tqdm(total=args.warmup + args.iters, desc="interleaved", unit="round", file=sys.stderr, dynamic_ncols=True)
    t_start = time.perf_counter()
    try:
        with torch.inference_mode():
            for it in range(args.warmup + args.iters):
                k = it % len(names)
                for n in names[k:] + names[:k]:  # rotate the order every round
                    fn, x = nets[n]
                    sync()
                    t0 = time.perf_counter()
                    fn(x)
                    sync()
                    if it >= args.warmup:
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
    result = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": "scripts/benchmark_networks.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "burn_cores": args.burn_cores,
            "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        },
        "batch": 1,
        "iters": args.iters,
        "warmup": args.warmup,
        "order": "round-robin, rotated each round",
        "wall_s": round(wall, 1),
        "reference": ref,
        "networks": stats,
    }
    if args.json is not None:
        text = json.dumps(result, indent=1)
        if args.json == "-":
            print(text)
            return 0
        Path(args.json).write_text(text + "\n")
    if args.markdown is not None:
        md = markdown(result)
        if args.markdown == "-":
            print(md)
            return 0
        Path(args.markdown).write_text(md)
    m = result["machine"]
    print(f"\n{m['device']} ({m['cpu']}, {m['cores']} cores), torch {m['torch']}, {m['threads']} threads, "
          f"{args.burn_cores} burner process(es); 1-min load avg {m['loadavg_1min_before_after'][0]} -> {m['loadavg_1min_before_after'][1]}")
    print(f"batch 1, {args.iters} interleaved rounds (+{args.warmup} warm-up), {wall:.0f} s\n")
    hdr = f"  {'network':<24} {'input':<12} {'params':>9} {'GFLOPs':>7} {'median ms':>10} {'p95 ms':>8} {'/ ref':>7}"
    hdr += f" {'GR-ConvNet3 /':>14}" if gr else ""
    print(hdr)
    for n in names:
        s = stats[n]
        line = (f"  {n:<24} {s['input'].split('x', 1)[1]:<12} {s['params']:>9,} {s['conv_gflops']:>7.2f} {s['median_ms']:>10.2f} "
                f"{s['p95_ms']:>8.2f} {s['ratio_to_reference']:>7.2f}")
        line += f" {s['grconvnet3_over_this']:>14.2f}" if gr else ""
        print(line)
        bi = s.get("backend_info") or {}
        if bi.get("reason"):
            print(f"    {n}: fell back to {s.get('backend')}: {bi['reason']}")
    note = f"\n  '/ ref' = median / median of {ref}"
    if gr:
        note += "; 'GR-ConvNet3 /' = GR-ConvNet3's median / this one's (> 1: faster than GR-ConvNet3)"
    print(note)
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
