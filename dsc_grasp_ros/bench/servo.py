"""Closed-loop grasping with a wrist camera: the detector as a controller's sensor.

A camera rides on the Panda hand (a RealSense D405-like view, mounted behind the fingers and
looking along the approach). Every control step renders the camera's image, runs the policy,
feeds its candidates to a :class:`~dsc_grasp_ros.core.tracking.GraspTracker`, and moves the TCP a
rate-limited step toward the tracked grasp (a small-step position servo: straight-down approach,
the closing axis turned at a limited rate, descending only while the target is inside a funnel
below the hand). At the grasp depth the gripper closes, lifts 20 cm and holds, as in the
single-shot benchmark (:meth:`~dsc_grasp_ros.bench.runner.Executor.close_lift_hold`).

Scenarios (Morrison et al., RSS 2018, GG-CNN's closed-loop protocol):

* ``static``: one object, resting;
* ``moved``: the object slides ``move_distance`` (10 cm) and turns ``move_angle_deg`` (30 degrees)
  at ``move_speed`` during the approach;
* ``clutter``: ``clutter_objects`` objects dropped together, the first one moved during the approach;
  success is any object lifted.

The arm moves kinematically between control steps (teleported to each IK solution; physics runs
for closing, lifting and holding). Time is simulated: ``rate_hz`` perception frames per second,
whatever the wall-clock speed of the policy; the wall-clock latency per frame is reported beside it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.geometry import quaternion_to_rotation, rotation_to_quaternion
from ..core.tracking import Candidate, GraspTracker, TrackerConfig
from .panda import GRIPPER_LINKS, HAND_LINK, MAX_OPENING, READY, TIP_BEYOND_TCP
from .policies import ModelPolicy, Observation, Policy, camera_grasp_to_base
from .report import wilson_interval
from .runner import ExecutionSettings, Executor
from .runner import _pose as runner_pose
from .scene import BenchWorld, SceneState

SCENARIOS = ("static", "moved", "clutter")
OUTCOMES = ("success", "no_target", "timeout", "unreachable", "collision_on_descent", "off_object", "empty_or_one_finger", "dropped")


@dataclass
class ServoSettings:
    scenario: str = "static"
    rate_hz: float = 10.0  # perception + control frames per simulated second
    max_speed: float = 0.15  # m/s of the TCP
    max_yaw_rate_deg: float = 120.0  # deg/s about the approach
    start_height: float = 0.35  # m of the TCP above the table at the start, over the workspace centre
    camera_back: float = 0.10  # m, optical centre behind the TCP along the approach
    camera_side: float = 0.05  # m, beside it along the TCP's x
    width: int = 640
    height: int = 480
    hfov_deg: float = 87.0  # a D405's colour field of view
    near_range_m: float = 0.13  # scene depth under which the tracker holds its target (the camera is too close)
    funnel: float = 1.0  # descend only while the lateral error is under funnel x the height above the goal
    close_tol: float = 0.004  # m: at the goal
    timeout_s: float = 8.0
    move_distance: float = 0.10
    move_angle_deg: float = 30.0
    move_speed: float = 0.10  # m/s
    move_start_s: float = 0.5
    clutter_objects: int = 5
    depth_noise: float = 0.002
    #: the node's ``support_plane``: ``remove`` drops every policy's grasps within ``support_margin``
    #: of the table fitted in the depth image (core.workspace, as the node does); ``off``
    support_plane: str = "off"
    support_margin: float = 0.01

    def validate(self) -> "ServoSettings":
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {SCENARIOS}, got {self.scenario!r}")
        if not 0.5 <= self.rate_hz <= 100:
            raise ValueError(f"rate_hz must be in [0.5, 100], got {self.rate_hz}")
        if self.support_plane not in ("off", "remove"):
            raise ValueError(f"support_plane must be off or remove, got {self.support_plane!r}")
        if not 2 <= self.clutter_objects <= 10:
            raise ValueError(f"clutter_objects must be in [2, 10], got {self.clutter_objects}")
        return self


@dataclass
class ServoTrial:
    object: str
    trial: int
    policy: str
    scenario: str
    outcome: str = "no_target"
    success: bool = False
    switches: int = 0
    steps: int = 0
    latency_ms: list = field(default_factory=list)
    path: list = field(default_factory=list)  # per step: [t, tcp x, y, z, target x, y, z or None, state]
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        lat = self.latency_ms
        d["latency_ms"] = {"median": float(np.median(lat)) if lat else None, "p95": float(np.percentile(lat, 95)) if lat else None}
        return d


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def down_quaternion(yaw: float) -> np.ndarray:
    """TCP pointing straight down (base -z), closing axis (+y) at ``yaw`` in the table plane."""
    y = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    return rotation_to_quaternion(np.column_stack([np.cross(y, z), y, z]))


def closing_yaw(q) -> float:
    y = quaternion_to_rotation(q)[:, 1]
    return math.atan2(y[1], y[0])


class WristCamera:
    """The hand-mounted camera: its intrinsics and its pose from the TCP's."""

    def __init__(self, s: ServoSettings):
        from ..sim import camera as cam

        f = (s.width / 2) / math.tan(math.radians(s.hfov_deg) / 2)
        self.intr = cam.Intrinsics(s.width, s.height, f, f, (s.width - 1) / 2, (s.height - 1) / 2)
        self.T_tcp_cam = np.eye(4)  # optical frame axes = TCP axes (z along the approach)
        self.T_tcp_cam[:3, 3] = [s.camera_side, 0.0, -s.camera_back]

    def pose(self, tcp_pos_w, tcp_quat_w) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = quaternion_to_rotation(tcp_quat_w)
        T[:3, 3] = tcp_pos_w
        return T @ self.T_tcp_cam


