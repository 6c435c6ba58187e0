"""``dsc-grasp benchmark node --startup`` on its smallest case: the node started with the eager
backend answers the bundled bag's stream with a first grasp, and the time is reported."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")

from ros_helpers import ROOT  # noqa: E402

BAG = ROOT / "data" / "bags" / "sim_rgbd"


def test_first_grasp_time_of_an_eager_start():
    if not (BAG / "metadata.yaml").is_file():
        pytest.skip(f"bundled bag {BAG} missing")
    from dsc_grasp_ros.devtools.node_benchmark import first_grasp_times

    doc = first_grasp_times(BAG, threads=1, device="cpu", timeout=120, cases=(("eager", "eager", "none"),))
    case = doc["cases"]["eager"]
    assert case["first_grasp_s"] is not None and 0 < case["first_grasp_s"] < 120, doc
    assert case["compiled_from_s"] is None  # nothing to swap in for eager
