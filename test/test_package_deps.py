"""package.xml against rosdep and the code.

Every dependency key must resolve with ``rosdep install --from-paths src`` on a Jazzy robot
(Ubuntu Noble): a system key from rosdistro's rosdep files or a package of the Jazzy distribution;
never a ``*-pip`` key (rosdep's pip installer is refused under PEP 668 on Noble). Every third-party
module the installed package imports must be covered by a package.xml key or be a documented
pip-only dependency (requirements.txt and the package.xml comment).
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: System keys of rosdistro rosdep/python.yaml at commit 000730dc5f916eb05b15d3f183bd1c17bf1b4722
#: (read 2026-12-02; each entry has an ubuntu apt package, no pip installer). Not there: any
#: python3-torch key (Ubuntu Noble has no python3-torch package), tifffile, onnx, rosbags, pytorch-ranger;
#: python3-onnxruntime-pip and python3-pybullet-pip exist but are pip keys.
ROSDEP_PYTHON_KEYS = {
    "python3-matplotlib", "python3-numpy", "python3-opencv", "python3-pytest", "python3-scipy", "python3-shapely",
    "python3-tqdm", "python3-yaml",
}
#: Package names of rosdistro jazzy/distribution.yaml at commit 0006cdad667d515a8328dae16964acbaf8fe1ad7
#: (read 2026-12-02: repositories ament_index, geometry2 [tf2_msgs, tf2_ros, tf2_ros_py; no Python module in
#: tf2_ros], launch [launch, launch_pytest], launch_ros; the rest are core Jazzy packages whose ros-jazzy-* wheels
#: are installed here: rclpy, rcl_interfaces [builtin_interfaces, lifecycle_msgs, rcl_interfaces, rosgraph_msgs],
#: common_interfaces). There is no package called ament_python (it is a build type, not a key).
JAZZY_PACKAGES = {
    "ament_index_python", "builtin_interfaces", "diagnostic_msgs", "geometry_msgs", "launch", "launch_pytest", "launch_ros",
    "lifecycle_msgs", "rcl_interfaces", "rclpy", "rosgraph_msgs", "sensor_msgs", "std_msgs", "tf2_msgs", "tf2_ros",
    "tf2_ros_py", "visualization_msgs",
    # moveit_msgs (repository moveit_msgs, released into Jazzy) and trajectory_msgs (common_interfaces)
    "moveit_msgs", "trajectory_msgs",
}
#: Top-level import -> the key that provides it.
IMPORT_KEYS = {
    "numpy": "python3-numpy", "cv2": "python3-opencv", "scipy": "python3-scipy", "yaml": "python3-yaml", "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib", "shapely": "python3-shapely",
    "rclpy": "rclpy", "rcl_interfaces": "rcl_interfaces", "builtin_interfaces": "builtin_interfaces",
    "lifecycle_msgs": "lifecycle_msgs", "rosgraph_msgs": "rosgraph_msgs", "sensor_msgs": "sensor_msgs",
    "geometry_msgs": "geometry_msgs", "std_msgs": "std_msgs", "visualization_msgs": "visualization_msgs",
    "diagnostic_msgs": "diagnostic_msgs", "tf2_ros": "tf2_ros_py", "tf2_msgs": "tf2_msgs", "launch": "launch",
    "launch_ros": "launch_ros", "ament_index_python": "ament_index_python",
    "moveit_msgs": "moveit_msgs", "trajectory_msgs": "trajectory_msgs",
}
#: Imports without a usable rosdep key: installed with pip (requirements.txt), a documented step.
PIP_ONLY = {"torch": "torch", "onnx": "onnx", "onnxruntime": "onnxruntime", "tifffile": "tifffile", "pytorch_ranger": "pytorch-ranger",
            "rosbags": "rosbags", "pybullet": "pybullet", "pybullet_data": "pybullet", "openvino": "openvino"}
#: Imports of optional features only (a clear message names the package when it is missing): named in
#: package.xml's comment, not in requirements.txt. nncf: ``dsc-grasp benchmark network``'s int8 row.
OPTIONAL_PIP = {"nncf": "nncf"}


def _package_xml():
    root = ET.parse(ROOT / "package.xml").getroot()
    deps = {}
    for tag in ("depend", "build_depend", "buildtool_depend", "exec_depend", "test_depend", "build_export_depend"):
        for e in root.findall(tag):
            deps[e.text.strip()] = tag
    return deps, (ROOT / "package.xml").read_text()


def _third_party_imports():
    found: dict[str, set] = {}
    files = list((ROOT / "dsc_grasp_ros").rglob("*.py")) + list((ROOT / "launch").glob("*.py"))
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top in sys.stdlib_module_names or top == "dsc_grasp_ros":
                    continue
                found.setdefault(top, set()).add(str(f.relative_to(ROOT)))
    return found


def test_every_key_resolves_on_jazzy_noble():
    deps, _ = _package_xml()
    unknown = {k: t for k, t in deps.items() if k not in ROSDEP_PYTHON_KEYS | JAZZY_PACKAGES}
    assert not unknown, f"package.xml keys that rosdep cannot resolve on Jazzy/Noble: {unknown}"
    assert not [k for k in deps if k.endswith("-pip")], "pip keys abort rosdep install on Noble (PEP 668)"


def test_camera_and_viewer_are_not_hard_dependencies():
    deps, _ = _package_xml()
    assert "realsense2_camera" not in deps and "rviz2" not in deps


def test_every_import_is_declared():
    deps, text = _package_xml()
    requirements = {re.split(r"[=<>\[ ]", line)[0].strip().lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")}
    problems = []
    for mod, where in sorted(_third_party_imports().items()):
        if mod in IMPORT_KEYS:
            if IMPORT_KEYS[mod] not in deps:
                problems.append(f"{mod} ({sorted(where)[0]}) needs <exec_depend>{IMPORT_KEYS[mod]}</exec_depend>")
        elif mod in PIP_ONLY:
            if PIP_ONLY[mod] not in requirements:
                problems.append(f"{mod} is pip-only but {PIP_ONLY[mod]} is not in requirements.txt")
            if PIP_ONLY[mod] not in text:
                problems.append(f"{mod} is pip-only but package.xml's comment does not name {PIP_ONLY[mod]}")
        elif mod in OPTIONAL_PIP:
            if OPTIONAL_PIP[mod] in requirements:
                problems.append(f"{mod} is optional but {OPTIONAL_PIP[mod]} is in requirements.txt")
            if OPTIONAL_PIP[mod] not in text:
                problems.append(f"{mod} is optional but package.xml's comment does not name {OPTIONAL_PIP[mod]}")
        else:
            problems.append(f"{mod} (imported in {sorted(where)}) is neither a known rosdep key nor a documented pip dependency")
    assert not problems, "\n".join(problems)
    for key in deps:  # and nothing declared that the code does not use (tests: pytest, launch_pytest)
        assert key in IMPORT_KEYS.values() or key in ("python3-pytest", "launch_pytest"), f"{key} is declared but not imported"