class ServoScene:
    """A scene of one or more resting objects that can be put back for every policy and moved."""

    def __init__(self, world: BenchWorld, scene: SceneState, extras: list[tuple[int, str, tuple, list]]):
        self.world, self.scene = world, scene
        self.extras = extras  # (body, name, rest pose, colour)

    @classmethod
    def build(cls, world: BenchWorld, name: str, trial: int, seed: int, s: ServoSettings, pool: list[str]) -> "ServoScene":
        from ..sim import mesh_objects as mo
        from ..sim.scene import random_color, settle

        scene = world.build(name, trial, seed)
        extras = []
        if s.scenario == "clutter":
            rng = np.random.default_rng(scene.seed + 1)
            p, c = world.p, world.c
            for k in range(s.clutter_objects - 1):
                other = pool[int(rng.integers(len(pool)))]
                colour = random_color(rng)
                xy = rng.uniform(-world.settings.workspace_half, world.settings.workspace_half, 2)
                q = rng.standard_normal(4)
                body = mo.load_mesh_object(p, c, other, [xy[0], xy[1], 0.12 + 0.06 * k], (q / np.linalg.norm(q)).tolist(),
                                           root=world.objects_root, rgba=colour)
                extras.append([body, other, None, colour])
            settle(p, c, [scene.body] + [e[0] for e in extras], max_steps=1440)
            for e in extras:
                pos, orn = p.getBasePositionAndOrientation(e[0], physicsClientId=c)
                e[2] = (tuple(pos), tuple(orn))
            pos, orn = p.getBasePositionAndOrientation(scene.body, physicsClientId=c)
            scene.rest_pose = (tuple(pos), tuple(orn), (0, 0, 0), (0, 0, 0))
            scene.start_com = np.array(pos)
        return cls(world, scene, [tuple(e) for e in extras])

    def bodies(self) -> list[int]:
        return [self.scene.body] + [e[0] for e in self.extras]

    def restore(self):
        from ..sim import mesh_objects as mo

        w, p, c = self.world, self.world.p, self.world.c
        w.restore(self.scene)
        fresh = []
        for body, name, (pos, orn), colour in self.extras:
            p.removeBody(body, physicsClientId=c)
            b = mo.load_mesh_object(p, c, name, list(pos), list(orn), root=w.objects_root, rgba=colour)
            fresh.append((b, name, (pos, orn), colour))
        self.extras = fresh

    def move(self, t: float, s: ServoSettings, direction: float):
        """Put the first object where the ``moved``/``clutter`` motion has it at time ``t``."""
        p, c = self.world.p, self.world.c
        pos0, orn0 = self.scene.rest_pose[0], self.scene.rest_pose[1]
        frac = float(np.clip((t - s.move_start_s) * s.move_speed / s.move_distance, 0.0, 1.0))
        d = np.array([math.cos(direction), math.sin(direction), 0.0]) * s.move_distance * frac
        R = _rz(math.radians(s.move_angle_deg) * frac) @ quaternion_to_rotation(orn0)
        p.resetBasePositionAndOrientation(self.scene.body, (np.asarray(pos0) + d).tolist(), rotation_to_quaternion(R).tolist(),
                                          physicsClientId=c)
        p.resetBaseVelocity(self.scene.body, [0, 0, 0], [0, 0, 0], physicsClientId=c)

    def truth(self) -> dict:
        """The first object's ground truth in the base frame, where it is now (for the oracle)."""
        from ..sim import mesh_objects as mo

        w = self.world
        T_link = mo.link_pose(w.p, w.c, self.scene.body)
        T_base_link = w.robot.world_to_base(T_link)
        com = np.asarray(w.p.getBasePositionAndOrientation(self.scene.body, physicsClientId=w.c)[0])
        T = np.eye(4)
        T[:3, 3] = com
        V = mo.collision_vertices(self.scene.object_name, w.objects_root)
        return {"object": self.scene.object_name, "vertices": V @ T_base_link[:3, :3].T + T_base_link[:3, 3],
                "com": w.robot.world_to_base(T)[:3, 3]}


