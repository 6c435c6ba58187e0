"""grasp_node end to end over DDS (``dsc-grasp benchmark node``): bag replay at 30 Hz -> node -> this process.

Two phases, each with a fresh node and a fresh replay of the bag (looped), stamps rewritten to the
wall clock at publish time so that latency = receive time of ~/grasp - image stamp: real time
(frames at ``hz``: end-to-end latency, processed fps, dropped frames) and lockstep (the next frame
is sent when the previous answer arrived: end-to-end latency, core compute from the node's
/diagnostics and debug log, node overhead). :func:`run` returns the results document.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy

from ..ros import conversions as conv
from .listener import GraspListener

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BAG = ROOT / "data" / "bags" / "sim_rgbd"

BIN = Path(sys.executable).parent
REMAPS = ["-r", "color/image_raw:=/camera/camera/color/image_raw", "-r",
          "depth/image_raw:=/camera/camera/aligned_depth_to_color/image_raw", "-r", "color/camera_info:=/camera/camera/color/camera_info"]


def stats(a) -> dict:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "median_ms": round(float(np.median(a)) * 1e3, 2), "p95_ms": round(float(np.percentile(a, 95)) * 1e3, 2),
            "min_ms": round(float(a.min()) * 1e3, 2)}


def run_phase(lis, env, bag, args, lockstep: bool, loops: int, warmup: bool = False) -> dict:
    before = lis.latest_diagnostics()
    with lis.lock:
        lis.rx.grasp.clear(), lis.rx.candidates.clear(), lis.rx.diagnostics.clear()
    cmd = [sys.executable, "-m", "dsc_grasp_ros.devtools.replay", str(bag), "--hz", str(args.hz), "--restamp", "--loop", str(loops),
           "--tail", "1.5", "--quiet", "--wait-subscribers", "120"]
    if lockstep:
        cmd += ["--lockstep", "/grasp_node/grasp_candidates", "--lockstep-timeout", "5"]
    t0 = time.time()
    subprocess.run(cmd, env=env, check=True, cwd=str(ROOT))
    if warmup:
        time.sleep(args.diagnostics_period * 1.5)
        return {}
    time.sleep(args.diagnostics_period * 2 + 0.5)
    with lis.lock:
        grasps = [(t, conv.stamp_to_ns(m.header.stamp)) for t, m in lis.rx.grasp]
    diag = lis.latest_diagnostics()
    lat = [t - s * 1e-9 for t, s in grasps]
    recv = sorted(t for t, _ in grasps)
    span = (recv[-1] - recv[0]) if len(recv) > 1 else float("nan")
    sent = loops * args.bag_frames
    out = {
        "frames_sent": sent,
        "frames_received_by_node": int(diag.get("received", 0)) - int(before.get("received", 0)),
        # color frames published by the replayer that never reached the node (DDS transport)
        "lost_in_transport": sent - (int(diag.get("received", 0)) - int(before.get("received", 0))),
        "grasps_received": len(grasps),
        "processed_fps": round((len(recv) - 1) / span, 2) if len(recv) > 1 else 0.0,
        "dropped_stale": int(diag.get("dropped_stale", 0)) - int(before.get("dropped_stale", 0)),
        # finished after a newer frame was published (workers > 1): dropped
        "superseded": int(diag.get("superseded", 0)) - int(before.get("superseded", 0)),
        "unmatched": int(diag.get("unmatched", 0)) - int(before.get("unmatched", 0)),
        "end_to_end": stats(lat),
        "wall_s": round(time.time() - t0, 1),
    }
    core = 0.0
    for k in ("preprocess", "network", "postprocess", "geometry"):
        if f"{k}_ms_median" in diag:
            out[f"{k}_ms_median"] = float(diag[f"{k}_ms_median"])
            core += float(diag[f"{k}_ms_median"])
    out["core_compute_ms_median"] = round(core, 2)
    for k in ("stamp_to_receive", "convert", "publish", "node_overhead", "receive_to_publish"):
        if f"{k}_ms_median" in diag:
            out[f"{k}_ms"] = {"median": float(diag[f"{k}_ms_median"]), "p95": float(diag[f"{k}_ms_p95"])}
    # per frame: end-to-end minus that frame's own core compute (from the node's debug log lines)
    per_frame = parse_frame_timings(Path(args.node_log).read_text())
    own = [per_frame[s] for _, s in grasps if s in per_frame]
    if own:  # this phase's frames only (the node's /diagnostics medians include the warm-up frames)
        core = float(np.median(own)) * 1e3
        out["core_compute_ms_median"] = round(core, 2)
        out["core_compute_source"] = "this phase's frames (node debug log)"
    if lat:
        out["node_overhead_end_to_end_ms_median"] = round(out["end_to_end"]["median_ms"] - core, 2)
    over = [(t - s * 1e-9) - per_frame[s] for t, s in grasps if s in per_frame]
    if over:
        out["node_overhead_per_frame"] = stats(over)
    return out


def parse_frame_timings(log: str) -> dict[int, float]:
    """``{stamp_ns: core compute seconds}`` from grasp_node's debug lines ``frame <ns> timings_ms k=v ...``."""
    out = {}
    for line in log.splitlines():
        if "timings_ms" not in line:
            continue
        head, _, rest = line.partition(" timings_ms ")
        stamp = int(head.rsplit("frame ", 1)[1])
        kv = dict(item.split("=") for item in rest.split())
        out[stamp] = sum(float(kv[k]) for k in ("preprocess", "network", "postprocess", "geometry")) * 1e-3
    return out


