"""Closed-loop benchmark (in-process): a CI-size run, frames, failure classes, Wilson, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("pybullet")

from dsc_grasp_ros.bench import report  # noqa: E402
from dsc_grasp_ros.bench.policies import ImageGrasp, OraclePolicy, PlannedGrasp, PolicyError  # noqa: E402
from dsc_grasp_ros.sim import mesh_objects as mo  # noqa: E402


def _objects_root():
    try:
        return mo.objects_root()
    except mo.ObjectsNotFound as e:
        pytest.skip(f"the shared object meshes are absent: {e}")


# --------------------------------------------------------------------------- pure functions
def test_wilson_interval_known_values():
    # reference values (Wilson 1927 score interval, z = 1.96), e.g. Newcombe 1998 table I
    lo, hi = report.wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = report.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = report.wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == pytest.approx(1.0)
    lo, hi = report.wilson_interval(81, 263)  # Newcombe's example: 0.2553-0.3662
    assert lo == pytest.approx(0.2553, abs=1e-4) and hi == pytest.approx(0.3662, abs=1e-4)
    with pytest.raises(ValueError):
        report.wilson_interval(11, 10)


def test_summary_counts_and_table():
    recs = [{"policy": "a", "object": o, "success": s, "outcome": "success" if s else "dropped", "timings": {"plan_s": 0.1, "execute_s": 0.2}}
            for o, s in [("x", True), ("x", False), ("y", True), ("y", True)]]
    s = report.summarize(recs, ["a"])
    assert s["a"]["overall"]["successes"] == 3 and s["a"]["overall"]["trials"] == 4
    assert s["a"]["objects"]["x"]["rate"] == 0.5 and s["a"]["failures"]["dropped"] == 1
    table = report.format_table(s)
    assert "3/4 75%" in table and "dropped:1" in table


# --------------------------------------------------------------------------- the world
@pytest.fixture(scope="module")
def world():
    root = _objects_root()
    from dsc_grasp_ros.bench.scene import BenchWorld

    w = BenchWorld(objects_root=root)
    yield w
    w.close()


def test_camera_to_base_chain_hits_the_object(world):
    """Deproject the object's pixel with the observed depth and T_base_camera: the point lies on the
    object (within its extent of its centre of mass in the robot base frame)."""
    from dsc_grasp_ros.bench.runner import observation
    from dsc_grasp_ros.core.geometry import CameraIntrinsics
    from dsc_grasp_ros.sim import camera as cam

    scene = world.build("potted_meat_can", 0, seed_for_tests())
    try:
        obs = observation(world, scene)
        uv, _ = cam.project(scene.start_com[None], world.T_world_cam, world.intr.K)
        u, v = (int(round(x)) for x in uv[0])
        assert scene.segmentation[v, u] == scene.body  # the projection lands on the object
        p_cam = CameraIntrinsics.from_K(obs.K).deproject(u, v, obs.depth[v, u])
        p_base = obs.T_base_camera[:3, :3] @ p_cam + obs.T_base_camera[:3, 3]
        com_base = obs.truth["com"]
        ext = mo.mesh_properties("potted_meat_can").extent
        assert np.linalg.norm(p_base[:2] - com_base[:2]) < 0.01  # top-down: same xy
        assert 0 < p_base[2] - com_base[2] < max(ext)  # the surface above the centre of mass
        # the base frame is not the world frame: the robot stands 0.55 m away, turned
        assert abs(com_base[0] - 0.55) < 0.2 and abs(com_base[1]) < 0.2
    finally:
        world.discard(scene)


def seed_for_tests() -> int:
    return 0


def test_failure_classes_of_bad_grasps(world):
    from dsc_grasp_ros.bench.runner import Executor, observation

    ex = Executor(world)
    scene = world.build("banana", 0, 0)
    try:
        world.restore(scene)
        good = OraclePolicy().plan(observation(world, scene))
        assert ex.execute(scene, good)[0] == "success"
        # far beyond the arm's reach
        world.restore(scene)
        far = PlannedGrasp(good.position + np.array([1.5, 0.0, 0.0]), good.quaternion, 0.04)
        assert ex.execute(scene, far)[0] == "unreachable"
        # 8 cm beside the object on the empty table: nothing between the jaws
        world.restore(scene)
        beside = PlannedGrasp(good.position + np.array([0.0, 0.08, 0.0]), good.quaternion, 0.03, ImageGrasp(0, 0, 0, 10))
        outcome, info = ex.execute(scene, beside)
        assert outcome == "off_object" and info["object_between_jaws"] is False
        # executed TCP matches the planned pose pushed grasp_depth along the approach (clamped at the table)
        world.restore(scene)
        _, info = ex.execute(scene, good)
        assert info["ik_pos_error"] < 1e-3
    finally:
        world.discard(scene)


# --------------------------------------------------------------------------- CI-size run
def test_tiny_run_oracle_succeeds_and_schema(tmp_path):
    root = _objects_root()
    from dsc_grasp_ros.bench.policies import ModelPolicy
    from dsc_grasp_ros.bench.runner import OUTCOMES, run_benchmark

    policies = [OraclePolicy(), ModelPolicy()]
    objects = ["banana", "potted_meat_can"]
    records, doc, tiles = run_benchmark(policies, objects, 2, seed=0, objects_root=root, progress=False)
    files = report.write_outputs(tmp_path, records, doc, tiles, doc["objects"], 2)
    # the oracle measures execution: it must pick every one of these scenes
    assert doc["policies"]["oracle"]["overall"]["successes"] == 4
    back = report.read_jsonl(files["trials"])
    assert len(back) == 2 * 2 * 2
    for r in back:
        assert tuple(r) == report.TRIAL_KEYS
        assert r["outcome"] in OUTCOMES and r["success"] == (r["outcome"] == "success")
        assert r["policy"] in ("oracle", "dsc_rgbd") and r["object"] in objects
        if r["grasp"] is not None:
            assert len(r["grasp"]["position"]) == 3 and len(r["grasp"]["quaternion"]) == 4
            assert math.isclose(np.linalg.norm(r["grasp"]["quaternion"]), 1.0, abs_tol=1e-4)
            assert set(r["grasp"]["image"]) == {"u", "v", "angle", "width_px", "quality"}
        assert {"plan_s", "execute_s"} <= set(r["timings"])
    # every policy saw the same scenes
    seeds = {(r["object"], r["trial"], r["seed"]) for r in back}
    assert len(seeds) == 4
    summary = json.loads(open(files["summary"]).read())
    assert summary["scene"]["camera"] == "top" and summary["scene"]["vfov_deg"] == 60.0
    assert summary["policies"]["dsc_rgbd"]["overall"]["trials"] == 4
    for f in [files["chart"], *files["grids"].values()]:
        assert open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- bad input
def test_bad_input_errors(tmp_path, capsys):
    import torch

    from dsc_grasp_ros.cli import main
    from dsc_grasp_ros.commands.bench import build_policies
    from dsc_grasp_ros.core.model_io import default_model_path

    assert main(["bench", "--objects-root", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "object folder" in capsys.readouterr().err
    _objects_root()
    assert main(["bench", "--objects", "bananna", "--policies", "oracle", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown object 'bananna'" in err and "banana" in err
    with pytest.raises(PolicyError, match="modality 'rgbd'"):  # an RGB-D model where a depth-only one is asked
        build_policies(f"dsc_d={default_model_path('rgbd')}")
    with pytest.raises(PolicyError, match="unknown policy"):
        build_policies("oracle,gqcnn")
    bad = tmp_path / "not_ggcnn.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(PolicyError, match="ggcnn2"):
        build_policies(f"ggcnn2={bad}")


def test_model_files_of_the_same_name_need_labels(tmp_path, monkeypatch):
    """Two model files named alike (an old and a new dsc_graspnet_rgbd.pt) were a traceback from the
    runner ("policy names must be unique"); now a clear error, and LABEL=PATH.pt names each one."""
    import shutil

    from dsc_grasp_ros.commands.bench import build_policies
    from dsc_grasp_ros.core.model_io import default_model_path

    src = default_model_path("rgbd")
    paths = []
    for d in ("old", "new"):
        (tmp_path / d).mkdir()
        for ext in (".pt", ".json"):
            shutil.copy(src.with_suffix(ext), tmp_path / d / f"dsc_graspnet_rgbd{ext}")
        paths.append(tmp_path / d / "dsc_graspnet_rgbd.pt")
    with pytest.raises(PolicyError, match=r"2 policies are named 'dsc_graspnet_rgbd'.*label.*old="):
        build_policies(f"{paths[0]},{paths[1]}")
    pols = build_policies(f"oracle,old={paths[0]},new={paths[1]}")
    assert [p.name for p in pols] == ["oracle", "old", "new"]
    for p in pols:
        p.close()
    with pytest.raises(PolicyError, match="label 'my model'"):
        build_policies(f"my model={paths[0]}")
    # dsc_rgbd@node=PATH.pt is the node with that file (it used to be refused as modality 'rgbd@node')
    import dsc_grasp_ros.devtools.bench_driver as bd

    seen = {}

    class FakeNode:
        def __init__(self, name, model_path, modality, device, **k):
            seen.update(name=name, model_path=model_path, modality=modality)
            self.name = name

        def close(self):
            pass

    monkeypatch.setattr(bd, "NodePolicy", FakeNode)
    build_policies(f"dsc_rgbd@node={paths[1]}")
    assert seen == {"name": "dsc_rgbd@node", "model_path": str(paths[1]), "modality": "rgbd"}


class _Shifted:
    """The oracle's grasp moved 6 mm along the jaws: a second, different policy."""

    name, modality = "shifted", "truth"

    def plan(self, obs):
        g = OraclePolicy().plan(obs)
        from dsc_grasp_ros.core.geometry import quaternion_to_rotation

        g.position = g.position + quaternion_to_rotation(g.quaternion)[:, 1] * 0.006
        return g


