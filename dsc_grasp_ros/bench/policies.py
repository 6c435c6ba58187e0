"""Grasp policies of the closed-loop benchmark: observation in, one TCP pose in the robot base out.

The interface every policy implements (``Policy.plan``) sees what a robot's perception node sees:
one aligned RGB-D frame, its intrinsics and the camera optical frame's pose in the robot base
``panda_link0`` (what tf2 would return at the image stamp). It returns the grasp to execute as a
TCP pose in ``panda_link0`` (our TCP convention, :mod:`dsc_grasp_ros.core.conventions`: ``+z`` approach,
jaws closing along ``±y``) with the gripper opening, plus the image grasp for drawing.

* :class:`ModelPolicy`: a shipped (or any) DSC-GraspNet model through the core
  :class:`~dsc_grasp_ros.core.inference.GraspDetector`; the camera -> base transform is applied with the
  same core call the ROS node uses (:meth:`dsc_grasp_ros.core.geometry.Transform.apply_pose`).
* :class:`PeerPolicy`: a peer network (GR-ConvNet, GG-CNN; ``bench/peers.py``) returning image
  grasps; turned into a TCP pose by the core :func:`~dsc_grasp_ros.core.geometry.grasp_pose` and the
  same transform.
* :class:`OraclePolicy`: knows the object (``Observation.truth``): centre of mass, jaws across the
  narrowest side of the object as seen from the camera. It measures the execution alone.

No ROS imports here.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.clearance import fit_fingers, fitted_pose
from ..core.conventions import PREDICTED_JAW_RATIO, wrap_angle
from ..core.geometry import CameraIntrinsics, GeometryError, Transform, grasp_pose, rotation_to_quaternion

__all__ = [
    "BASE_FRAME",
    "CAMERA_FRAME",
    "Observation",
    "ImageGrasp",
    "PlannedGrasp",
    "Policy",
    "PolicyError",
    "ModelPolicy",
    "PeerPolicy",
    "OraclePolicy",
    "camera_grasp_to_base",
]

#: The robot base frame every planned grasp is expressed in.
BASE_FRAME = "panda_link0"
#: The camera optical frame of the benchmark's camera (REP 103: x right, y down, z forward).
CAMERA_FRAME = "bench_camera_color_optical_frame"


class PolicyError(ValueError):
    """A policy that cannot be built as asked (wrong modality, bad weights file, ...)."""


@dataclass
class Observation:
    """One aligned RGB-D frame as a perception node receives it.

    ``T_base_camera``: 4x4 pose of the camera optical frame in ``panda_link0`` (the transform tf2
    returns for ``lookup_transform("panda_link0", camera_frame, stamp)``). ``truth`` holds the
    simulator's ground truth (object name, body vertices in the base frame, centre of mass) and is
    read by the oracle only; perception policies must not look at it.
    """

    rgb: np.ndarray  # HxWx3 uint8, RGB
    depth: np.ndarray  # HxW float32, metres along the optical axis (0 = no depth)
    K: np.ndarray  # 3x3 float64
    T_base_camera: np.ndarray  # 4x4 float64
    stamp: float = 0.0  # seconds (simulated time of the image)
    seed: int = 0
    base_frame: str = BASE_FRAME
    camera_frame: str = CAMERA_FRAME
    truth: dict | None = field(default=None, repr=False)


@dataclass
class ImageGrasp:
    """A grasp in full-image pixels, our convention (angle of the closing axis, CCW as seen)."""

    u: float
    v: float
    angle: float
    width_px: float
    quality: float = 1.0

    def as_dict(self) -> dict:
        return {k: round(float(v), 5) for k, v in asdict(self).items()}


@dataclass
class PlannedGrasp:
    """The grasp to execute: TCP pose in ``panda_link0`` and opening; the image grasp for drawing."""

    position: np.ndarray  # (3,) metres, TCP in panda_link0
    quaternion: np.ndarray  # (4,) x, y, z, w
    width_m: float  # predicted opening (m)
    image: ImageGrasp | None = None
    info: dict = field(default_factory=dict)  # policy-specific extras (timings, depth, ...)
    #: The frame the pose is of: None = our grasp frame (the Panda's TCP); else the robot TCP frame's
    #: pose in the grasp frame, [x, y, z, qx, qy, qz, qw] (``Gripper.tcp_transform``): the executor
    #: maps the pose back with its inverse.
    tcp_transform: tuple | None = None
    #: True: the pose is already the grasp pose (past the surface, as a moveit_msgs/Grasp carries it),
    #: not a surface pose the executor moves ``grasp_depth`` further.
    at_grasp_depth: bool = False
    #: Pre-grasp distance (m) along the approach the plan asks for; None = the executor's.
    pregrasp_m: float | None = None

    def as_dict(self) -> dict:
        return {
            "position": [round(float(a), 6) for a in self.position],
            "quaternion": [round(float(a), 6) for a in self.quaternion],
            "width_m": round(float(self.width_m), 6),
            "image": None if self.image is None else self.image.as_dict(),
        }


class Policy:
    """Interface: ``plan(obs) -> PlannedGrasp | None`` (None: the policy found no grasp)."""

    name: str = "policy"
    #: What the policy reads: "rgbd", "d", "rgb" (+ depth for the metric pose) or "truth".
    modality: str = "rgbd"

    def plan(self, obs: Observation) -> PlannedGrasp | None:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict:
        """What the report records about the policy."""
        return {"name": self.name, "kind": type(self).__name__, "modality": self.modality}

    def close(self) -> None:
        """Release resources (a node, a process); the default holds none."""


def camera_grasp_to_base(position, quaternion, T_base_camera) -> tuple[np.ndarray, np.ndarray]:
    """A TCP pose in the camera optical frame -> ``panda_link0``: the node's exact call."""
    T = Transform.from_matrix(np.asarray(T_base_camera, dtype=np.float64))
    return T.apply_pose(np.asarray(position, dtype=np.float64), np.asarray(quaternion, dtype=np.float64))