class NodeNotReady(RuntimeError):
    """grasp_node did not advertise its outputs in time (the message carries its log)."""


def _private_ros(threads: int):
    """A random DDS domain on this machine with the shipped Fast DDS profile: the environment for
    the node and the replayer, and an initialised rclpy context for this process's listener."""
    domain = random.randint(20, 199)
    xml = str(ROOT / "config" / "fastdds_large_images.xml")
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", FASTRTPS_DEFAULT_PROFILES_FILE=xml,
               FASTDDS_DEFAULT_PROFILES_FILE=xml, RMW_FASTRTPS_USE_QOS_FROM_XML="0", OMP_NUM_THREADS=str(threads))
    os.environ.update({k: env[k] for k in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_FASTRTPS_USE_QOS_FROM_XML",
                                           "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    return env, ctx


def run(args) -> dict:
    """Both phases; ``args``: bag, device, hz, seconds, lockstep_frames, threads, workers (1 when
    absent), backend (the options of ``dsc-grasp benchmark node``). Returns the results document;
    the node's log stays in ``args.node_log``. Raises :class:`NodeNotReady` when the node does not
    come up."""
    args.diagnostics_period = 1.0
    args.node_log = str(Path(tempfile.mkdtemp(prefix="dsc_grasp_node_bench_")) / "node.log")  # one per run: runs may overlap
    import yaml

    info = yaml.safe_load(open(Path(args.bag) / "metadata.yaml"))["rosbag2_bagfile_information"]
    args.bag_frames = next(t["message_count"] for t in info["topics_with_message_count"] if t["topic_metadata"]["name"].endswith("color/image_raw"))

    args.workers = int(getattr(args, "workers", 1) or 1)
    env, ctx = _private_ros(args.threads)
    lis = GraspListener("/grasp_node", context=ctx, name="benchmark_listener")
    result = {"device_param": args.device, "threads": args.threads, "workers": args.workers, "backend_param": args.backend,
              "precision_param": getattr(args, "precision", "auto"), "hz": args.hz}
    node_cmd = [str(BIN / "grasp_node"), "--ros-args", "--params-file", str(ROOT / "config" / "dsc_grasp.yaml"),
                "-p", f"device:={args.device}", "-p", f"threads:={args.threads}", "-p", f"workers:={args.workers}",
                "-p", f"backend:={args.backend}", "-p", f"precision:={getattr(args, 'precision', 'auto')}", "-p", "min_quality:=0.0", "-p", f"diagnostics_period:={args.diagnostics_period}", *REMAPS,
                "--log-level", "grasp_node:=debug"]
    loops = max(1, int(round(args.seconds * args.hz / args.bag_frames)))
    phases = (("realtime", False, loops), ("lockstep", True, max(1, args.lockstep_frames // args.bag_frames)))
    node_log = ""
    try:
        for name, lockstep, n_loops in phases:  # a fresh node per phase: its statistics are the phase's own
            with open(args.node_log, "w") as log:
                node = subprocess.Popen(node_cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    if not lis.publishers_ready(600 if args.backend != "eager" else 120):  # a cold compile takes minutes
                        raise NodeNotReady(open(args.node_log).read())
                    run_phase(lis, env, args.bag, args, lockstep=True, loops=1, warmup=True)  # first frames, discovery
                    result[f"{name}_backend_state"] = wait_backend_settled(lis, 600 if args.backend != "eager" else 10)
                    result[f"{name}_backend"] = lis.latest_diagnostics().get("backend", "")
                    result[name] = run_phase(lis, env, args.bag, args, lockstep=lockstep, loops=n_loops)
                finally:
                    node.send_signal(signal.SIGINT)
                    try:
                        node.wait(10)
                    except subprocess.TimeoutExpired:
                        node.kill()
            node_log += open(args.node_log).read()
            time.sleep(1.0)  # the old node's publishers are gone before the next one starts
    finally:
        lis.close()
        rclpy.try_shutdown(context=ctx)
    dev = next((line.split(" on ")[1].split(" in ")[0] for line in node_log.splitlines() if "loaded" in line and " on " in line), "?")
    # the load line names the backend the node started with; with a background compile the
    # compiled network takes over later: say what ran while the frames were timed
    ran = result.get("realtime_backend") or result.get("realtime_backend_state")
    if ran:
        dev = re.sub(r"\(\w+ backend", f"({ran} backend", dev)
    result["device"] = dev
    return result


def wait_backend_settled(lis, timeout: float) -> str:
    """Wait until the node's /diagnostics say the network backend is settled (``backend_state``
    ``compiled``, ``fallback`` or ``eager``: not ``compiling``), so that a timed phase measures the
    steady state and not the eager frames of a background compile. Returns the last state seen
    (``compiling`` when the timeout ran out, ``""`` without diagnostics)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = lis.latest_diagnostics().get("backend_state", "")
        if state in ("compiled", "fallback", "eager"):
            return state
        time.sleep(0.25)
    return state


def summary(result: dict, args) -> str:
    """The two summary lines printed after the JSON."""
    dev = result["device"]
    rt, ls = result["realtime"], result["lockstep"]
    workers = int(getattr(args, "workers", 1) or 1)
    return (f"\n[{dev}, {args.threads} threads, {workers} worker{'s' if workers > 1 else ''}] real time {args.hz:.0f} Hz: end-to-end median "
            f"{rt['end_to_end'].get('median_ms')} ms, p95 {rt['end_to_end'].get('p95_ms')} ms, {rt['processed_fps']} fps processed, "
            f"{rt['dropped_stale']} of {rt['frames_sent']} frames dropped (stale), {rt.get('superseded', 0)} superseded, "
            f"{rt['lost_in_transport']} lost in transport\n"
            f"[{dev}] lockstep: end-to-end median {ls['end_to_end'].get('median_ms')} ms, core compute {ls['core_compute_ms_median']} ms, "
            f"node overhead (e2e - core) {ls.get('node_overhead_end_to_end_ms_median')} ms; per frame: median "
            f"{ls.get('node_overhead_per_frame', {}).get('median_ms')} ms, p95 {ls.get('node_overhead_per_frame', {}).get('p95_ms')} ms; "
            f"in-node part median {ls.get('node_overhead_ms', {}).get('median')} ms")


#: the start-up cases of :func:`first_grasp_times`: (name, backend, compile cache)
STARTUP_CASES = (("eager", "eager", "none"), ("auto (OpenVINO on CPU)", "auto", "none"),
                 ("compiled, cold cache", "compiled", "cold"), ("compiled, warm cache", "compiled", "warm"))


def first_grasp_times(bag, threads: int = 2, device: str = "cpu", timeout: float = 600.0, cases=STARTUP_CASES) -> dict:
    """Seconds from starting ``grasp_node`` to its first ``~/grasp`` while the bag streams at 30 Hz,
    for the eager backend, the default (``auto``: OpenVINO on a CPU), torch.compile on an empty
    compile cache (a fresh install), and torch.compile again on that filled cache. With ``compile_in_background`` (the default) the
    compiled cases serve eager frames while compiling; the time the compiled network took over is
    reported too (``backend_state`` in /diagnostics)."""
    cache = Path(tempfile.mkdtemp(prefix="dsc_grasp_cold_cache_"))
    env, ctx = _private_ros(threads)
    lis = GraspListener("/grasp_node", context=ctx, name="startup_listener")
    out = {}
    try:
        for name, backend, cache_state in cases:
            node_env = dict(env)
            if cache_state != "none":
                node_env["TORCHINDUCTOR_CACHE_DIR"] = str(cache)  # cold on the first use, warm after it
            with lis.lock:
                lis.rx.grasp.clear(), lis.rx.diagnostics.clear()
            log = open(Path(cache.parent) / f"{cache.name}_{backend}_{cache_state}.log", "w")
            t0 = time.monotonic()
            node = subprocess.Popen([str(BIN / "grasp_node"), "--ros-args", "--params-file", str(ROOT / "config" / "dsc_grasp.yaml"),
                                     "-p", f"device:={device}", "-p", f"threads:={threads}", "-p", f"backend:={backend}",
                                     "-p", "min_quality:=0.0", "-p", "diagnostics_period:=0.5", *REMAPS],
                                    env=node_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            replay = subprocess.Popen([sys.executable, "-m", "dsc_grasp_ros.devtools.replay", str(bag), "--hz", "30", "--restamp",
                                       "--loop", "1000", "--quiet", "--wait-subscribers", str(timeout)], env=env, cwd=str(ROOT))
            try:
                got = lis.wait_for(lambda rx: len(rx.grasp) > 0, timeout)
                first = time.monotonic() - t0 if got else None
                swapped = None
                if got and backend != "eager":  # when the compiled network took over (or fell back)
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline:
                        state = lis.latest_diagnostics().get("backend_state", "")
                        if state in ("compiled", "fallback"):
                            swapped = (round(time.monotonic() - t0, 1), state)
                            break
                        time.sleep(0.5)
                out[name] = {"first_grasp_s": None if first is None else round(first, 1),
                             "compiled_from_s": swapped[0] if swapped else None, "final_backend_state": swapped[1] if swapped else None}
            finally:
                for p in (replay, node):
                    p.send_signal(signal.SIGINT)
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                log.close()
                time.sleep(1.0)
    finally:
        lis.close()
        rclpy.try_shutdown(context=ctx)
    return {"threads": threads, "device": device, "cases": out}
