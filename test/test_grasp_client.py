"""The worked example of docs/ros.md: a client that calls grasp_node's ~/plan_grasps over DDS and
executes the answer on the simulated Panda (pre-grasp, approach, close, lift) runs end to end."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")
pytest.importorskip("moveit_msgs", reason="moveit_msgs is not built (./scripts/setup_venv.sh builds the subset)")
pytest.importorskip("pybullet", reason="pybullet is not installed (requirements.txt)")


def test_grasp_client_executes_a_planned_grasp(capsys, tmp_path):
    from dsc_grasp_ros.devtools import grasp_client
    from dsc_grasp_ros.sim import mesh_objects as mo

    try:
        obj = mo.benchmark_names()[0]
    except mo.ObjectsNotFound as e:
        pytest.skip(f"no object meshes: {e}")
    assert grasp_client.main(["--objects", obj, "--trials", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dsc_rgbd@plan_grasps" in out
    row = next(line for line in out.splitlines() if line.startswith(obj))
    assert "/1" in row  # one trial of that object was executed and classified
    import json

    trials = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 1 and trials[0]["outcome"] != "no_grasp" and trials[0]["grasp"] is not None
