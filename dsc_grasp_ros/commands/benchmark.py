"""``dsc-grasp benchmark``: latency measurements (networks, the core, the node, backends, the finger check).

The measuring code lives in :mod:`dsc_grasp_ros.bench` (networks, core_latency, backend_latency,
finger_check) and :mod:`dsc_grasp_ros.devtools.node_benchmark`; this module is their command line.
Everything heavy (torch, rclpy, PyBullet) is imported when a sub-command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from . import ROOT, add_group

#: up-sampling orders and modalities of dsc_grasp_ros.core.network (named here so that the parser
#: is built without importing torch; a test checks that they agree)
UPSAMPLE_ORDERS = ("csp_first", "eq5")
MODALITIES = ("d", "rgb", "rgbd")

RAW = argparse.RawDescriptionHelpFormatter

# --------------------------------------------------------------------------- network
NETWORK_DESCRIPTION = """\
Network latency of DSC-GraspNet and the two peers, side by side in ONE process, interleaved.

Every iteration runs each selected network once (batch 1) in a rotating order, so that a load
spike, thermal change or another process hits all of them alike; the ratios between networks
measured this way are far more stable than absolute times. Printed per network: median, p95 and
mean of the forward pass (synchronised on CUDA), parameters, convolution GFLOPs, the ratio of
every median to the reference network's (--reference) and to GR-ConvNet3's, and for ours the
largest difference of its output maps from our eager path. Besides torch, our network runs in
onnxruntime and OpenVINO (fp32, bf16, int8) and in torch.compile's bf16, for a like-for-like
comparison of runtimes and precisions on the same input and threads.
"""

NETWORK_EPILOG = """\
Networks (names for --networks; `list` prints the ones available in this checkout):
  dsc-<order>-plain          our network as a plain nn.Module, eval mode (no BatchNorm folding)
  dsc-<order>-<backend>      our network through InferenceEngine(backend=<backend>): what the
                             node runs (eager: BatchNorm folded + merged heads; compiled:
                             torch.compile of that, cold compile on first use, cache on disk)
  dsc-<order>-compiled-bf16  InferenceEngine(backend=compiled, precision=bf16): the compiled
                             network under bfloat16 autocast (fp32 where the CPU has no native
                             bfloat16: the row then says "ran fp32")
  dsc-<order>-onnxruntime    the BatchNorm-folded network exported to ONNX (a temporary file),
                             run by onnxruntime's CPUExecutionProvider, fp32
  dsc-<order>-openvino       the same ONNX file compiled by OpenVINO for the CPU, fp32
                             (INFERENCE_PRECISION_HINT f32, PERFORMANCE_HINT LATENCY)
  dsc-<order>-openvino-bf16  the same with INFERENCE_PRECISION_HINT bf16
  dsc-<order>-openvino-int8  the same after NNCF post-training quantization (nncf.quantize) to
                             int8, the rest f32; calibrated on --int8-calibration synthetic
                             640x480 RGB-D frames (a plane with boxes, depth holes) through the
                             detector's pre-processing (centred square ROI, inpainting, normalising)
  grconvnet3, ggcnn2         the peers from ../shared/peers (224x224 RGB-D, 300x300 depth),
                             their published architectures (dsc_grasp_ros/bench/peers.py)
  grconvnet3-ch32            GR-ConvNet3 at its 32-channel default width (1.90 M parameters,
                             random weights: no published ch32 weights are in ../shared/peers)
<order> is an up-sampling order of dsc_grasp_ros.core.network (csp_first = the authors' order, the
default; eq5 = literal Eq. 5). Our networks run with random weights (latency does not depend
on them); the peers with their published weights. Inputs are random, normalised-range tensors,
the same for every runtime. The onnxruntime and OpenVINO networks run on the CPU only, with the
input's shape fixed and as many intra-op threads as torch (--threads; inter-op: 1); with passive
OpenMP waits (the package default) onnxruntime's threads do not spin between runs either. Those and compiled-bf16
are run only when named. onnxruntime comes with the requirements; OpenVINO and NNCF are optional
(pip install openvino==2026.4.1 nncf==3.4.0): without them the openvino names are not listed,
and asking for one exits with status 2 and the install command.