#: What a policy plans the descent along: the base's -z, or the camera's optical axis.
APPROACHES = ("vertical", "camera")


def approach_in_camera(obs: "Observation", approach: str):
    """The descent direction in the camera optical frame: the base's -z for ``vertical`` (the
    executor's default), None (the optical axis) for ``camera``."""
    if approach != "vertical":
        return None
    R = np.asarray(obs.T_base_camera, dtype=np.float64)[:3, :3]  # camera -> base
    return R.T @ np.array([0.0, 0.0, -1.0])


# --------------------------------------------------------------------------- our models
class ModelPolicy(Policy):
    """A DSC-GraspNet model through the core detector; executes its best grasp.

    "Best" is what the node publishes on ``~/grasp`` at its defaults: the detector decodes
    ``top_k`` (5) candidates and rejects those it cannot compute or that no gripper of
    ``max_gripper_opening`` (0.08 m) could execute; the best remaining one is executed.

    ``path=None`` loads the shipped model of ``modality`` (RGB-D by default). ``modality``, when
    given, must match the model's (else :class:`PolicyError`, naming both).
    """

    def __init__(self, path=None, modality: str | None = None, name: str | None = None, device: str = "cpu",
                 approach: str = "vertical", gripper=None, **detector_settings):
        from ..core.inference import DetectorConfig, GraspDetector
        from ..core.model_io import ModelError

        #: ``gripper`` (:class:`~dsc_grasp_ros.core.gripper.Gripper`): the plans are poses of its TCP
        #: frame and no wider than its stroke (as the node publishes them with that gripper); None:
        #: our grasp frame and the detector's ``max_gripper_opening``.
        self.gripper = gripper
        if gripper is not None:
            detector_settings.setdefault("max_gripper_opening", gripper.max_opening)

        if approach not in APPROACHES:
            raise PolicyError(f"approach must be one of {APPROACHES}, got {approach!r}")
        #: ``vertical``: plan for a gripper that descends along the base's -z (the executor's default;
        #: the node's ``approach: target_down``); ``camera``: along the optical axis (``approach: optical``).
        self.approach = approach

        try:
            self.detector = GraspDetector(DetectorConfig(model_path=None if path is None else str(path), device=device, modality=modality, **detector_settings))
        except ModelError as e:
            raise PolicyError(f"cannot use model {path or '(shipped ' + (modality or 'rgbd') + ')'}: {e}") from e
        self.modality = self.detector.modality
        self.path = str(path) if path is not None else None
        self.name = name or f"dsc_{self.modality}"

    def describe(self) -> dict:
        d = super().describe()
        if self.path is None:
            from ..core.model_io import default_model_path

            path = f"(shipped) {default_model_path(self.modality).name}"
        else:
            path = self.path
        c = self.detector.cfg
        d.update(path=path, sha256=getattr(self.detector.meta, "weights_sha256", None) or None, top_k=c.top_k,
                 finger_check=c.finger_check, finger_max_turn_deg=c.finger_max_turn_deg, approach=self.approach)
        eng = getattr(self.detector, "engine", None)
        if eng is not None:  # what ran the network (the backend may have been swapped in after the first trials)
            d.update(backend=eng.backend, precision=eng.precision_info.get("runs"))
        return d

    def plan(self, obs: Observation) -> PlannedGrasp | None:
        t0 = time.perf_counter()
        res = self.detector.detect(None if self.modality == "d" else obs.rgb, obs.depth, obs.K,
                                   approach=approach_in_camera(obs, self.approach))
        if not res.grasps:
            return None
        g = res.grasps[0]
        pos, quat = camera_grasp_to_base(g.position, g.orientation, obs.T_base_camera)
        info = {"depth_m": float(g.depth_m), "timings": {k: round(v, 5) for k, v in res.timings.items()}, "t_plan": time.perf_counter() - t0}
        tcp = None
        if self.gripper is not None:
            pos, quat = self.gripper.to_tcp(pos, quat)
            tcp = tuple(self.gripper.tcp_transform)
        return PlannedGrasp(pos, quat, float(g.width_m), ImageGrasp(g.u, g.v, g.angle, g.width_px, g.quality), info, tcp_transform=tcp)


