"""config/grasp.rviz follows the node's namespace: every topic in it is relative, and the launch
file starts rviz2 in the node's namespace with the camera image remapped like the node's input."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _topics(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Topic" and isinstance(v, dict) and "Value" in v:
                yield v["Value"]
            else:
                yield from _topics(v)
    elif isinstance(node, list):
        for v in node:
            yield from _topics(v)


def test_rviz_topics_are_relative_and_name_the_node_outputs():
    cfg = yaml.safe_load((ROOT / "config" / "grasp.rviz").read_text())
    topics = list(_topics(cfg))
    assert topics and all(not t.startswith("/") for t in topics), topics
    assert {"grasp_node/grasp", "grasp_node/markers", "color/image_raw"} <= set(topics)


def test_grasp_launch_starts_rviz_in_the_node_namespace():
    tree = ast.parse((ROOT / "launch" / "grasp.launch.py").read_text())
    rviz = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "Node"
            and any(k.arg == "executable" and getattr(k.value, "value", "") == "rviz2" for k in c.keywords)]
    assert len(rviz) == 1
    kw = {k.arg: k.value for k in rviz[0].keywords}
    assert ast.unparse(kw["namespace"]) == "LaunchConfiguration('namespace')"
    assert "color/image_raw" in ast.unparse(kw["remappings"])