Each of our rows has "diff eager" (JSON: max_abs_diff_vs_eager, with eager_output_scale): the
largest absolute difference of its four output maps from our eager path (BatchNorm folded, fp32)
on a smooth synthetic input, with the same random weights. It shows that a runtime computes the
same network; the parity of trained weights is checked by the tests and by the engine at load,
not here.

The ratios are taken against --reference (default: our fastest path present, dsc-csp_first-compiled,
else the first dsc-*-eager, else the first dsc-* network).

Outputs: a text table (default), --json [FILE] (the full results; '-' or no FILE = stdout only) and
--markdown [FILE] (a README-ready table with the machine, torch version, threads and date).

examples:
  dsc-grasp benchmark network --threads 2                 # default set
  dsc-grasp benchmark network --threads 2 --iters 100 --markdown bench.md --json bench.json  # README table
  dsc-grasp benchmark network --no-compile --iters 2 --warmup 0   # quick check (CI), no torch.compile
  dsc-grasp benchmark network --networks dsc-csp_first-compiled grconvnet3 --iters 100 --json
  dsc-grasp benchmark network --threads 2 --iters 40 --networks dsc-csp_first-eager dsc-csp_first-compiled \\
      dsc-csp_first-compiled-bf16 dsc-csp_first-onnxruntime dsc-csp_first-openvino dsc-csp_first-openvino-bf16 \\
      dsc-csp_first-openvino-int8 grconvnet3 --markdown runtimes.md   # runtimes and precisions
  dsc-grasp benchmark network --threads 2 --burn-cores 1  # a second process keeps one core busy
  dsc-grasp benchmark network --networks list
"""


def _register_network(sub):
    ap = sub.add_parser("network", help="forward-pass latency of our network and the peers, interleaved in one process",
                        description=NETWORK_DESCRIPTION, epilog=NETWORK_EPILOG, formatter_class=RAW)
    ap.add_argument("--networks", nargs="+", default=None, help="networks to run (default: see below; 'list' prints the available ones)")
    ap.add_argument("--iters", type=int, default=50, help="timed iterations, each running every network once (1-100000, default %(default)s)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations first (0-1000, default %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads (1-256; default: torch's choice, the core count)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    ap.add_argument("--reference", default=None, help="network the ratios are taken against (default: see below)")
    ap.add_argument("--peers-dir", default=None, help="folder with the peer weights (default: <project root>/../shared/peers)")
    ap.add_argument("--burn-cores", type=int, default=0, help="start N busy-loop processes for the run, like a robot PC's other work (0-64, default 0)")
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="leave the -compiled networks out of the default set (quick runs, CI: no torch.compile)")
    ap.add_argument("--int8-calibration", type=int, default=8, metavar="N",
                    help="synthetic RGB-D frames that calibrate the -openvino-int8 quantization (1-20, default %(default)s)")
    ap.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                    help="write the results as JSON to FILE; without FILE (or '-'): print only the JSON on stdout")
    ap.add_argument("--markdown", nargs="?", const="-", default=None, metavar="FILE",
                    help="a README-ready markdown table (machine, torch, threads, date) to FILE; without FILE (or '-'): "
                         "print it on stdout instead of the text table")
    ap.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar or set-up lines on stderr")
    ap.set_defaults(func=run_network, _parser=ap)


def run_network(args) -> int:
    ap = args._parser
    if args.json == "-" and args.markdown == "-":
        ap.error("--json and --markdown cannot both print on stdout: give one of them a FILE")
    import torch

    from ..bench import networks as nb
    from ..bench.peers import PeerError

    if args.networks == ["list"]:
        print("\n".join(nb.available_networks()))
        return 0
    for flag, lo, hi in (("iters", 1, 100000), ("warmup", 0, 1000), ("burn_cores", 0, 64), ("int8_calibration", 1, 20)):
        if not lo <= getattr(args, flag) <= hi:
            ap.error(f"--{flag.replace('_', '-')} must be in [{lo}, {hi}]")
    if args.threads is not None:
        if not 1 <= args.threads <= 256:
            ap.error("--threads must be in [1, 256]")
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: CUDA is not available")
    names = args.networks or nb.default_networks(args.compile)
    for n in names:  # a runtime that is not installed: one line with the install command
        missing = nb.missing_runtime(n)
        if missing:
            print(f"dsc-grasp benchmark network: error: {missing}", file=sys.stderr)
            return 2
    ref = args.reference or nb.default_reference(names)
    if ref not in names:
        ap.error(f"--reference {ref!r} is not among the networks run")
    command = "dsc-grasp " + " ".join(shlex.quote(a) for a in getattr(args, "argv", ["benchmark", "network"]))
    try:
        result = nb.measure(names, device, iters=args.iters, warmup=args.warmup, threads=args.threads, peers_dir=args.peers_dir,
                            reference=ref, burn_cores=args.burn_cores, progress=args.progress, command=command,
                            calibration=args.int8_calibration)
    except (PeerError, ValueError) as e:
        print(f"dsc-grasp benchmark network: error: {e}", file=sys.stderr)
        return 2
    if args.json is not None:
        text = json.dumps(result, indent=1)
        if args.json == "-":
            print(text)
            return 0
        Path(args.json).write_text(text + "\n")
    if args.markdown is not None:
        md = nb.markdown(result)
        if args.markdown == "-":
            print(md)
            return 0
        Path(args.markdown).write_text(md)
    print(nb.text_table(result))
    return 0


# --------------------------------------------------------------------------- core
CORE_DESCRIPTION = """\
Per-stage latency of the ROS-free core on 640x480 RGB-D frames: median and p95.