# --------------------------------------------------------------------------- peers
class PeerPolicy(Policy):
    """A peer network's best image grasp, made metric by the same core geometry as our models.

    ``peer`` has ``predict(rgb, depth_m, k) -> [(u, v, angle, width_px, quality)]`` in
    full-image pixels and our angle convention (``bench/peers.py``). The pose uses
    :func:`~dsc_grasp_ros.core.geometry.grasp_pose` (median depth between the jaws, jaw size = half the
    opening, as the detector) and the node's camera -> base transform.

    By default (``top_k=1``, ``max_gripper_opening=None``) the peer's best grasp is executed as
    its own ROS wrappers would: whatever its opening, which the executor caps at the gripper's 8 cm.
    Our detector instead rejects a grasp wider than ``max_gripper_opening`` and takes the next of
    its ``top_k``; ``top_k=5, max_gripper_opening=0.08`` gives a peer that same rule. Measured on
    78 benchmark trials, that rule cut GR-ConvNet3 from 60 to 21 successes: its best grasp is often
    wider than 8 cm and still works at 8 cm (docs/bench.md).
    """

    def __init__(self, peer, name: str, modality: str = "rgbd", depth_statistic: str = "median", region_scale: float = 0.5,
                 top_k: int = 1, max_gripper_opening: float | None = None, fingers=None, finger_max_turn_deg: float = 0.0,
                 approach: str = "vertical"):
        self.peer = peer
        self.approach = approach  # what the finger check measures along (APPROACHES)
        #: ``fingers`` (:class:`~dsc_grasp_ros.core.clearance.FingerGeometry`): our detector's finger check
        #: (``finger_check`` prefer) on the peer's ``top_k`` grasps; None = the peer as published.
        self.fingers = fingers
        self.finger_max_turn = math.radians(finger_max_turn_deg)
        self.top_k = int(top_k)
        self.max_gripper_opening = None if max_gripper_opening is None else float(max_gripper_opening)
        self.name = name
        self.modality = modality
        self.depth_statistic = depth_statistic
        self.region_scale = region_scale

    @classmethod
    def load(cls, name: str, path=None, **settings) -> "PeerPolicy":
        """``load_peer(name, path)`` from ``bench/peers.py``; errors become :class:`PolicyError`.
        ``settings`` go to the constructor (``name`` may then differ from the peer's)."""
        try:
            from . import peers
        except ImportError as e:
            raise PolicyError(f"peer networks are not available (dsc_grasp_ros/bench/peers.py: {e})") from e
        try:
            peer = peers.load_peer(name, path)
        except (ValueError, RuntimeError, FileNotFoundError, KeyError) as e:
            raise PolicyError(f"cannot load peer {name!r}{'' if path is None else ' from ' + str(path)}: {e}") from e
        modality = getattr(peer, "modality", "d" if "ggcnn" in name else "rgbd")
        return cls(peer, settings.pop("policy_name", name), modality, **settings)

    def describe(self) -> dict:
        d = super().describe()
        d["weights"] = str(getattr(self.peer, "path", "") or "")
        if self.fingers is not None:
            d.update(top_k=self.top_k, finger_check="prefer", finger_max_turn_deg=round(math.degrees(self.finger_max_turn), 3))
        return d

    def plan(self, obs: Observation) -> PlannedGrasp | None:
        t0 = time.perf_counter()
        out = self.peer.predict(obs.rgb, obs.depth, k=self.top_k)
        t1 = time.perf_counter()
        cam = CameraIntrinsics.from_K(obs.K)
        approach = approach_in_camera(obs, self.approach)  # what the finger check measures along
        blocked = None
        for cand in out:  # best first; the same checks as our detector: computable pose, gripper opening
            u, v, angle, width_px, quality = (float(a) for a in cand)
            jaw_px = width_px * PREDICTED_JAW_RATIO
            try:
                pos_c, quat_c, width_m, z = grasp_pose(u, v, angle, width_px, obs.depth, cam, jaw_px, self.depth_statistic,
                                                       self.region_scale)
            except GeometryError:
                continue
            if self.fingers is not None:  # our finger check, "prefer": the first clear grasp, else the best
                fit = fit_fingers(obs.depth, cam, u, v, angle, width_px, z, self.fingers, self.finger_max_turn, approach=approach)
                if fit is None:
                    if self.max_gripper_opening is None or width_m <= self.max_gripper_opening:
                        blocked = blocked or (u, v, angle, width_px, quality, pos_c, quat_c, width_m, z)
                    continue
                if fit.moved:
                    try:
                        u, v, angle, width_px, pos_c, quat_c, width_m, z = fitted_pose(
                            fit, cam, approach, lambda *grasp: grasp_pose(*grasp, obs.depth, cam, jaw_px, self.depth_statistic,
                                                                          self.region_scale))
                    except GeometryError:
                        continue
            if self.max_gripper_opening is not None and width_m > self.max_gripper_opening:
                continue
            return self._planned(obs, t0, t1, u, v, angle, width_px, quality, pos_c, quat_c, width_m, z)
        if blocked is not None:
            return self._planned(obs, t0, t1, *blocked)
        return None

    def _planned(self, obs, t0, t1, u, v, angle, width_px, quality, pos_c, quat_c, width_m, z) -> PlannedGrasp:
        pos, quat = camera_grasp_to_base(pos_c, quat_c, obs.T_base_camera)
        info = {"depth_m": z, "timings": {"network": round(t1 - t0, 5)}, "t_plan": time.perf_counter() - t0}
        return PlannedGrasp(pos, quat, width_m, ImageGrasp(u, v, angle, width_px, quality), info)


