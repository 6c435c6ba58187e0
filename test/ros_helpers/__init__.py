"""Process plumbing for the ROS node tests: isolated DDS domain, node and replayer processes.

Every test gets its own ROS_DOMAIN_ID (other engineers' suites run on the same machine) and the
shipped Fast DDS profile (640x480 images over shared memory).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FASTDDS_XML = ROOT / "config" / "fastdds_large_images.xml"
BIN = Path(sys.executable).parent


def ros_env(domain_id: int) -> dict:
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        FASTRTPS_DEFAULT_PROFILES_FILE=str(FASTDDS_XML),
        FASTDDS_DEFAULT_PROFILES_FILE=str(FASTDDS_XML),
        RMW_FASTRTPS_USE_QOS_FROM_XML="0",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        RCUTILS_COLORIZED_OUTPUT="0",
    )
    return env


def pick_domain_id() -> int:
    return random.Random(os.getpid() * 7919 + time.time_ns()).randint(20, 199)


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    return path


class Proc:
    """A child process with its output in a log file; stopped with SIGINT, then killed."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log_path = log
        self._log = open(log, "w")
        self.p = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True)

    def wait(self, timeout: float) -> int:
        return self.p.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        self._log.close()
        return self.p.returncode

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


def bag_node_setup(bag: Path, tmp_path: Path, **params) -> tuple[dict, Path, dict]:
    """The bundled bag's metadata, a params file for a node that reads it (sim time, the bag's base
    frame, CPU eager, diagnostics every 0.5 s, reliable QoS; ``params`` add or override) and the
    remaps of the camera topics to the bag's."""
    from dsc_grasp_ros.devtools.bag import bag_metadata

    meta = bag_metadata(bag)
    topics = meta["topics"]
    remaps = {"color/image_raw": topics["color"], "depth/image_raw": topics["depth"], "color/camera_info": topics["info"]}
    base = {"use_sim_time": True, "target_frame": meta.get("base_frame", "base_link"), "device": "cpu", "backend": "eager",
            "diagnostics_period": 0.5, "qos_reliability": "reliable"}
    return meta, write_params(tmp_path / "params.yaml", {**base, **params}), remaps


def start_node(params_file: Path, env: dict, log: Path, remaps: dict | None = None, extra: list[str] | None = None) -> Proc:
    exe = BIN / "grasp_node"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dsc_grasp_ros.ros.grasp_node"]
    cmd += ["--ros-args", "--params-file", str(params_file)]
    for a, b in (remaps or {}).items():
        cmd += ["-r", f"{a}:={b}"]
    return Proc(cmd + (extra or []), env, log)


def replay(bag: Path, env: dict, log: Path, *args: str) -> Proc:
    return Proc([sys.executable, "-m", "dsc_grasp_ros.devtools.replay", str(bag), *args], env, log)


REALSENSE_REMAPS = {
    "color/image_raw": "/camera/camera/color/image_raw",
    "depth/image_raw": "/camera/camera/aligned_depth_to_color/image_raw",
    "color/camera_info": "/camera/camera/color/camera_info",
}


def open_ros_context(monkeypatch, domain: int):
    """An initialised rclpy context on DDS ``domain`` with the shipped Fast DDS profile (also set in
    this process's environment through ``monkeypatch``); returns (context, env for child processes).
    The caller shuts it down (``rclpy.try_shutdown(context=ctx)``)."""
    import rclpy

    env = ros_env(domain)
    for k in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_FASTRTPS_USE_QOS_FROM_XML",
              "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID"):
        monkeypatch.setenv(k, env[k])
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    return ctx, env


@pytest.fixture
def ros_context(monkeypatch):
    """An rclpy context on a private DDS domain with the shipped Fast DDS profile; yields (context, env
    for child processes)."""
    import rclpy

    ctx, env = open_ros_context(monkeypatch, pick_domain_id())
    yield ctx, env
    rclpy.try_shutdown(context=ctx)