Stages: preprocess (ROI crop/resize, inpainting, normalisation), network (forward, synchronised
on CUDA), postprocess (smoothing, angle decoding, top-k peaks), geometry (depth, pose, width).
Reports whether the whole per-frame core is within 1.25x of the network's forward time.
"""

CORE_EPILOG = """\
The report names the model file, its up-sampling order and depth reference (``plane`` costs more
pre-processing than ``mean``), the backend that actually ran, and the 1-minute load average at
the end (timings from a loaded machine are not comparable with a quiet one). Frames are
synthetic: a plane at 0.5-0.7 m with 1-4 boxes and 5 % depth holes.

examples:
  dsc-grasp benchmark core                    # CPU and, if present, CUDA
  dsc-grasp benchmark core --device cpu --frames 200 --json
  dsc-grasp benchmark core --device cpu --model runs/v3_rgbd/model.pt --backend auto --frames 100
"""


def _register_core(sub):
    ap = sub.add_parser("core", help="per-stage latency of the ROS-free detector on 640x480 frames",
                        description=CORE_DESCRIPTION, epilog=CORE_EPILOG, formatter_class=RAW)
    ap.add_argument("--device", action="append", help="cpu, cuda, ... (repeatable; default: cpu and cuda when present)")
    ap.add_argument("--frames", type=int, default=100, help="timed frames per device (default 100, at least 100 for the report)")
    ap.add_argument("--model", help="model file (default: the shipped RGB-D model)")
    ap.add_argument("--backend", default="auto", help="auto (compiled on CPU, default), eager, compiled or openvino: see docs/results.md 'Network backend and threads'")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the package default, 2)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="CPU arithmetic of the network (default: %(default)s, the detector's default: bf16 through OpenVINO where the CPU has it)")
    ap.add_argument("--compile-cache", help="compile cache folder (default: the package's, ~/.cache/dsc_grasp_ros/torchinductor)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed frames first (default %(default)s; the compile, if any, happens at load)")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    ap.set_defaults(func=run_core, _parser=ap)


def run_core(args) -> int:
    if args.frames < 1:
        args._parser.error("--frames must be at least 1")
    if args.model and not Path(args.model).is_file():
        print(f"dsc-grasp benchmark core: error: model file {args.model} not found", file=sys.stderr)
        return 2
    import torch

    from ..bench.core_latency import measure, synthetic_frames

    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    frames = synthetic_frames(args.frames)
    results = [measure(d, frames, args.model, warmup=args.warmup, backend=args.backend, threads=args.threads,
                       compile_cache=args.compile_cache, precision=args.precision) for d in devices]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"\n{r['device']} ({r['device_name']}, {r['threads']} threads, backend {r['backend']}, {r['precision']['runs']}, {r['upsample_order']}, depth ref {r['depth_ref']}, "
              f"fp16={r['fp16']}), {r['frames']} frames after {r['warmup_frames']} warm-up, {r['input']}; load {r['load_avg_1min']:.1f}")
        print(f"  model: {r['model']}")
        if r["backend"] == "compiled":
            bi = r["backend_info"]
            print(f"  compiled: {'C++' if bi.get('cpp_wrapper') else 'Python'} wrapper, built/loaded in {bi.get('compile_s')} s, cache {bi.get('cache_dir')}")
        elif r["backend"] == "openvino":
            ov = r["backend_info"].get("openvino", {})
            print(f"  OpenVINO {ov.get('openvino')}: built in {r['backend_info'].get('compile_s')} s, inference precision {ov.get('inference_precision')}")
        elif r["backend_info"].get("reason"):
            print(f"  fell back: {r['backend_info']['reason']}")
        print(f"  {'stage':<12} {'median ms':>10} {'p95 ms':>10}")
        for k, v in r["stages"].items():
            print(f"  {k:<12} {v['median_ms']:>10.2f} {v['p95_ms']:>10.2f}")
        print(f"  core / network forward = {r['core_over_network']:.3f} (target <= 1.25: {'met' if r['target_met'] else 'NOT met'})")
    return 0


# --------------------------------------------------------------------------- node
NODE_DESCRIPTION = """\
Benchmark grasp_node end to end over DDS: bag replay at 30 Hz -> node -> this process.