def off_support_plane(cands: list[Candidate], obs: Observation, margin: float) -> list[Candidate]:
    """The candidates whose centre is more than ``margin`` above the support plane fitted in the
    frame's depth (:func:`~dsc_grasp_ros.core.workspace.camera_support_plane`, the node's
    ``support_plane: remove``); all of them when no plane can be fitted."""
    from ..core.geometry import CameraIntrinsics
    from ..core.workspace import GraspFilter, camera_support_plane

    if not cands:
        return cands
    plane = camera_support_plane(obs.depth, CameraIntrinsics.from_K(obs.K))
    if plane is None:
        return cands
    T_cb = np.linalg.inv(np.asarray(obs.T_base_camera, dtype=np.float64))
    base = np.array([c.position for c in cands])
    cam = base @ T_cb[:3, :3].T + T_cb[:3, 3]
    keep = GraspFilter(support_margin=margin).apply(base, cam, plane_cam=plane).keep
    return [cands[i] for i in keep]


def candidates(policy: Policy, obs: Observation) -> list[Candidate]:
    """Every grasp the policy offers on this frame, in the base frame, best first: our models give
    their ``top_k`` (what the node publishes on ``~/grasps``), the others their one best grasp."""
    if isinstance(policy, ModelPolicy):
        from .policies import approach_in_camera

        res = policy.detector.detect(None if policy.modality == "d" else obs.rgb, obs.depth, obs.K,
                                     approach=approach_in_camera(obs, policy.approach))
        out = []
        for i, g in enumerate(res.grasps):
            pos, quat = camera_grasp_to_base(g.position, g.orientation, obs.T_base_camera)
            out.append(Candidate(pos, quat, float(g.width_m), float(g.quality), i))
        return out
    g = policy.plan(obs)
    return [] if g is None else [Candidate(np.asarray(g.position), np.asarray(g.quaternion), float(g.width_m),
                                           float(g.image.quality if g.image else 1.0), 0)]


def tracker_settings(tracking: bool, s: ServoSettings) -> TrackerConfig:
    """The tracker a policy runs with: ours (hysteresis and smoothing), or ``tracking`` off = the
    best grasp of every frame (switch at once, no smoothing), with the same near-range hold."""
    if tracking:
        return TrackerConfig(near_range_m=s.near_range_m, hold_s=1.0)
    return TrackerConfig(switch_margin=0.0, switch_frames=1, smoothing=0.0, near_range_m=s.near_range_m, hold_s=1.0)


