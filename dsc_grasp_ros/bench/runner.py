"""Closed-loop trials: scene -> observation -> policy -> executed grasp on the Panda -> outcome.

Execution of a planned grasp (TCP pose in ``panda_link0``; ``a`` = its approach axis, TCP +z):

0. **Approach**: ``vertical`` (default): the planned pose turned to approach straight down, its
   closing axis projected onto the table plane (identical to the plan for the top-down camera,
   whose optical axis is vertical); ``camera``: the planned pose as it is (approach along the
   optical axis, as the node publishes it).
1. **Grasp pose**: the planned TCP moved ``grasp_depth`` (2.5 cm) further along ``a`` (a planned
   pose lies on the observed surface, as the node publishes it), but no lower than where the
   fingertips stay ``tip_clearance`` (5 mm) above the table. Opening: the planned width + 2 x
   1 cm, at most 8 cm (``--opening full``: always 8 cm).
2. **Pre-grasp** 10 cm back along ``a``. IK (PyBullet damped least squares, refined; the pose or
   its 180-degree twin about ``a``) for both; position error > 1 cm or orientation error > 3
   degrees: *unreachable*.
3. **Teleport** (``resetJointState``) the arm from the park pose to the pre-grasp configuration,
   fingers open. If the arm or hand touches the table or the object there: *collision on descent*.
4. **Descent** (simulated, 0.5 s): joint position targets interpolated from the pre-grasp to the
   grasp configuration, force-limited motors, then 0.1 s to settle. A hand or finger touching the
   table, or the TCP stopped more than 1.5 cm short of the grasp pose: *collision on descent*.
5. **Close** (simulated): both finger motors to 0 with 40 N each, until the fingers stop (at most
   0.6 s).
6. **Lift** (simulated, 0.6 s): the TCP 20 cm straight up (world z), fingers still squeezing.
7. **Hold** 1 s. **Success**: the object's centre of mass is more than 10 cm above where it
   rested before the trial.

Failure classes, in this order: ``no_grasp`` (the policy returned none), ``unreachable``,
``collision_on_descent``, ``off_object`` (no object point lies between the jaws at the grasp pose),
``empty_or_one_finger`` (after closing, fewer than two fingers touch the object), ``dropped``
(held by both fingers, not above 10 cm after the hold).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.geometry import quaternion_to_rotation, rotation_to_quaternion
from ..core.gripper import PRESETS, Gripper, preset
from .panda import FINGER_JOINTS, GRIPPER_LINKS, MAX_OPENING, TIP_BEYOND_TCP, TCP_LINK
from . import report
from .policies import Observation, PlannedGrasp, Policy
from .report import FAILURE_CLASSES, OUTCOMES  # noqa: F401 - part of this module's interface
from .scene import BenchWorld, SceneState



#: The gripper whose execution distances the benchmark uses: the node's default preset, so that what
#: the benchmark measures is what the node publishes (core/gripper.py).
BENCH_GRIPPER = PRESETS["franka_hand"]


@dataclass
class ExecutionSettings:
    """The execution protocol (every number is in docs/bench.md). The distances default to the
    node's gripper preset (:data:`BENCH_GRIPPER`): ``grasp_depth``, ``tip_clearance``, ``pregrasp``
    (= ``approach_distance``) and ``lift`` (= ``retreat_distance``)."""

    grasp_depth: float = BENCH_GRIPPER.grasp_depth  # m beyond the planned (surface) TCP along the approach
    tip_clearance: float = BENCH_GRIPPER.tip_clearance  # fingertips stay this far above the table
    approach: str = "vertical"  # "vertical" (straight down, jaws as planned) or "camera" (the planned pose as is)
    opening: str = "predicted"  # "predicted" (+2 x margin) or "full" (8 cm)
    opening_margin: float = 0.01  # per side
    min_opening: float = 0.02
    pregrasp: float = BENCH_GRIPPER.approach_distance
    lift: float = BENCH_GRIPPER.retreat_distance
    hold_s: float = 1.0
    success_height: float = 0.10
    ik_pos_tol: float = 0.01
    ik_rot_tol_deg: float = 3.0
    descent_s: float = 0.5
    close_max_s: float = 0.6
    lift_s: float = 0.6
    blocked_tol: float = 0.015

    def as_dict(self) -> dict:
        return asdict(self)

    def gripper(self, tcp_transform=None) -> Gripper:
        """The bench gripper with these distances (and a planned pose's TCP frame)."""
        changes = dict(grasp_depth=self.grasp_depth, tip_clearance=self.tip_clearance, approach_distance=self.pregrasp,
                       retreat_distance=self.lift)
        if tcp_transform is not None:
            changes["tcp_transform"] = tuple(tcp_transform)
        return BENCH_GRIPPER.with_overrides(**changes)


@dataclass
class TrialResult:
    object: str
    trial: int
    seed: int
    policy: str
    outcome: str  # "success" or a failure class
    success: bool
    grasp: dict | None  # PlannedGrasp.as_dict() in panda_link0
    executed: dict | None = None  # the executed TCP (base frame), opening, IK errors
    lift_m: float = 0.0  # how far the object's centre of mass rose
    fingers_in_contact: int = 0
    timings: dict = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["lift_m"] = round(float(self.lift_m), 4)
        return d


class Executor:
    """Runs one planned grasp in a restored scene."""

    def __init__(self, world: BenchWorld, settings: ExecutionSettings | None = None):
        self.w = world
        self.s = settings or ExecutionSettings()
        self.dt = 1.0 / 240.0

    # ------------------------------------------------------------------ helpers
    def _steps(self, seconds: float) -> int:
        return max(1, int(round(seconds / self.dt)))

    def _touching(self, a: int, b: int, links=None) -> bool:
        p, c = self.w.p, self.w.c
        if links is None:
            return bool(p.getContactPoints(a, b, physicsClientId=c))
        return any(p.getContactPoints(a, b, l, -1, physicsClientId=c) for l in links)

    def _object_between_jaws(self, scene: SceneState, pos_w, R_w, opening: float) -> bool:
        """Is any object vertex inside the closing region (jaw width x opening x finger length)?"""
        from ..sim import mesh_objects as mo

        p, c = self.w.p, self.w.c
        T = mo.link_pose(p, c, scene.body)
        V = mo.collision_vertices(scene.object_name, self.w.objects_root) @ T[:3, :3].T + T[:3, 3]
        local = (V - pos_w) @ R_w  # TCP frame
        return bool(np.any((np.abs(local[:, 0]) <= 0.012) & (np.abs(local[:, 1]) <= opening / 2)
                           & (local[:, 2] <= TIP_BEYOND_TCP) & (local[:, 2] >= TIP_BEYOND_TCP - 0.05)))

    # ------------------------------------------------------------------ execute
    def execute(self, scene: SceneState, g: PlannedGrasp) -> tuple[str, dict]:
        w, s, p, c = self.w, self.s, self.w.p, self.w.c
        robot = w.robot
        info: dict = {}
        pos_b, quat_b = np.asarray(g.position, float), np.asarray(g.quaternion, float)
        grip = s.gripper(g.tcp_transform)
        if g.tcp_transform is not None and tuple(g.tcp_transform) != (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0):
            pos_b, quat_b = grip.from_tcp(pos_b, quat_b)  # a pose of the robot's TCP frame -> our grasp frame
        pos_w, quat_w = robot.base_pose_to_world(pos_b, quat_b)
        R = quaternion_to_rotation(quat_w)
        if s.approach == "vertical" and R[2, 2] > -0.9999:
            # straight down, jaws along the planned closing axis projected onto the table plane
            y = R[:, 1] - np.array([0.0, 0.0, R[2, 1]])
            if np.linalg.norm(y) < 1e-6:
                y = R[:, 0] - np.array([0.0, 0.0, R[2, 0]])
            y /= np.linalg.norm(y)
            z = np.array([0.0, 0.0, -1.0])
            R = np.column_stack([np.cross(y, z), y, z])
            quat_w = rotation_to_quaternion(R)
        a = R[:, 2]
        # 1. grasp pose: grasp_depth beyond the planned point, fingertips above the table (z = 0),
        # the gripper's own execution steps (what the node publishes in moveit_msgs/Grasp)
        if g.at_grasp_depth:  # the plan is the grasp pose itself (a moveit_msgs/Grasp): no depth added
            target = pos_w
        else:
            target = grip.execution(pos_w, quat_w, plane=(np.array([0.0, 0.0, 1.0]), 0.0)).grasp_position
        if s.opening == "full":
            opening = MAX_OPENING
        else:
            opening = float(np.clip(g.width_m + 2 * s.opening_margin, s.min_opening, MAX_OPENING))
        pre = target - a * (s.pregrasp if g.pregrasp_m is None else g.pregrasp_m)
        # 2. IK
        ik_pre = robot.ik(pre, quat_w)
        ik_g = robot.ik(target, ik_pre.quaternion, seed=ik_pre.q)
        info.update(target_world=[round(float(x), 5) for x in target], opening=round(opening, 5),
                    ik_pos_error=round(max(ik_pre.pos_error, ik_g.pos_error), 5),
                    ik_rot_error_deg=round(math.degrees(max(ik_pre.rot_error, ik_g.rot_error)), 3))
        T_b = robot.world_to_base(_pose(target, quaternion_to_rotation(ik_g.quaternion)))
        info["tcp_base"] = [round(float(x), 5) for x in T_b[:3, 3]]
        tol_r = math.radians(s.ik_rot_tol_deg)
        if max(ik_pre.pos_error, ik_g.pos_error) > s.ik_pos_tol or max(ik_pre.rot_error, ik_g.rot_error) > tol_r:
            return "unreachable", info
        between = self._object_between_jaws(scene, target, quaternion_to_rotation(ik_g.quaternion), opening)
        info["object_between_jaws"] = between
        # 3. teleport to the pre-grasp
        robot.set_arm(ik_pre.q, opening)
        p.performCollisionDetection(physicsClientId=c)
        if self._touching(robot.body, w.table) or self._touching(robot.body, scene.body):
            info["collision_at"] = "pregrasp"
            return "collision_on_descent", info
        # 4. descent
        n = self._steps(s.descent_s)
        table_hit = False
        for i in range(1, n + 1):
            robot.hold_arm(ik_pre.q + (ik_g.q - ik_pre.q) * (i / n))
            p.stepSimulation(physicsClientId=c)
            if i % 4 == 0 and self._touching(robot.body, w.table, GRIPPER_LINKS):
                table_hit = True
                break
        if not table_hit:
            for _ in range(self._steps(0.1)):
                p.stepSimulation(physicsClientId=c)
            table_hit = self._touching(robot.body, w.table, GRIPPER_LINKS)
        tcp, _ = robot.tcp_world()
        short = float(np.linalg.norm(tcp - target))
        info["descent_error"] = round(short, 5)
        if table_hit or short > s.blocked_tol:
            info["collision_at"] = "table" if table_hit else "blocked"
            return "collision_on_descent", info
        # 5-7. close, lift, hold
        outcome, more = self.close_lift_hold(scene, target, ik_g, between)
        info.update(more)
        return outcome, info

    def close_lift_hold(self, scene: SceneState, target, ik_g, between: bool, bodies=None) -> tuple[str, dict]:
        """Steps 5-7 with the hand at ``target`` (world), in arm configuration ``ik_g`` (an
        :class:`IKResult`): close, lift 20 cm straight up, hold. ``bodies``: the objects any of which
        counts as lifted (default: the scene's object)."""
        w, s, p, c = self.w, self.s, self.w.p, self.w.c
        robot = w.robot
        info: dict = {}
        bodies = [scene.body] if bodies is None else list(bodies)
        # resting heights, before anything is touched (the scene's object: as it settled)
        z0 = {b: float(p.getBasePositionAndOrientation(b, physicsClientId=c)[0][2]) for b in bodies}
        if bodies == [scene.body]:
            z0[scene.body] = float(scene.start_com[2])
        # 5. close
        robot.command_fingers(0.0)
        last = robot.opening()
        for i in range(1, self._steps(s.close_max_s) + 1):
            p.stepSimulation(physicsClientId=c)
            if i % 12 == 0:
                o = robot.opening()
                if abs(o - last) < 2e-4 and i >= 36:
                    break
                last = o
        fingers = max(sum(self._touching(robot.body, b, [j]) for j in FINGER_JOINTS) for b in bodies)
        info["fingers_in_contact"] = int(fingers)
        info["closed_opening"] = round(robot.opening(), 5)
        if fingers == 0 and not any(self._touching(robot.body, b) for b in bodies):
            return ("empty_or_one_finger" if between else "off_object"), info
        # 6. lift straight up
        up = target + np.array([0.0, 0.0, s.lift])
        ik_up = robot.ik(up, ik_g.quaternion, seed=ik_g.q)
        q0 = robot.arm_q()
        n = self._steps(s.lift_s)
        for i in range(1, n + 1):
            robot.hold_arm(q0 + (ik_up.q - q0) * (i / n))
            p.stepSimulation(physicsClientId=c)
        # 7. hold
        def lift():
            return max(float(p.getBasePositionAndOrientation(b, physicsClientId=c)[0][2]) - z0[b] for b in bodies)

        for i in range(1, self._steps(s.hold_s) + 1):
            p.stepSimulation(physicsClientId=c)
            if i % 24 == 0 and lift() < 0.02:
                break  # fell back to the table: no need to wait out the hold
        info["lift_m"] = lift()
        if info["lift_m"] > s.success_height:
            return "success", info
        if fingers < 2:
            return ("empty_or_one_finger" if between else "off_object"), info
        return "dropped", info


def _pose(pos, R) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = pos
    return T


def observation(world: BenchWorld, scene: SceneState) -> Observation:
    return Observation(rgb=scene.rgb, depth=scene.depth, K=world.intr.K.copy(), T_base_camera=world.T_base_cam.copy(),
                       stamp=float(scene.trial), seed=scene.seed, truth=world.truth(scene))


def run_trial(world: BenchWorld, executor: Executor, scene: SceneState, policy: Policy) -> TrialResult:
    """Restore the scene, ask the policy, execute, classify."""
    world.restore(scene)
    obs = observation(world, scene)
    t0 = time.perf_counter()
    err = None
    try:
        g = policy.plan(obs)
    except Exception as e:  # noqa: BLE001 - a perception failure is a trial without a grasp, recorded
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        g, err = None, f"{type(e).__name__}: {e}"
    t1 = time.perf_counter()
    res = TrialResult(scene.object_name, scene.trial, scene.seed, policy.name, "no_grasp", False, None, error=err)
    if g is not None:
        res.grasp = g.as_dict()
        outcome, info = executor.execute(scene, g)
        res.outcome, res.success = outcome, outcome == "success"
        res.lift_m = float(info.pop("lift_m", 0.0))
        res.fingers_in_contact = int(info.get("fingers_in_contact", 0))
        res.executed = info
    t2 = time.perf_counter()
    res.timings = {"plan_s": round(t1 - t0, 4), "execute_s": round(t2 - t1, 4)}
    if g is not None and "timings" in g.info:
        res.timings["detector"] = g.info["timings"]
    return res


# --------------------------------------------------------------------------- a whole run
def run_benchmark(
    policies: list[Policy],
    objects: list[str],
    trials: int,
    seed: int = 0,
    scene_settings=None,
    exec_settings: ExecutionSettings | None = None,
    objects_root=None,
    progress: bool = True,
    tiles: bool = True,
    on_record=None,
) -> tuple[list[dict], dict, dict]:
    """Every policy on the same scenes: ``objects`` x ``trials`` scenes, each built once.

    Returns ``(records, summary_doc, tiles)``: per-trial dicts (``report.TRIAL_KEYS``), the summary
    document (settings, per-policy results, wall time) and the picture tiles per policy.
    ``on_record(record)`` is called after each trial (e.g. to append to a JSONL file).
    """
    from tqdm import tqdm

    from .scene import BenchWorld

    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if not policies:
        raise ValueError("no policy to run")
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique, got {names}")
    t_start = time.perf_counter()
    version = _code_version()  # at the start: the code that runs (HEAD may move during a long run)
    world = BenchWorld(scene_settings, objects_root)
    ex = Executor(world, exec_settings)
    records: list[dict] = []
    tile_map: dict[str, dict] = {p.name: {} for p in policies}
    scene_info = []
    t_scenes = 0.0
    try:
        bar = tqdm(total=len(objects) * trials * len(policies), desc="bench", unit="trial", disable=not progress, dynamic_ncols=True)
        for name in objects:
            label = name if not name.endswith(".urdf") else name.rsplit("/", 1)[-1][:-5]
            for t in range(trials):
                t0 = time.perf_counter()
                scene = world.build(name, t, seed)
                t_scenes += time.perf_counter() - t0
                scene_info.append({"object": label, "trial": t, "seed": scene.seed, "drops": scene.drops, "settle_steps": scene.settle_steps,
                                   "rest_position": [round(float(x), 4) for x in scene.start_com]})
                try:
                    for pol in policies:
                        res = run_trial(world, ex, scene, pol)
                        res.object = label
                        d = res.as_dict()
                        records.append(d)
                        if tiles:
                            tile_map[pol.name][(label, t)] = report.trial_crop(scene.rgb, d, _object_pixel(world, scene))
                        if on_record is not None:
                            on_record(d)
                        bar.update(1)
                        bar.set_postfix_str(f"{label} #{t} {pol.name}: {d['outcome']}", refresh=False)
                finally:
                    world.discard(scene)
        bar.close()
    finally:
        world.close()
    wall = time.perf_counter() - t_start
    labels = [n if not n.endswith(".urdf") else n.rsplit("/", 1)[-1][:-5] for n in objects]
    doc = {
        "protocol": "closed-loop simulated Panda picking (docs/bench.md)",
        "objects": labels,
        "trials_per_object": trials,
        "seed": seed,
        "scene": world.settings.as_dict(),
        "execution": ex.s.as_dict(),
        "policies_described": [p.describe() for p in policies],
        "policies": report.summarize(records, names),
        "code_version": version,
        "wall_time_s": round(wall, 2),
        "scene_build_s": round(t_scenes, 2),
        "scenes": scene_info,
    }
    return records, doc, tile_map


def _object_pixel(world, scene):
    from ..sim import camera as cam

    uv, _ = cam.project(scene.start_com[None], world.T_world_cam, world.intr.K)
    return tuple(uv[0])


def _code_version() -> dict:
    """The git commit of the package and whether its files differ from it (best effort)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "dsc_grasp_ros", "models"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return {"commit": head or None, "modified_files": len(dirty.splitlines()) if dirty else 0}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "modified_files": None}