The model is the params file's (the shipped RGB-D one; DSC_GRASP_MODEL=path overrides it).

Two phases, each with a fresh replay of the bag (looped), stamps rewritten to the wall clock at
publish time so that latency = receive time of ~/grasp - image stamp:

1. real time: frames at --hz (30); reports end-to-end latency median/p95, processed fps and
   dropped frames (the node keeps only the newest frame: on a CPU slower than 30 Hz it drops);
2. lockstep: the next frame is sent when the previous answer arrived (no queueing); reports
   end-to-end latency, core compute (preprocess + network + postprocess + geometry, from the
   node's /diagnostics) and the node overhead = end-to-end - core compute (median), plus the
   node's own in-process overhead (conversion, transform, message building, publishing).
"""

NODE_EPILOG = """\
Prints the results as JSON, then a two-line summary and where the node's log is. Needs ROS 2
(rclpy) and the grasp_node executable beside this Python.

examples:
  dsc-grasp benchmark node                                  # CPU or CUDA (auto), 10 s real time
  dsc-grasp benchmark node --device cpu --threads 2 --backend eager --json node_bench.json
  dsc-grasp benchmark node --device cpu --workers 2 --threads 1    # two inference threads (2-core CPU)
  dsc-grasp benchmark node --device cuda --seconds 20 --lockstep-frames 60
"""


def _register_node(sub):
    ap = sub.add_parser("node", help="grasp_node end to end over DDS (bag replay -> node -> listener): latency, fps, overhead",
                        description=NODE_DESCRIPTION, epilog=NODE_EPILOG, formatter_class=RAW)
    ap.add_argument("--bag", default=str(ROOT / "data" / "bags" / "sim_rgbd"), help="rosbag2 folder to replay (default: the bundled data/bags/sim_rgbd)")
    ap.add_argument("--device", default="auto", help="the node's device parameter: auto, cpu, cuda (default: %(default)s)")
    ap.add_argument("--hz", type=float, default=30.0, help="frame rate of the real-time phase (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the real-time phase (default: %(default)s)")
    ap.add_argument("--lockstep-frames", type=int, default=30, help="frames of the lockstep phase (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                    help="the node's threads parameter (and OMP_NUM_THREADS) (default: OMP_NUM_THREADS, else 2)")
    ap.add_argument("--workers", type=int, default=1, choices=range(1, 5), metavar="N",
                    help="the node's workers parameter: inference threads, 1-4, each with --threads torch threads (default: %(default)s)")
    ap.add_argument("--backend", default="auto", choices=["auto", "eager", "compiled", "openvino"],
                    help="the node's backend parameter; compiled/auto compile on the first start (minutes on 2 cores), then load the disk cache")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="the node's precision parameter (default: %(default)s)")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the results to FILE (JSON)")
    ap.add_argument("--startup", action="store_true",
                    help="instead: seconds from starting the node to its first ~/grasp (bag at 30 Hz) with the eager backend, "
                    "the default (auto: OpenVINO on a CPU), torch.compile on an empty compile cache, and again on the filled cache")
    ap.set_defaults(func=run_node, _parser=ap)


def run_node(args) -> int:
    if not (Path(args.bag) / "metadata.yaml").is_file():
        print(f"dsc-grasp benchmark node: error: {args.bag} is not a rosbag2 folder (no metadata.yaml)", file=sys.stderr)
        return 2
    try:
        from ..devtools import node_benchmark as nbm
    except ImportError as e:
        print(f"dsc-grasp benchmark node: error: needs ROS 2 (rclpy): {e}", file=sys.stderr)
        return 2
    if args.startup:
        result = nbm.first_grasp_times(args.bag, args.threads, args.device if args.device != "auto" else "cpu")
        result["command"] = "dsc-grasp " + " ".join(getattr(args, "argv", []) or [])
        print(json.dumps(result, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return 0
    try:
        result = nbm.run(args)
    except nbm.NodeNotReady as e:
        print(str(e), file=sys.stderr)
        print("dsc-grasp benchmark node: error: grasp_node did not come up (its log is above)", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    print(nbm.summary(result, args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"node log: {args.node_log}")
    return 0


# --------------------------------------------------------------------------- backends
BACKENDS_DESCRIPTION = """\
Network latency by backend, up-sampling order and thread count, interleaved in one process.

Every configuration is built first (compiled ones load or fill the on-disk compile cache), then the
configurations take turns frame by frame (round robin), so a load change on a shared machine hits
all of them alike. --busy N starts N extra processes that each keep one core busy (a busy loop,
like a RealSense driver / MoveIt / rviz beside the node) for the timed part, and stops them
afterwards. Prints median / p95 per configuration and ratios to the first one.
"""

BACKENDS_EPILOG = """\
Random (untrained) weights of the given orders unless --model names a model file (then that
model's order only). Input: a smooth synthetic 224 x 224 RGB-D frame (backends.example_input).

examples:
  dsc-grasp benchmark backends                       # csp_first vs eq5, eager vs compiled, 1 and 2 threads
  dsc-grasp benchmark backends --busy 1 --json       # same with one core kept busy
  dsc-grasp benchmark backends --orders csp_first --threads 2 --cpp-wrapper on off   # Inductor's C++ vs Python wrapper
  OMP_WAIT_POLICY=PASSIVE dsc-grasp benchmark backends --busy 1
"""


def _register_backends(sub):
    ap = sub.add_parser("backends", help="network latency by backend (eager/compiled), up-sampling order and threads",
                        description=BACKENDS_DESCRIPTION, epilog=BACKENDS_EPILOG, formatter_class=RAW)
    ap.add_argument("--orders", nargs="+", default=list(UPSAMPLE_ORDERS), choices=UPSAMPLE_ORDERS, help="up-sampling orders (default: both)")
    ap.add_argument("--backends", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"], help="backends (default: both)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch thread counts (default: 1 2)")
    ap.add_argument("--model", help="a model file instead of random weights")
    ap.add_argument("--modality", default="rgbd", choices=MODALITIES, help="with random weights (default: %(default)s)")
    ap.add_argument("--size", type=int, default=224, help="input side (default: %(default)s)")
    ap.add_argument("--iters", type=int, default=30, help="timed frames per configuration (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed frames per configuration (default: %(default)s)")
    ap.add_argument("--busy", type=int, default=0, help="extra processes keeping one core busy each during timing (default: 0)")
    ap.add_argument("--compile-cache", help="compile cache folder (default: ~/.cache/dsc_grasp_ros/torchinductor)")
    ap.add_argument("--cpp-wrapper", nargs="+", default=["on"], choices=["on", "off"],
                    help="compiled configurations with Inductor's C++ wrapper (on, the package default) and/or its Python one (off)")
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                    help="CPU arithmetic of the network: fp32, bf16 (autocast, where the CPU computes it natively) (default: fp32)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.set_defaults(func=run_backends, _parser=ap)


def run_backends(args) -> int:
    from ..bench.backend_latency import measure
    from ..core.model_io import ModelError

    try:
        res = measure(args.orders, args.backends, args.threads, model=args.model, modality=args.modality, size=args.size,
                      iters=args.iters, warmup=args.warmup, busy=args.busy, compile_cache=args.compile_cache,
                      cpp_wrapper=args.cpp_wrapper, progress=not args.json, precisions=args.precision)
    except (ModelError, FileNotFoundError) as e:
        print(f"dsc-grasp benchmark backends: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{res['machine']}; load {res['load_avg_1min']:.1f}; busy processes {args.busy}; {res['input']}; {args.iters} frames each, interleaved; env {res['env']}")
    print(f"{'configuration':28s} {'median ms':>10s} {'p95 ms':>10s} {'/first':>7s} {'build s':>8s}")
    for n, r in res["results"].items():
        print(f"{n:28s} {r['median_ms']:10.1f} {r['p95_ms']:10.1f} {r['ratio_to_first']:7.2f} {r['build_s']:8.1f}")
    return 0


# --------------------------------------------------------------------------- finger-check
FINGER_DESCRIPTION = """\
Cost of the finger clearance check on benchmark scenes: the detector's geometry stage (robust
depth, pose, width, and the check) with finger_check off, prefer and require.

Prints median and p95 in milliseconds per frame (5 candidates, the node's defaults otherwise).
Scenes are those of 'dsc-grasp bench' (PyBullet, the meshes in ../shared/objects).
"""

FINGER_EPILOG = """\
examples:
  OMP_NUM_THREADS=1 dsc-grasp benchmark finger-check            # 10 objects x 2 trials x 3 frames
  OMP_NUM_THREADS=1 dsc-grasp benchmark finger-check --trials 1 --json
"""


def _register_finger_check(sub):
    ap = sub.add_parser("finger-check", help="cost of the finger clearance check (off / prefer / require) on benchmark scenes",
                        description=FINGER_DESCRIPTION, epilog=FINGER_EPILOG, formatter_class=RAW)
    ap.add_argument("--objects", default=None, help="benchmark objects, comma-separated (default: the 10 of the benchmark set)")
    ap.add_argument("--trials", type=int, default=2, help="scenes per object (default: 2)")
    ap.add_argument("--repeats", type=int, default=3, help="frames timed per scene and mode (default: 3)")
    ap.add_argument("--camera", choices=("top", "oblique"), default="top", help="camera of the scenes (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.set_defaults(func=run_finger_check, _parser=ap)


def run_finger_check(args) -> int:
    from ..bench.finger_check import cost

    out = cost(args.objects, args.trials, args.repeats, args.camera)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for m, r in out.items():
            print(f"finger_check {m:8s} geometry median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms ({r['frames']} frames)")
    return 0


# --------------------------------------------------------------------------- the group
DESCRIPTION = """\
Latency measurements. Each sub-command prints a table, or JSON with --json:

  network       forward pass of our network (plain, eager, compiled; onnxruntime, OpenVINO) and
                the peers, interleaved
  core          the ROS-free detector per stage (preprocess, network, postprocess, geometry)
  node          grasp_node end to end over DDS (needs ROS 2)
  backends      eager vs compiled, up-sampling orders, thread counts, with busy cores
  finger-check  cost of the finger clearance check on benchmark scenes (needs PyBullet)

The closed-loop grasp success benchmark is 'dsc-grasp bench'.
"""

EPILOG = """\
examples:
  dsc-grasp benchmark network --threads 2 --markdown bench.md
  dsc-grasp benchmark core --device cpu --json
  dsc-grasp benchmark network --help
"""


def register(sub):
    s = add_group(sub, "benchmark", help="latency benchmarks: network, core, node, backends, finger-check",
                  description=DESCRIPTION, epilog=EPILOG)
    _register_network(s)
    _register_core(s)
    _register_node(s)
    _register_backends(s)
    _register_finger_check(s)
    _register_close_range(s)


CLOSE_RANGE_EPILOG = """\
examples:
  dsc-grasp benchmark close-range                                   # both cameras, 0.15-1.0 m, 10 objects x 2 trials
  dsc-grasp benchmark close-range --cameras d405 --distances 0.15,0.3 --objects banana --trials 1 --json out.json
"""


def _register_close_range(sub):
    from ..bench.close_range import CAMERAS, __doc__ as doc

    ap = sub.add_parser("close-range", help="grasp success with the camera 0.15-1.0 m above the object: scale ROI clamped vs padded",
                        description=doc, epilog=CLOSE_RANGE_EPILOG, formatter_class=RAW)
    ap.add_argument("--distances", default="0.15,0.2,0.3,0.5,0.7,1.0", help="camera heights above the table, m (default: %(default)s)")
    ap.add_argument("--cameras", default=",".join(CAMERAS), help=f"intrinsics, of: {', '.join(CAMERAS)} (default: %(default)s)")
    ap.add_argument("--objects", default="benchmark", help="objects as for dsc-grasp bench (default: the 10 of the benchmark set)")
    ap.add_argument("--trials", type=int, default=2, help="scenes per object and distance (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="run seed (default: %(default)s)")
    ap.add_argument("--model", default=None, help="model file (default: the shipped RGB-D model)")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the results to FILE (JSON)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.set_defaults(func=run_close_range)


def run_close_range(args) -> int:
    from ..bench.close_range import CAMERAS, format_table, sweep
    from ..sim import mesh_objects as mo

    try:
        distances = [float(x) for x in args.distances.split(",") if x.strip()]
        if not distances or not all(0.1 <= d <= 1.5 for d in distances):
            raise ValueError(f"--distances must be heights in [0.1, 1.5] m, got {args.distances!r}")
        cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
        bad = [c for c in cameras if c not in CAMERAS]
        if bad or not cameras:
            raise ValueError(f"--cameras: unknown {bad or cameras} (known: {', '.join(CAMERAS)})")
        objects = mo.resolve_names(args.objects)
    except (ValueError, mo.ObjectsNotFound, mo.UnknownObject) as e:
        print(f"dsc-grasp benchmark close-range: error: {e}", file=sys.stderr)
        return 2
    doc = sweep(distances, cameras, objects, args.trials, args.seed, progress=not args.quiet, model=args.model)
    doc["command"] = "dsc-grasp " + " ".join(getattr(args, "argv", []) or [])
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    print(format_table(doc))
    return 0