# --------------------------------------------------------------------------- oracle
class OraclePolicy(Policy):
    """Knows the object: perfect perception, to measure the execution alone.

    Approach straight down (the base frame's -z: for the authors' top-down camera, its optical
    axis); jaws across the narrowest extent of the object's vertices seen from above (the
    narrowest visible side), centred on that extent and on the centre of mass across it;
    opening = that extent. The TCP is placed on the object's top surface between the jaws (the
    highest vertex there), as a perception policy places it on the observed surface; the executor
    then goes the same ``grasp_depth`` beyond it.

    Reads ``obs.truth``: ``vertices`` (Nx3 collision vertices in the base frame) and ``com`` (3,).
    """

    name = "oracle"
    modality = "truth"

    def __init__(self, angle_step_deg: float = 3.0, jaw_half: float = 0.01):
        self.angle_step = math.radians(angle_step_deg)
        self.jaw_half = jaw_half

    def plan(self, obs: Observation) -> PlannedGrasp | None:
        t = obs.truth
        if not t or "vertices" not in t:
            raise PolicyError("the oracle needs the simulator's ground truth (Observation.truth with 'vertices')")
        # view frame: looking straight down in the base frame (x = base x, y = -base y, z = -base z)
        R_v = np.diag([1.0, -1.0, -1.0])
        V = np.asarray(t["vertices"], dtype=np.float64) @ R_v  # R_v is symmetric and its own inverse
        cc = np.asarray(t["com"], dtype=np.float64) @ R_v
        xy = V[:, :2] - cc[:2]
        best = None  # narrowest extent across the approach
        for a in np.arange(0.0, math.pi, self.angle_step):
            d = np.array([math.cos(a), math.sin(a)])
            proj = xy @ d
            w = proj.max() - proj.min()
            if best is None or w < best[0]:
                best = (w, a, 0.5 * (proj.max() + proj.min()))
        width, a, mid = best
        d = np.array([math.cos(a), math.sin(a)])
        n = np.array([-d[1], d[0]])
        centre = cc[:2] + d * mid
        rel = V[:, :2] - centre
        # surface between the jaws: the top vertex among those across the jaw width (meshes can be
        # sparse: at least the 12 vertices closest to the closing line)
        across = np.abs(rel @ n)
        inside = across <= max(self.jaw_half, float(np.sort(across)[min(11, len(across) - 1)]))
        centre_v = np.array([centre[0], centre[1], float(V[inside, 2].min())])
        y = np.array([d[0], d[1], 0.0])
        z = np.array([0.0, 0.0, 1.0])
        R = R_v @ np.column_stack([np.cross(y, z), y, z])
        pos = R_v @ centre_v
        quat = rotation_to_quaternion(R)
        # the image grasp, for drawing: the jaw line projected into the camera
        T = np.asarray(obs.T_base_camera, dtype=np.float64)
        cam = CameraIntrinsics.from_K(obs.K)
        ends = np.array([pos - R[:, 1] * width / 2, pos, pos + R[:, 1] * width / 2])
        pc = (ends - T[:3, 3]) @ T[:3, :3]
        uv = cam.project(pc)
        du, dv = uv[2] - uv[0]
        angle = float(wrap_angle(math.atan2(-dv, du)))
        return PlannedGrasp(pos, quat, float(width), ImageGrasp(float(uv[1, 0]), float(uv[1, 1]), angle, float(np.hypot(du, dv)), 1.0),
                            {"depth_m": float(pc[1, 2])})


def quaternion_axis(q, i: int) -> np.ndarray:
    """Column ``i`` of the rotation of quaternion ``q`` (x, y, z, w)."""
    from ..core.geometry import quaternion_to_rotation

    return quaternion_to_rotation(q)[:, i]
