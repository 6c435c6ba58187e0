"""Network latency of DSC-GraspNet and the two peers, side by side in one process, interleaved
(``dsc-grasp benchmark network``).

Every round runs each selected network once (batch 1) in a rotating order, so that a load spike,
thermal change or another process hits all of them alike. :func:`measure` measures and returns the
results document; :func:`markdown` renders it as the README table. The command line's help
(:mod:`dsc_grasp_ros.commands.benchmark`) describes the networks and the outputs.

Besides torch (plain, eager, compiled), our network runs in the other runtimes of
:data:`RUNTIMES`: torch.compile in bfloat16, onnxruntime, and OpenVINO in fp32, bf16 and int8
(NNCF post-training quantization). OpenVINO and NNCF are optional packages: those names are listed
and accepted only where they import (:func:`missing_packages`).
"""



from __future__ import annotations

import contextlib
import datetime
import importlib.util
import inspect
import io
import logging
import multiprocessing as mp
import os
import platform
import sys
import tempfile
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
    """InferenceEngine backends as ``dsc-<order>-<backend>`` rows; [] = no backend arg. Left out:
    ``auto`` (OpenVINO, else compiled, on CPU) and ``openvino`` (the ``-openvino`` runtime row runs
    the same :class:`~dsc_grasp_ros.core.openvino_backend.OpenVinoNetwork`, listed only where OpenVINO imports)."""
    from ..core.inference import InferenceEngine

    if "backend" not in inspect.signature(InferenceEngine.__init__).parameters:
        return []
    from ..core.backends import BACKENDS

    return [b for b in BACKENDS if b not in ("auto", "openvino")]


#: Our network in other runtimes or precisions (name suffix -> what runs it), on the CPU. Their
#: names are listed and accepted only where the packages of :data:`RUNTIME_PACKAGES` import.
RUNTIMES = {
    "compiled-bf16": "InferenceEngine(backend='compiled', precision='bf16'): torch.compile under bfloat16 autocast",
    "onnxruntime": "onnxruntime, CPUExecutionProvider, fp32 (the BatchNorm-folded network exported to ONNX)",
    "openvino": "OpenVINO CPU, fp32 (INFERENCE_PRECISION_HINT f32)",
    "openvino-bf16": "OpenVINO CPU, bfloat16 (INFERENCE_PRECISION_HINT bf16)",
    "openvino-int8": "OpenVINO CPU, int8 (NNCF post-training quantization; the rest f32)",
}

#: the packages each runtime needs: (import name, pip requirement); onnx and onnxruntime are in
#: requirements.txt, OpenVINO and NNCF are optional (the versions the benchmark was run with)
RUNTIME_PACKAGES = {
    "compiled-bf16": (),
    "onnxruntime": (("onnx", "onnx==1.23.2"), ("onnxruntime", "onnxruntime==1.32.0")),
    "openvino": (("onnx", "onnx==1.23.2"), ("openvino", "openvino==2026.4.1")),
    "openvino-bf16": (("onnx", "onnx==1.23.2"), ("openvino", "openvino==2026.4.1")),
    "openvino-int8": (("onnx", "onnx==1.23.2"), ("openvino", "openvino==2026.4.1"), ("nncf", "nncf==3.4.0")),
}

#: calibration inputs of ``-openvino-int8`` by default (``--int8-calibration``)
CALIBRATION_FRAMES = 8


class RuntimeMissing(ValueError):
    """A requested network's runtime package is not installed (the message says how to install it)."""


def split_name(name: str) -> tuple[str, str] | None:
    """``(order, path)`` of one of our network names (``dsc-<order>-<path>``), else None."""
    for order in upsample_orders():
        stem = f"dsc-{order}-" if order else "dsc-"
        if name.startswith(stem):
            return order, name[len(stem):]
    return None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def missing_packages(runtime: str) -> list[tuple[str, str]]:
    """The ``(import name, pip requirement)`` pairs of :data:`RUNTIME_PACKAGES` that do not import."""
    return [(mod, req) for mod, req in RUNTIME_PACKAGES.get(runtime, ()) if not _importable(mod)]


