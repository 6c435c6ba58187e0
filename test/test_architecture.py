"""The core stays ROS-free: only dsc_grasp_ros/ros/ may import rclpy, tf2_ros or message packages."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "dsc_grasp_ros"


def ros_imports(path: Path) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for n in names:
            top = n.split(".")[0]
            if top in ("rclpy", "tf2_ros", "tf2_py", "cv_bridge", "message_filters", "launch", "launch_ros") or top.endswith("_msgs"):
                bad.append(f"{path.name}:{node.lineno} imports {n}")
    return bad


def test_core_imports_no_ros():
    core = [p for p in PKG.rglob("*.py") if "ros" not in p.relative_to(PKG).parts[:1]]
    assert len(core) > 5
    bad = [b for p in core for b in ros_imports(p)]
    assert not bad, "\n".join(bad)


def test_checker_catches_a_ros_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy\nfrom sensor_msgs.msg import Image\nimport rclpy.node\nfrom .ros import x\n")
    assert len(ros_imports(probe)) == 2