def test_trial_outcome_does_not_depend_on_earlier_trials(world):
    """The same scene and policy give bit-identical execution whether or not another policy ran
    on the scene before (PyBullet's restoreState kept contact caches: marginal grasps flipped)."""
    from dsc_grasp_ros.bench.runner import Executor, run_trial

    ex = Executor(world)
    runs = []
    for order in ([_Shifted()], [OraclePolicy(), _Shifted()]):
        scene = world.build("scissors", 1, 0)
        try:
            runs.append([run_trial(world, ex, scene, pol) for pol in order][-1])
        finally:
            world.discard(scene)
    a, b = runs
    assert a.policy == b.policy == "shifted"
    assert (a.outcome, a.lift_m, a.executed) == (b.outcome, b.lift_m, b.executed)


def test_model_policy_executes_what_the_node_publishes(world):
    """The in-process policy runs the detector at the node's defaults (top_k 5) and executes the best
    grasp that passed its checks, as the node's ~/grasp: when the best candidate is wider than the
    gripper, the next one is executed instead of ending the trial as no_grasp (with top_k 1, as up
    to 0.0.2's change, this plan was None)."""
    from dsc_grasp_ros.bench.policies import ModelPolicy
    from dsc_grasp_ros.bench.runner import observation
    from dsc_grasp_ros.core.inference import DetectorConfig
    from dsc_grasp_ros.ros.params import PARAMS

    node_top_k = next(p.default for p in PARAMS if p.name == "top_k")
    # finger_check off: this is the max_gripper_opening rule alone (the finger check also moves grasps)
    pol = ModelPolicy(modality="rgbd", backend="eager", min_quality=0.0, finger_check="off")
    assert pol.detector.cfg.top_k == DetectorConfig().top_k == node_top_k > 1
    scene = world.build("banana", 0, 0)
    try:
        obs = observation(world, scene)
        res = pol.detector.detect(obs.rgb, obs.depth, obs.K)
        assert len(res.grasps) >= 2
        assert pol.plan(obs).image.width_px == pytest.approx(res.grasps[0].width_px)
        # a gripper that cannot open to the best grasp's width, but to a narrower candidate's
        widths = [g.width_m for g in res.grasps]
        limit = widths[0] - 1e-6
        if not any(w <= limit for w in widths[1:]):
            pytest.skip(f"no candidate narrower than the best on this scene (widths {widths}); nothing to fall back on")
        narrow = ModelPolicy(modality="rgbd", backend="eager", min_quality=0.0, max_gripper_opening=limit, finger_check="off")
        plan = narrow.plan(obs)
        assert plan is not None and plan.width_m <= limit
        assert plan.width_m == pytest.approx(next(w for w in widths[1:] if w <= limit))
    finally:
        world.discard(scene)


def test_finger_check_figure_command_draws_off_and_on_side_by_side(tmp_path):
    """dsc-grasp plot finger-check (the picture in docs/bench.md), CI size: one scene."""
    import cv2

    from dsc_grasp_ros import cli

    _objects_root()
    out = tmp_path / "fig.png"
    assert cli.main(["plot", "finger-check", "--objects", "potted_meat_can", "--trials", "0", "--crop", "120", "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    assert img.shape[:2] == (120 + 4, 2 * 120 + 4)
    # the right panel (check on) shows the finger footprints in cyan (RGB 0, 220, 255 -> BGR 255, 220, 0)
    right = img[:120, 124:]
    assert np.any(np.all(right == (255, 220, 0), axis=2))


def test_finger_check_cost_command_times_the_three_modes(capsys):
    """dsc-grasp benchmark finger-check (the cost in docs/bench.md), CI size: one scene, one frame."""
    import json

    from dsc_grasp_ros import cli

    _objects_root()
    assert cli.main(["benchmark", "finger-check", "--objects", "banana", "--trials", "1", "--repeats", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"off", "prefer", "require"}
    assert all(r["frames"] == 1 and r["median_ms"] > 0 for r in out.values())
