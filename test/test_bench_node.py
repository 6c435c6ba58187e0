"""The benchmark's through-the-node mode (dsc_grasp_ros/devtools/bench_driver.py): the simulator
publishes colour, aligned depth, camera_info and /tf (camera in panda_link0) over real DDS, the
REAL grasp_node (a separate process, target_frame panda_link0, its tf2 path) answers, and the
benchmark executes the PoseStamped it receives. On the same scenes (2 objects x 2 trials, the CI
size), the in-process policy and the node execute the same grasp (within 2 mm and
2 deg). The node is started once per module."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest

pytest.importorskip("pybullet")
pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs not built: run ./scripts/setup_venv.sh")

from dsc_grasp_ros.bench.policies import ModelPolicy  # noqa: E402
from dsc_grasp_ros.sim import mesh_objects as mo  # noqa: E402
from ros_helpers import pick_domain_id  # noqa: E402

OBJECTS = ["banana", "potted_meat_can"]


def _objects_root():
    try:
        return mo.objects_root()
    except mo.ObjectsNotFound as e:
        pytest.skip(f"the shared object meshes are absent: {e}")


@pytest.fixture(scope="module")
def node_policy(tmp_path_factory):
    from dsc_grasp_ros.devtools.bench_driver import NodePolicy

    log = tmp_path_factory.mktemp("bench_node") / "grasp_node.log"
    pol = NodePolicy(name="dsc_rgbd@node", device="cpu", domain_id=pick_domain_id(), log_path=log, timeout=60)
    yield pol
    pol.close()


def _angle_deg(q1, q2) -> float:
    d = abs(float(np.dot(np.asarray(q1) / np.linalg.norm(q1), np.asarray(q2) / np.linalg.norm(q2))))
    return math.degrees(2 * math.acos(min(1.0, d)))


def test_in_process_and_through_the_node_execute_the_same_grasp(node_policy, tmp_path):
    """The CI-size run: 2 objects x 2 trials, oracle + the default model in-process and
    through the node; the oracle picks every scene, the two modes execute the same grasp, and the
    trial records (JSONL) have the schema of the in-process ones."""
    from dsc_grasp_ros.bench import report
    from dsc_grasp_ros.bench.policies import OraclePolicy
    from dsc_grasp_ros.bench.runner import OUTCOMES, run_benchmark

    root = _objects_root()
    policies = [OraclePolicy(), ModelPolicy(name="dsc_rgbd", device="cpu"), node_policy]
    records, doc, tiles = run_benchmark(policies, OBJECTS, 2, seed=0, objects_root=root, progress=False)
    files = report.write_outputs(tmp_path, records, doc, tiles, doc["objects"], 2)
    back = report.read_jsonl(files["trials"])
    assert len(back) == 2 * 2 * 3
    for r in back:
        assert tuple(r) == report.TRIAL_KEYS and r["outcome"] in OUTCOMES
    assert doc["policies"]["oracle"]["overall"]["successes"] == 4
    assert doc["policies_described"][2]["mode"].startswith("through grasp_node")
    log = node_policy.log_path.read_text()
    assert "grasps in frame panda_link0 via tf2" in log and "tf2: tf2_" in log  # the tf path, not static_camera_transform
    by = {(r["object"], r["trial"], r["policy"]): r for r in back}
    compared = 0
    for obj in OBJECTS:
        for trial in range(2):
            a, b = by[(obj, trial, "dsc_rgbd")], by[(obj, trial, "dsc_rgbd@node")]
            assert b["error"] is None, b["error"]
            assert (a["grasp"] is None) == (b["grasp"] is None), (a, b)
            if a["grasp"] is None:
                continue
            pa, pb = np.array(a["grasp"]["position"]), np.array(b["grasp"]["position"])
            dist = float(np.linalg.norm(pa - pb))
            ang = _angle_deg(a["grasp"]["quaternion"], b["grasp"]["quaternion"])
            print(f"{obj} #{trial}: in-process {pa.round(4).tolist()} vs node {pb.round(4).tolist()}: {dist * 1e3:.2f} mm, "
                  f"{ang:.2f} deg; outcomes {a['outcome']} / {b['outcome']}; plan {a['timings']['plan_s']} / {b['timings']['plan_s']} s")
            assert dist < 0.002 and ang < 2.0
            assert abs(a["grasp"]["width_m"] - b["grasp"]["width_m"]) < 0.002
            compared += 1
    assert compared >= 2, "the model found a grasp in fewer than 2 scenes: too little compared"


def test_a_tilted_camera_through_the_node_with_tf_gives_the_in_process_grasps(tmp_path):
    """The oblique camera (30 degrees), the depth model with approach target_down (the camera pose
    from /tf, looked up before inference) and view down (the virtual straight-down camera): the
    node publishes what the in-process policy plans, and the grasp approaches vertically."""
    from dsc_grasp_ros.bench.runner import run_benchmark
    from dsc_grasp_ros.bench.scene import SceneSettings
    from dsc_grasp_ros.core.geometry import quaternion_to_rotation
    from dsc_grasp_ros.devtools.bench_driver import NodePolicy

    root = _objects_root()
    node = NodePolicy(name="dsc_d@node", modality="d", device="cpu", domain_id=pick_domain_id(),
                      log_path=tmp_path / "node.log", timeout=60, view="down")
    try:
        ours = ModelPolicy(modality="d", name="dsc_d", device="cpu", view="down")
        records, doc, _ = run_benchmark([ours, node], ["banana"], 2, seed=0, scene_settings=SceneSettings(camera="oblique").validate(),
                                        objects_root=root, progress=False, tiles=False)
    finally:
        node.close()
    by = {(r["trial"], r["policy"]): r for r in records}
    for trial in range(2):
        a, b = by[(trial, "dsc_d")], by[(trial, "dsc_d@node")]
        assert b["error"] is None and a["grasp"] is not None and b["grasp"] is not None, (a, b)
        assert np.linalg.norm(np.subtract(a["grasp"]["position"], b["grasp"]["position"])) < 0.002
        assert _angle_deg(a["grasp"]["quaternion"], b["grasp"]["quaternion"]) < 2.0
        assert np.allclose(quaternion_to_rotation(b["grasp"]["quaternion"])[:, 2], [0.0, 0.0, -1.0], atol=1e-3)


def test_a_node_that_does_not_answer_is_a_clear_error(node_policy):
    """Frozen node process: plan() raises NodeNotAnswering within its timeout, naming the node."""
    from dsc_grasp_ros.bench.runner import observation
    from dsc_grasp_ros.bench.scene import BenchWorld
    from dsc_grasp_ros.devtools.bench_driver import NodeNotAnswering

    world = BenchWorld(objects_root=_objects_root())
    try:
        scene = world.build(OBJECTS[0], 0, 0)
        obs = observation(world, scene)
        old = node_policy.timeout
        node_policy.timeout = 2.0
        os.kill(node_policy.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(NodeNotAnswering, match="did not answer the frame"):
                node_policy.plan(obs)
        finally:
            os.kill(node_policy.proc.pid, signal.SIGCONT)
            node_policy.timeout = old
    finally:
        world.close()


def test_node_that_cannot_start_is_a_clear_error(tmp_path):
    from dsc_grasp_ros.devtools.bench_driver import NodeNotAnswering, NodePolicy

    with pytest.raises(NodeNotAnswering, match="did not configure|exited"):
        NodePolicy(model_path=str(tmp_path / "missing.pt"), domain_id=pick_domain_id(), startup_timeout=120, log_path=tmp_path / "n.log")
