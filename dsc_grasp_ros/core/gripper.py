"""The robot's gripper: presets, the transform from our grasp frame to the robot's TCP frame, finger
postures from a predicted width, and the execution steps of a grasp (how far past the observed
surface to close, where to start the approach, where to retreat to).

Frames
    *grasp frame*: our convention (:mod:`.conventions`): origin at the grasp centre on the observed
    surface (the detector's pose), ``+z`` approach, jaws closing along ``±y``. The Franka hand's
    TCP (``panda_hand_tcp``) has these axes.

    *TCP frame*: the frame the robot controller (or MoveIt's end-effector) is commanded in.
    ``tcp_transform`` is its pose in the grasp frame (``[x, y, z, qx, qy, qz, qw]``): the published
    pose is ``T_target_grasp @ tcp_transform`` and the grasp frame is recovered with its inverse
    (:meth:`Gripper.to_tcp`, :meth:`Gripper.from_tcp`).

Execution (:meth:`Gripper.execution`, the closed-loop benchmark's protocol, ``docs/bench.md``)
    grasp = the surface pose moved ``grasp_depth`` further along the approach, but no lower than
    where the fingertips (``tip_beyond_tcp`` past the TCP) stay ``tip_clearance`` above the
    support plane when one is known; pre-grasp = ``approach_distance`` back along the approach;
    retreat = ``retreat_distance`` along the retreat direction (the support plane's normal when
    known, else back along the approach).

Presets (sources in each entry's ``source``):

* ``franka_hand``: Franka Hand on a Panda / FR3 (franka_description ``franka_hand.xacro``:
  ``panda_hand_tcp`` 0.1034 m from the flange along z; finger joints ``panda_finger_joint1/2``,
  prismatic 0-0.04 m each, so each joint = width / 2; 80 mm stroke, Franka datasheet).
* ``robotiq_2f_85``: Robotiq 2F-85 (PickNikRobotics/ros2_robotiq_gripper ``robotiq_2f_85_macro``:
  ``robotiq_base_link`` z = approach, fingers closing along its x; knuckle joint 0 (open, 85 mm) to
  0.8 rad (closed), commanded linearly to the gripper's 0-255 position register).
* ``robotiq_2f_140``: Robotiq 2F-140 (same repository, ``robotiq_2f_140_macro``: ``finger_joint``
  0 (open, 140 mm) to ``gripper_closed_position`` 0.695 rad; its ``robotiq_base_link`` is turned to
  match the 2F-85's axes).

The width -> joint mapping is linear between the open and the closed joint values (exact for the
Franka hand's prismatic fingers; for the Robotiq linkages it is the position-register mapping their
driver uses, within a few millimetres of the true four-bar kinematics).

ROS-free (numpy only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .geometry import GeometryError, Transform, quaternion_to_rotation

__all__ = ["GripperError", "Gripper", "Execution", "PRESETS", "PRESET_NAMES", "GRIPPER_RANGES", "preset", "support_plane_in"]


class GripperError(ValueError):
    """A gripper description that cannot be used (the message names the field)."""


#: Valid ranges of the numeric gripper settings (the node's parameter descriptors use them).
GRIPPER_RANGES = {
    "max_opening": (0.001, 0.5),
    "grasp_depth": (0.0, 0.1),
    "approach_distance": (0.0, 0.5),
    "retreat_distance": (0.0, 0.5),
    "tip_beyond_tcp": (0.0, 0.1),
    "tip_clearance": (0.0, 0.05),
    "grasp_effort": (0.0, 1000.0),
}


@dataclass(frozen=True)
class Gripper:
    """One gripper: geometry, finger joints and the execution distances (metres, radians)."""

    name: str
    max_opening: float
    finger_joints: tuple[str, ...]
    joint_open: tuple[float, ...]  # each finger joint's value at max_opening
    joint_closed: tuple[float, ...]  # ... and at width 0
    #: Pose of the robot's TCP frame in our grasp frame, [x, y, z, qx, qy, qz, qw].
    tcp_transform: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    #: Distance (m) from the gripper's mounting flange to the TCP along the approach (for a TCP
    #: frame at the flange: ``tcp_transform`` = [0, 0, -flange_to_tcp, ...]).
    flange_to_tcp: float = 0.0
    grasp_depth: float = 0.025
    approach_distance: float = 0.10
    retreat_distance: float = 0.20
    tip_beyond_tcp: float = 0.011
    tip_clearance: float = 0.005
    grasp_effort: float = 40.0  # per finger joint in the grasp posture (N or N m, as the driver reads it)
    source: str = field(default="", compare=False)

    def __post_init__(self):
        problem = self.problem()
        if problem:
            raise GripperError(f"gripper {self.name!r}: {problem}")
        object.__setattr__(self, "finger_joints", tuple(str(j) for j in self.finger_joints))
        object.__setattr__(self, "joint_open", tuple(float(v) for v in self.joint_open))
        object.__setattr__(self, "joint_closed", tuple(float(v) for v in self.joint_closed))
        object.__setattr__(self, "tcp_transform", tuple(float(v) for v in self.tcp_transform))

    def problem(self) -> str | None:
        """Why this description is unusable, or None."""
        for name, (lo, hi) in GRIPPER_RANGES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                return f"{name}={v!r} is outside [{lo}, {hi}]"
        joints = list(self.finger_joints)
        if not joints or any(not isinstance(j, str) or not j.strip() for j in joints):
            return f"finger_joints must be a non-empty list of joint names, got {joints}"
        if len(set(joints)) != len(joints):
            return f"finger_joints has a joint twice: {joints}"
        for what in ("joint_open", "joint_closed"):
            vals = list(getattr(self, what))
            if len(vals) != len(joints):
                return f"{what} needs one value per finger joint ({len(joints)}: {joints}), got {len(vals)}"
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
                return f"{what} has non-finite values: {vals}"
        if all(abs(a - b) < 1e-12 for a, b in zip(self.joint_open, self.joint_closed)):
            return "joint_open and joint_closed are equal: the width cannot be commanded"
        try:
            Transform.from_list(self.tcp_transform)
        except GeometryError as e:
            return f"tcp_transform: {e}"
        return None

    # ------------------------------------------------------------------ frames
    @property
    def tcp(self) -> Transform:
        """The TCP frame in the grasp frame (``T_grasp_tcp``)."""
        return Transform.from_list(self.tcp_transform)

    def to_tcp(self, position, quaternion) -> tuple[np.ndarray, np.ndarray]:
        """A grasp-frame pose (in any parent frame) -> the TCP frame's pose in that parent."""
        T = Transform(tuple(np.asarray(position, dtype=np.float64)), tuple(_unit(quaternion))) @ self.tcp
        return np.asarray(T.translation), _positive_w(np.asarray(T.rotation))

    def from_tcp(self, position, quaternion) -> tuple[np.ndarray, np.ndarray]:
        """The inverse of :meth:`to_tcp`: a TCP pose -> the grasp frame's pose."""
        T = Transform(tuple(np.asarray(position, dtype=np.float64)), tuple(_unit(quaternion))) @ self.tcp.inverse()
        return np.asarray(T.translation), _positive_w(np.asarray(T.rotation))

    # ------------------------------------------------------------------ fingers
    def joint_positions(self, width: float) -> list[float]:
        """Finger joint values that open the jaws ``width`` metres (clipped to [0, max_opening])."""
        if not math.isfinite(float(width)):
            raise GripperError(f"width must be finite, got {width}")
        s = min(max(float(width), 0.0), self.max_opening) / self.max_opening
        return [c + (o - c) * s for o, c in zip(self.joint_open, self.joint_closed)]

    def width_of(self, positions) -> float:
        """The opening (m) the first finger joint's value stands for (inverse of :meth:`joint_positions`)."""
        o, c = self.joint_open[0], self.joint_closed[0]
        return float(positions[0] - c) / (o - c) * self.max_opening

    def pre_grasp_opening(self, width: float, margin: float) -> float:
        """Opening before the descent: the predicted width plus ``margin`` per side, within the stroke."""
        return min(max(float(width) + 2.0 * float(margin), 0.0), self.max_opening)

    # ------------------------------------------------------------------ execution
    def execution(self, position, quaternion, plane=None, up=None) -> "Execution":
        """The execution of a grasp whose grasp-frame pose (``position``, ``quaternion``: on the
        observed surface) is given in some frame.

        ``plane``: the support plane in that frame as ``(unit normal pointing away from the support,
        offset)`` with height ``h(x) = normal . x - offset``; the grasp then goes no deeper than where
        the fingertips stay ``tip_clearance`` above it, and the retreat is along the normal.
        ``up``: the retreat direction when no plane is given (default: back along the approach).
        """
        p = np.asarray(position, dtype=np.float64)
        q = _unit(quaternion)
        a = quaternion_to_rotation(q)[:, 2]
        target = p + a * self.grasp_depth
        retreat = -a
        if plane is not None:
            n, off = _plane(plane)
            an = float(a @ n)
            lowest = self.tip_clearance + self.tip_beyond_tcp * max(0.0, -an)
            h = float(n @ target) - off
            if h < lowest and an < -1e-6:
                target = target + a * ((lowest - h) / an)
            retreat = n
        elif up is not None:
            retreat = np.asarray(up, dtype=np.float64)
            retreat = retreat / np.linalg.norm(retreat)
        return Execution(grasp_position=target, quaternion=q, approach=a, pre_grasp_position=target - a * self.approach_distance,
                         retreat=retreat, retreat_position=target + retreat * self.retreat_distance,
                         depth=float((target - p) @ a))

    def with_overrides(self, **changes) -> "Gripper":
        """A copy with some fields changed (validated)."""
        try:
            return replace(self, **changes)
        except TypeError as e:
            raise GripperError(str(e)) from e

    def as_dict(self) -> dict:
        return {"name": self.name, "max_opening": self.max_opening, "finger_joints": list(self.finger_joints),
                "joint_open": list(self.joint_open), "joint_closed": list(self.joint_closed),
                "tcp_transform": list(self.tcp_transform), "flange_to_tcp": self.flange_to_tcp, "grasp_depth": self.grasp_depth,
                "approach_distance": self.approach_distance, "retreat_distance": self.retreat_distance,
                "tip_beyond_tcp": self.tip_beyond_tcp, "tip_clearance": self.tip_clearance, "grasp_effort": self.grasp_effort}