def missing_runtime(name: str) -> str | None:
    """For one of our networks in a runtime of :data:`RUNTIMES` whose packages are not installed:
    one line naming them and the install command; else None."""
    parts = split_name(name)
    if parts is None or parts[1] not in RUNTIMES:
        return None
    missing = missing_packages(parts[1])
    if not missing:
        return None
    mods = " and ".join(m for m, _ in missing)
    return (f"network {name!r} needs {mods}, which {'is' if len(missing) == 1 else 'are'} not installed: "
            f"pip install {' '.join(r for _, r in missing)}")


def _runtime_available(runtime: str) -> bool:
    if runtime == "compiled-bf16":
        from ..core.engine import InferenceEngine

        return "compiled" in engine_backends() and "precision" in inspect.signature(InferenceEngine.__init__).parameters
    return not missing_packages(runtime)


def available_networks() -> list[str]:
    """Every network name this checkout can run: per up-sampling order plain, every engine backend
    and the runtimes of :data:`RUNTIMES` whose packages import; then the peers."""
    names = []
    runtimes = [r for r in RUNTIMES if _runtime_available(r)]
    for order in upsample_orders():
        stem = f"dsc-{order}" if order else "dsc"
        names.append(f"{stem}-plain")
        backends = engine_backends()
        names += [f"{stem}-{b}" for b in backends] if backends else [f"{stem}-engine"]
        names += [f"{stem}-{r}" for r in runtimes]
    return names + sorted(PEERS) + ["grconvnet3-ch32"]