class ServoRunner:
    def __init__(self, world: BenchWorld, settings: ServoSettings | None = None, exec_settings: ExecutionSettings | None = None):
        self.w = world
        self.s = (settings or ServoSettings()).validate()
        self.ex = Executor(world, exec_settings)
        self.cam = WristCamera(self.s)
        self.table_z_base = float(world.robot.world_to_base(np.eye(4))[2, 3])

    def _render(self, T_world_cam, rng) -> tuple[np.ndarray, np.ndarray]:
        from ..sim.scene import render

        rgb, depth, seg = render(self.w.p, self.w.c, T_world_cam, self.cam.intr, self.w.scene_lighting)
        # the robot's own fingers in view carry no depth: a self filter, as a real arm runs one
        # (robot_self_filter) or crops the fingers out of a wrist camera's image
        depth = np.where(seg == self.w.robot.body, np.float32(0.0), depth)
        if self.s.depth_noise > 0:
            depth = np.where(depth > 0, depth + rng.normal(0.0, self.s.depth_noise, depth.shape).astype(np.float32), 0.0)
        return rgb, depth.astype(np.float32)

    def _start(self) -> np.ndarray:
        robot = self.w.robot
        pos_w, quat_w = robot.base_pose_to_world(self._base_start(), down_quaternion(0.0))
        ik = robot._ik_once(pos_w, quat_w, READY)
        robot.set_arm(ik.q, MAX_OPENING)
        return ik.q

    def _base_start(self) -> np.ndarray:
        centre = self.w.robot.world_to_base(np.eye(4))[:3, 3]
        return centre + np.array([0.0, 0.0, self.s.start_height])

    def observe(self, rng, truth=None) -> tuple[Observation, float]:
        robot = self.w.robot
        tcp_w, quat_w = robot.tcp_world()
        T_wc = self.cam.pose(tcp_w, quat_w)
        rgb, depth = self._render(T_wc, rng)
        obs = Observation(rgb=rgb, depth=depth, K=self.cam.intr.K.copy(), T_base_camera=robot.world_to_base(T_wc), truth=truth)
        h, w = depth.shape
        centre = depth[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
        valid = centre[centre > 0]
        return obs, (float(np.median(valid)) if valid.size else 0.0)

    def trial(self, sc: ServoScene, policy: Policy, tracking: bool, trial: int) -> ServoTrial:
        s, robot, p, c = self.s, self.w.robot, self.w.p, self.w.c
        sc.restore()
        rng = np.random.default_rng(sc.scene.seed + 7)
        direction = float(rng.uniform(0, 2 * math.pi))
        # a policy that tracks by itself (the real node: ~/grasp is its target) is passed through
        own = bool(getattr(policy, "tracks_itself", False))
        if own:
            policy.reset_tracking()  # a new scene: the node's target of the last trial is not this one
        tracker = GraspTracker(tracker_settings(tracking and not own, s))
        q = self._start()
        dt = 1.0 / s.rate_hz
        res = ServoTrial(sc.scene.object_name, trial, policy.name + ("" if tracking or own else " (no tracking)"), s.scenario)
        opening = MAX_OPENING
        for k in range(int(s.timeout_s * s.rate_hz)):
            t = k * dt
            if s.scenario in ("moved", "clutter"):
                sc.move(t, s, direction)
            obs, scene_z = self.observe(rng, sc.truth() if policy.modality == "truth" else None)
            t0 = time.perf_counter()
            try:
                cands = candidates(policy, obs)
                if s.support_plane == "remove":
                    cands = off_support_plane(cands, obs, s.support_margin)
            except Exception as e:  # noqa: BLE001 - a perception failure is a frame without grasps, recorded
                cands = []
                res.info.setdefault("errors", []).append(f"{type(e).__name__}: {e}"[:200])
            tcp_w, quat_w = robot.tcp_world()
            T_b = robot.world_to_base(_pose(tcp_w, quat_w))
            target = tracker.update(cands, t, reference=T_b[:3, :3], scene_depth=scene_z if scene_z > 0 else None)
            res.latency_ms.append((time.perf_counter() - t0) * 1e3)
            res.steps = k + 1
            res.path.append([round(t, 3), *np.round(T_b[:3, 3], 4).tolist(),
                             *(np.round(target.position, 4).tolist() if target is not None else [None] * 3),
                             target.state if target is not None else "lost"])
            if target is None:
                continue
            goal = target.position + np.array([0.0, 0.0, -self.ex.s.grasp_depth])
            goal[2] = max(goal[2], self.table_z_base + self.ex.s.tip_clearance + TIP_BEYOND_TCP)
            opening = float(np.clip(target.width + 2 * self.ex.s.opening_margin, self.ex.s.min_opening, MAX_OPENING))
            cur = T_b[:3, 3]
            lateral = float(np.linalg.norm(goal[:2] - cur[:2]))
            want = goal.copy()
            if lateral > s.funnel * max(cur[2] - goal[2], 0.0) + s.close_tol:
                want[2] = cur[2]  # outside the funnel: line up first
            step = want - cur
            n = float(np.linalg.norm(step))
            if n > s.max_speed * dt:
                step *= s.max_speed * dt / n
            yaw_cur, yaw_goal = closing_yaw(rotation_to_quaternion(T_b[:3, :3])), closing_yaw(target.orientation)
            dyaw = (yaw_goal - yaw_cur + math.pi) % (2 * math.pi) - math.pi
            if abs(dyaw) > math.pi / 2:  # the same grasp with the jaws swapped: never turn the wrist by more than 90 degrees
                dyaw -= math.copysign(math.pi, dyaw)
            dyaw = float(np.clip(dyaw, -math.radians(s.max_yaw_rate_deg) * dt, math.radians(s.max_yaw_rate_deg) * dt))
            new_b = cur + step
            new_q_b = down_quaternion(yaw_cur + dyaw)
            pos_w, q_w = robot.base_pose_to_world(new_b, new_q_b)
            ik = robot._ik_once(pos_w, q_w, q)
            if ik.pos_error > self.ex.s.ik_pos_tol or ik.rot_error > math.radians(self.ex.s.ik_rot_tol_deg):
                res.outcome = "unreachable"
                break
            q = ik.q
            robot.set_arm(q, opening)
            p.performCollisionDetection(physicsClientId=c)
            if self.ex._touching(robot.body, self.w.table, GRIPPER_LINKS) or self.ex._touching(robot.body, sc.scene.body, (HAND_LINK,)):
                res.outcome = "collision_on_descent"
                break
            if float(np.linalg.norm(goal - new_b)) < s.close_tol and abs(dyaw) < math.radians(2.0):
                target_w, _ = robot.base_pose_to_world(new_b, new_q_b)
                between = self.ex._object_between_jaws(sc.scene, target_w, quaternion_to_rotation(q_w), opening)
                outcome, info = self.ex.close_lift_hold(sc.scene, target_w, ik, between, bodies=sc.bodies())
                res.outcome, res.info = outcome, {**res.info, **info, "time_s": round(t, 2)}
                break
        else:
            res.outcome = "timeout" if tracker.target is not None or any(r[4] is not None for r in res.path) else "no_target"
        res.success = res.outcome == "success"
        res.switches = tracker.switches
        return res

    def jitter(self, sc: ServoScene, policy: Policy, tracking: bool, frames: int = 20) -> dict:
        """Frame-to-frame change of the published target with the camera held still over a static
        scene (fresh depth noise per frame): median mm and degrees."""
        sc.restore()
        rng = np.random.default_rng(sc.scene.seed + 11)
        tracker = GraspTracker(tracker_settings(tracking, self.s))
        self._start()
        # halfway down: the object fills a typical part of the view
        robot = self.w.robot
        pos_w, quat_w = robot.tcp_world()
        prev, dpos, dang = None, [], []
        for k in range(frames):
            obs, z = self.observe(rng, sc.truth() if policy.modality == "truth" else None)
            T_b = robot.world_to_base(_pose(pos_w, quat_w))
            t = tracker.update(candidates(policy, obs), k / self.s.rate_hz, reference=T_b[:3, :3])
            if t is None:
                prev = None
                continue
            cur = (t.position.copy(), closing_yaw(t.orientation), t.id)
            if prev is not None:
                dpos.append(float(np.linalg.norm(cur[0] - prev[0])) * 1e3)
                d = (cur[1] - prev[1] + math.pi / 2) % math.pi - math.pi / 2
                dang.append(abs(math.degrees(d)))
            prev = cur
        return {"frames": frames, "pairs": len(dpos), "position_mm": float(np.median(dpos)) if dpos else None,
                "angle_deg": float(np.median(dang)) if dang else None, "switches": tracker.switches}


def _pose(pos, quat) -> np.ndarray:
    return runner_pose(pos, quaternion_to_rotation(quat))


def summarize(trials: list[ServoTrial], jitters: dict | None = None) -> dict:
    out = {}
    for name in dict.fromkeys(t.policy for t in trials):
        ts = [t for t in trials if t.policy == name]
        k = sum(t.success for t in ts)
        lo, hi = wilson_interval(k, len(ts))
        lat = [x for t in ts for x in t.latency_ms]
        out[name] = {"trials": len(ts), "success": k, "rate": k / len(ts), "wilson95": [lo, hi],
                     "switches_per_trial": float(np.mean([t.switches for t in ts])),
                     "latency_ms": {"median": float(np.median(lat)), "p95": float(np.percentile(lat, 95))} if lat else None,
                     "perception_hz": 1000.0 / float(np.median(lat)) if lat else None,
                     "outcomes": {o: sum(t.outcome == o for t in ts) for o in OUTCOMES if any(t.outcome == o for t in ts)}}
        if jitters and name in jitters:
            out[name]["jitter"] = jitters[name]
    return out


def run_servo(policies: list[tuple[Policy, bool]], objects: list[str], trials: int, seed: int = 0,
              settings: ServoSettings | None = None, objects_root=None, pool: list[str] | None = None, progress: bool = True,
              jitter_frames: int = 0, on_trial=None) -> tuple[list[ServoTrial], dict]:
    """Every (policy, tracking) pair on the same scenes: ``objects`` x ``trials``."""
    from tqdm import tqdm

    from .scene import SceneSettings

    s = (settings or ServoSettings()).validate()
    world = BenchWorld(SceneSettings(depth_noise=0.0), objects_root=objects_root)
    world.scene_lighting = None
    runner = ServoRunner(world, s)
    records: list[ServoTrial] = []
    jit: dict = {}
    bar = tqdm(total=len(objects) * trials * len(policies), desc=f"servo {s.scenario}", unit="trial", disable=not progress)
    try:
        for name in objects:
            for tr in range(trials):
                sc = ServoScene.build(world, name, tr, seed, s, pool or objects)
                from .scene import fixed_lighting

                world.scene_lighting = fixed_lighting()
                for pol, tracking in policies:
                    r = runner.trial(sc, pol, tracking, tr)
                    records.append(r)
                    if on_trial:
                        on_trial(r)
                    bar.update(1)
                    if jitter_frames and tr == 0:
                        jit.setdefault(r.policy, []).append(runner.jitter(sc, pol, tracking, jitter_frames))
                for e in sc.extras:
                    world.p.removeBody(e[0], physicsClientId=world.c)
                world.discard(sc.scene)
    finally:
        bar.close()
        world.close()
    jitters = {k: {"position_mm": _med([j["position_mm"] for j in v]), "angle_deg": _med([j["angle_deg"] for j in v]),
                   "scenes": len(v)} for k, v in jit.items()}
    return records, summarize(records, jitters)


def _med(xs):
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None