@dataclass(frozen=True)
class Execution:
    """The steps of one grasp, in the frame the grasp was given in (grasp-frame orientation)."""

    grasp_position: np.ndarray  # where the grasp frame closes the fingers
    quaternion: np.ndarray  # grasp-frame orientation (the same at every step)
    approach: np.ndarray  # unit approach direction (grasp frame +z)
    pre_grasp_position: np.ndarray
    retreat: np.ndarray  # unit retreat direction
    retreat_position: np.ndarray
    depth: float  # how far past the surface the grasp closes (grasp_depth, less when the support plane limits it)


def _unit(q) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    n = float(np.linalg.norm(q))
    if q.shape != (4,) or not math.isfinite(n) or n < 1e-9:
        raise GripperError(f"a quaternion needs 4 finite values with a non-zero norm, got {q.tolist()}")
    return q / n


def _positive_w(q: np.ndarray) -> np.ndarray:
    return -q if q[3] < 0 else q


def _plane(plane) -> tuple[np.ndarray, float]:
    n, off = plane
    n = np.asarray(n, dtype=np.float64)
    norm = float(np.linalg.norm(n))
    if n.shape != (3,) or not math.isfinite(norm) or norm < 1e-9 or not math.isfinite(float(off)):
        raise GripperError(f"a support plane needs a finite non-zero normal and offset, got {n.tolist()}, {off}")
    return n / norm, float(off) / norm


