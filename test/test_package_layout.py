"""``colcon build`` of the repository (into a temp dir) gives a ROS 2 ament_python package with the
expected installed layout, and ament_index finds it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).parent / "colcon"


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory):
    if not COLCON.exists():
        pytest.skip(f"colcon not found at {COLCON} (it is in requirements.txt: run ./scripts/setup_venv.sh)")
    tmp = tmp_path_factory.mktemp("colcon")
    r = subprocess.run(
        [str(COLCON), "--log-base", str(tmp / "log"), "build", "--base-paths", str(ROOT), "--build-base", str(tmp / "build"),
         "--install-base", str(tmp / "install"), "--event-handlers", "console_direct-"],
        capture_output=True, text=True, timeout=300, cwd=str(tmp),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "install"


def test_colcon_list_says_ament_python():
    if not COLCON.exists():
        pytest.skip(f"colcon not found at {COLCON}")
    out = subprocess.run([str(COLCON), "list", "--base-paths", str(ROOT)], capture_output=True, text=True, timeout=60).stdout
    assert "dsc_grasp_ros" in out and "(ros.ament_python)" in out, out


def test_installed_layout(colcon_install):
    pkg = colcon_install / "dsc_grasp_ros"
    share = pkg / "share" / "dsc_grasp_ros"
    for rel in ("package.xml", "launch/grasp.launch.py", "launch/realsense_grasp.launch.py", "config/dsc_grasp.yaml",
                "config/grasp.rviz", "config/fastdds_large_images.xml", "models/dsc_graspnet_rgbd.pt", "models/dsc_graspnet_rgbd.json"):
        assert (share / rel).is_file(), f"{rel} is not installed"
    assert (pkg / "share" / "ament_index" / "resource_index" / "packages" / "dsc_grasp_ros").is_file()
    exe = pkg / "lib" / "dsc_grasp_ros" / "grasp_node"
    assert exe.is_file() and os.access(exe, os.X_OK), "ros2 run dsc_grasp_ros grasp_node needs lib/dsc_grasp_ros/grasp_node"
    site = next((pkg / "lib").glob("python3*/site-packages"))
    entry_points = "".join(p.read_text() for p in site.glob("*.egg-info/entry_points.txt"))
    assert "grasp_node" in exe.read_text() and "grasp_node = dsc_grasp_ros.ros.grasp_node:main" in entry_points
    env = dict(os.environ, AMENT_PREFIX_PATH=str(pkg), PYTHONPATH=str(site))
    code = ("import dsc_grasp_ros.ros.grasp_node as g, ament_index_python.packages as a; "
            "print(g.__file__); print(a.get_package_share_directory('dsc_grasp_ros'))")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=str(colcon_install))
    assert r.returncode == 0, r.stderr
    mod_file, share_dir = r.stdout.split()
    assert Path(share_dir) == share
    assert Path(mod_file).resolve().is_relative_to(site.resolve()) or Path(mod_file).resolve().is_relative_to(ROOT), mod_file