def default_networks(compile: bool = True) -> list[str]:
    """Both orders plain and through every engine backend (a cold ``compiled`` costs about a minute
    per order on 2 cores, then Inductor's disk cache), the peers; ``compile=False`` leaves the
    ``-compiled`` ones out (quick runs, CI). The other runtimes (:data:`RUNTIMES`) run only when named."""
    return [n for n in available_networks()
            if (split_name(n) or ("", ""))[1] not in RUNTIMES and (compile or not n.endswith("-compiled"))]


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
def build(name: str, device: torch.device, peers_dir, threads: int | None, *, calibration: int = CALIBRATION_FRAMES,
          progress: bool = False):
    """``(callable, input, info, module)`` for a network name (``module``: the nn.Module, for counting).

    For our networks ``info["max_abs_diff_vs_eager"]`` is the largest absolute difference of the
    four output maps from our eager path (BatchNorm folded, fp32) on
    :func:`~dsc_grasp_ros.core.backends.example_input`, and ``info["eager_output_scale"]`` the
    largest absolute value of the eager maps there; ``info["ran_instead"]`` says what ran when it is
    not what the name asks for (a compile that fell back to eager, bf16 on a CPU without it)."""
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
    parts = split_name(name) if name.startswith("dsc") else None
    if parts is None:
        raise ValueError(f"unknown network {name!r}: available {available_networks()}")
    order, path = parts
    missing = missing_runtime(name)
    if missing:
        raise RuntimeMissing(missing)
    if name not in available_networks():
        raise ValueError(f"network {name!r} is not available in this checkout: available {available_networks()}")
    if path in RUNTIMES and device.type != "cpu":
        raise ValueError(f"network {name!r} runs on the CPU only (--device cpu)")
    from ..core.backends import example_input, prepare_fast_model

    model = _dsc_model(order)
    x = (0.3 * torch.randn(1, 4, 224, 224, generator=g)).to(device)
    info = {"kind": "ours", "title": f"DSC-GraspNet RGB-D ({order or 'default order'}, {path})", "input": "1x4x224x224"}
    check = example_input(tuple(x.shape))
    with torch.inference_mode():
        eager_maps = _maps(prepare_fast_model(model)(check))  # our eager path, on the CPU in fp32
    t0 = time.perf_counter()
    if path == "plain":
        fn = model.to(device)
    elif path in ("onnxruntime", "openvino", "openvino-bf16", "openvino-int8"):
        onnx_path = _onnx_file(model, order, tuple(x.shape))
        nthreads = threads or torch.get_num_threads()
        if path == "onnxruntime":
            from ..core.onnx_export import OnnxGraspNet

            fn = OnnxGraspNet(onnx_path, ["CPUExecutionProvider"], threads=nthreads, shape=tuple(x.shape))
        else:
            precision = path.rsplit("-", 1)[1] if "-" in path else "fp32"
            calib = calibration_inputs(calibration, tuple(x.shape)) if precision == "int8" else None
            fn = openvino_runner(onnx_path, tuple(x.shape), nthreads, precision, calib, progress=progress)
            if precision == "bf16" and fn.info["inference_precision"] != "bf16":
                info["ran_instead"] = fn.info["inference_precision"]
        fn(x)
        info["setup_s"] = round(time.perf_counter() - t0, 2)
        info["runtime_info"] = fn.info
    else:
        from ..core.inference import InferenceEngine

        backend = "compiled" if path == "compiled-bf16" else path
        kw = {"backend": backend} if backend != "engine" else {}
        if "threads" in inspect.signature(InferenceEngine.__init__).parameters and threads:
            kw["threads"] = threads
        if path == "compiled-bf16":
            kw["precision"] = "bf16"
        eng = InferenceEngine(model, str(device), fp16=False, **kw)
        if hasattr(eng, "prepare"):
            eng.prepare(tuple(x.shape))
        eng(x)
        info["setup_s"] = round(time.perf_counter() - t0, 2)
        info["backend"] = getattr(eng, "backend", "engine")
        info["backend_info"] = {k: v for k, v in getattr(eng, "backend_info", {}).items() if k in ("requested", "reason", "compile_s", "parity", "cache_dir")}
        instead = [info["backend"]] if backend != "engine" and info["backend"] != backend else []
        if path == "compiled-bf16":
            info["precision"] = dict(eng.precision_info)
            if eng.precision_info.get("runs") != "bf16":
                instead.append(eng.precision_info.get("runs", "fp32"))
        if instead:
            info["ran_instead"] = ", ".join(instead)
        fn = eng
    with torch.inference_mode():
        got = _maps(fn(check.to(device)))
    info["max_abs_diff_vs_eager"] = max(float((a - b).abs().max()) for a, b in zip(got, eager_maps))
    info["eager_output_scale"] = max(float(m.abs().max()) for m in eager_maps)
    return fn, x, info, model


def _dsc_model(order: str) -> torch.nn.Module:
    """Our RGB-D network of ``order`` with the benchmark's random weights (seed 0)."""
    torch.manual_seed(0)
    return net_mod.dsc_graspnet("rgbd", **({"upsample_order": order} if order else {})).eval()


def _maps(out) -> list[torch.Tensor]:
    """Four output maps (torch tensors or numpy arrays, any device) as CPU fp32 tensors."""
    return [torch.as_tensor(np.asarray(o)) if not isinstance(o, torch.Tensor) else o.detach().float().cpu() for o in out]


_ONNX_DIR: tempfile.TemporaryDirectory | None = None


def _onnx_file(model: torch.nn.Module, order: str, shape: tuple) -> Path:
    """The BatchNorm-folded ``model`` exported to ONNX in a temporary folder (removed at exit), once
    per order and input size: every network of one order has the same (seed-0) weights."""
    global _ONNX_DIR
    from ..core.backends import prepare_fast_model
    from ..core.onnx_export import export_onnx

    if _ONNX_DIR is None:
        _ONNX_DIR = tempfile.TemporaryDirectory(prefix="dsc_grasp_bench_")
    path = Path(_ONNX_DIR.name) / f"dsc-{order or 'default'}-{shape[1]}x{shape[2]}x{shape[3]}.onnx"
    if not path.is_file():
        export_onnx(prepare_fast_model(model), path, input_size=shape[2])
    return path