def support_plane_in(plane, T: Transform | None):
    """A plane ``(normal, offset)`` given in a child frame, expressed in the parent frame of ``T``."""
    if T is None or plane is None:
        return plane
    n, off = _plane(plane)
    R = quaternion_to_rotation(T.rotation)
    n2 = R @ n
    return n2, off + float(n2 @ np.asarray(T.translation))


_QZ90 = (0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5))  # +90 degrees about the approach: TCP x = our closing axis

#: The shipped presets. Every number's source is in ``source``.
PRESETS: dict[str, Gripper] = {
    "franka_hand": Gripper(
        name="franka_hand", max_opening=0.08, finger_joints=("panda_finger_joint1", "panda_finger_joint2"),
        joint_open=(0.04, 0.04), joint_closed=(0.0, 0.0), tcp_transform=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
        flange_to_tcp=0.1034, grasp_depth=0.025, approach_distance=0.10, retreat_distance=0.20, tip_beyond_tcp=0.011,
        tip_clearance=0.005, grasp_effort=40.0,
        source="franka_description franka_hand.xacro (panda_hand_tcp 0.1034 m along the flange z; panda_finger_joint1/2 "
               "prismatic 0-0.04 m); Franka Hand datasheet (80 mm stroke, 70 N continuous); tip_beyond_tcp from the "
               "pybullet_data Panda's finger meshes; execution distances: the closed-loop benchmark's protocol",
    ),
    "robotiq_2f_85": Gripper(
        name="robotiq_2f_85", max_opening=0.085, finger_joints=("robotiq_85_left_knuckle_joint",),
        joint_open=(0.0,), joint_closed=(0.8,), tcp_transform=(0.0, 0.0, 0.0, *_QZ90), flange_to_tcp=0.13,
        grasp_depth=0.025, approach_distance=0.10, retreat_distance=0.20, tip_beyond_tcp=0.01, tip_clearance=0.005,
        grasp_effort=50.0,
        source="PickNikRobotics/ros2_robotiq_gripper robotiq_2f_85_macro.urdf.xacro (robotiq_base_link: z approach, "
               "knuckles on +-x; left knuckle joint limit 0-0.8 rad, effort 50); Robotiq 2F-85 manual (85 mm stroke); "
               "flange_to_tcp approximate: fingertip joint 0.098 m from robotiq_base_link (sum of the xacro's joint origins, "
               "open) plus half a finger pad",
    ),
    "robotiq_2f_140": Gripper(
        name="robotiq_2f_140", max_opening=0.14, finger_joints=("finger_joint",),
        joint_open=(0.0,), joint_closed=(0.695,), tcp_transform=(0.0, 0.0, 0.0, *_QZ90), flange_to_tcp=0.20,
        grasp_depth=0.025, approach_distance=0.12, retreat_distance=0.20, tip_beyond_tcp=0.01, tip_clearance=0.005,
        grasp_effort=125.0,
        source="PickNikRobotics/ros2_robotiq_gripper robotiq_2f_140_macro.urdf.xacro (robotiq_base_link turned to the "
               "2F-85's axes; gripper_closed_position 0.695 rad; gripper_max_force 125); Robotiq 2F-140 manual (140 mm "
               "stroke); flange_to_tcp approximate (longer fingers than the 2F-85)",
    ),
}
PRESET_NAMES = tuple(PRESETS)


def preset(name: str) -> Gripper:
    """A shipped preset by name (GripperError naming the choices otherwise)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise GripperError(f"unknown gripper {name!r}: choose one of {list(PRESET_NAMES)}") from None