def openvino_runner(onnx_path, shape: tuple, threads: int, precision: str = "fp32", calib=None, progress: bool = False):
    """The exported network compiled by OpenVINO for the CPU (:class:`~dsc_grasp_ros.core.openvino_backend.OpenVinoNetwork`,
    the engine's ``openvino`` backend) for inputs of ``shape``; ``precision`` fp32, bf16 or int8. ``int8``:
    NNCF post-training quantization (``nncf.quantize``) with ``calib`` (a list of input arrays), the rest
    f32; its progress goes to stderr (nothing with ``progress=False``), so that ``--json`` on stdout stays clean."""
    from ..core.openvino_backend import OpenVinoNetwork

    quant_info = {}

    def quantize(model):
        import nncf

        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr if progress else io.StringIO()):
            nncf.set_log_level(logging.WARNING)
            model = nncf.quantize(model, nncf.Dataset(list(calib)), subset_size=len(calib))
        quant_info.update(nncf=nncf.__version__, calibration_inputs=len(calib), quantize_s=round(time.perf_counter() - t0, 2))
        return model

    net = OpenVinoNetwork(onnx_path, shape, threads, "bf16" if precision == "bf16" else "fp32",
                          transform=quantize if precision == "int8" else None)
    net.info.update(quant_info, requested_precision=precision)
    return net


def calibration_inputs(n: int, shape: tuple) -> list[np.ndarray]:
    """``n`` calibration inputs for int8 quantization: synthetic 640x480 RGB-D frames (a plane at
    0.5-0.7 m with 1-4 boxes, 5 % depth holes; :func:`~dsc_grasp_ros.bench.core_latency.synthetic_frames`)
    through the detector's pre-processing (centred square ROI resized to the input size, inpainting,
    normalisation), each ``1 x 4 x H x W`` float32."""
    from ..core.preprocess import ROI, prepare
    from .core_latency import synthetic_frames

    out = []
    for rgb, depth, _ in synthetic_frames(n, seed=1):
        roi = ROI.centred_square(*depth.shape, out_size=shape[2])
        arr, _ = prepare(rgb, depth, roi, "rgbd")
        out.append(np.ascontiguousarray(arr[None], dtype=np.float32))
    return out


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
            command: str = "dsc-grasp benchmark network", calibration: int = CALIBRATION_FRAMES) -> dict:
    """Build every network of ``names``, run them interleaved (``warmup`` + ``iters`` rounds) and
    return the results document (machine, settings, per-network statistics and ratios). Raises
    :class:`~dsc_grasp_ros.bench.peers.PeerError` or ``ValueError`` (:class:`RuntimeMissing` for a
    runtime that is not installed) for a network that cannot be built, ``ValueError`` for a
    ``reference`` that is not among them. ``calibration``: inputs of ``-openvino-int8``'s quantization."""
    for n in names:  # before anything is built
        missing = missing_runtime(n)
        if missing:
            raise RuntimeMissing(missing)
    nets, infos = {}, {}
    for n in names:
        if progress:
            print(f"setting up {n} ...", file=sys.stderr, flush=True)
        fn, x, info, module = build(n, device, peers_dir, threads, calibration=calibration, progress=progress)
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
    w = max([24] + [len(n) for n in stats])
    hdr = f"  {'network':<{w}} {'input':<12} {'params':>9} {'GFLOPs':>7} {'median ms':>10} {'p95 ms':>8} {'/ ref':>7}"
    hdr += f" {'GR-ConvNet3 /':>14}" if gr else ""
    hdr += f" {'diff eager':>10}"
    lines.append(hdr)
    for n, s in stats.items():
        line = (f"  {n:<{w}} {s['input'].split('x', 1)[1]:<12} {s['params']:>9,} {s['conv_gflops']:>7.2f} {s['median_ms']:>10.2f} "
                f"{s['p95_ms']:>8.2f} {s['ratio_to_reference']:>7.2f}")
        line += f" {s['grconvnet3_over_this']:>14.2f}" if gr else ""
        line += f" {_diff(s):>10}"
        lines.append(line)
        bi = s.get("backend_info") or {}
        if bi.get("reason"):
            lines.append(f"    {n}: fell back to {s.get('backend')}: {bi['reason']}")
        elif s.get("ran_instead"):
            lines.append(f"    {n}: ran {s['ran_instead']}")
    note = f"\n  '/ ref' = median / median of {ref}"
    if gr:
        note += "; 'GR-ConvNet3 /' = GR-ConvNet3's median / this one's (> 1: faster than GR-ConvNet3)"
    note += ("\n  'diff eager' = largest absolute difference of the four output maps from our eager path on a smooth "
             "synthetic input (random weights; '-': a peer)")
    lines.append(note)
    return "\n".join(lines)


def _diff(s: dict) -> str:
    d = s.get("max_abs_diff_vs_eager")
    return "-" if d is None else ("0" if d == 0 else f"{d:.1e}")


def _label(n: str, s: dict) -> str:
    """`` (ran X)`` when what ran is not what the name asks for (also for results of older versions)."""
    if "ran_instead" in s or (s.get("kind") == "ours" and "max_abs_diff_vs_eager" in s):
        return f" (ran {s['ran_instead']})" if s.get("ran_instead") else ""
    backend = s.get("backend")
    return f" (ran {backend})" if backend and not n.endswith(f"-{backend}") else ""

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
        + (" GR-ConvNet3 median / this |" if gr else "") + " max abs diff from eager |",
        "|---|---|---|---|---|---|---|" + ("---|" if gr else "") + "---|",
    ]
    for n, s in nets.items():
        label = (f"**`{n}`**" if n == ref else f"`{n}`") + _label(n, s)  # e.g. compiled that fell back to eager
        row = (f"| {label} | {s['input'].split('x', 1)[1]} | {s['params']:,} | {s['conv_gflops']:.2f} | {s['median_ms']:.1f} | "
               f"{s['p95_ms']:.1f} | {s['ratio_to_reference']:.2f} |")
        if gr:
            row += f" {s['grconvnet3_over_this']:.2f} |"
        row += f" {_diff(s)} |"
        lines.append(row)
    lines += ["", "`dsc-<order>-plain`: our network as an nn.Module (eval); `-eager`: BatchNorm folded + merged heads "
              "(the node's eager backend); `-compiled`: that through torch.compile (the node's default on CPU). "
              "Our networks have random weights, the peers their published ones (latency does not depend on them)."]
    ran = [r for r in RUNTIMES if any((split_name(n) or ("", ""))[1] == r for n in nets)]
    if ran:
        lines.append("Other runtimes, same input and threads: " + "; ".join(f"`-{r}`: {RUNTIMES[r]}" for r in ran) + ".")
        calib = {(s.get("runtime_info") or {}).get("calibration_inputs") for s in nets.values()} - {None}
        if calib:
            lines.append(f"int8 calibration: {', '.join(map(str, sorted(calib)))} synthetic RGB-D frames through the detector's pre-processing.")
    lines.append("max abs diff from eager: largest absolute difference of the four output maps from our eager path "
                 "on a smooth synthetic input, with these random weights (the parity of trained weights is checked by the "
                 "tests and the engine, not here).")
    fell = [f"`{n}`: {s['backend_info']['reason']}" for n, s in nets.items() if (s.get("backend_info") or {}).get("reason")]
    if fell:
        lines.append("Fell back: " + "; ".join(fell))
    return "\n".join(lines) + "\n"
