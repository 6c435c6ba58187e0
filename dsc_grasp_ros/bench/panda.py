"""The Franka Panda of the benchmark: pybullet_data's ``franka_panda/panda.urdf``, fixed base.

Frames: the robot base ``panda_link0`` is the URDF's base link; the tool-centre point is the link
``panda_grasptarget`` (10.5 cm in front of the hand flange, between the finger pads), whose axes
are our TCP convention (``+z`` approach, jaws closing along ``±y``). The fingertips lie
:data:`TIP_BEYOND_TCP` beyond the TCP along ``+z`` (measured from the collision meshes).

What is simulated and what is teleported (see ``docs/bench.md``):

* teleported (``resetJointState``): the arm's free-space moves — to the park pose before the
  camera image (out of the camera's view) and from there to the pre-grasp pose. The path is not
  checked; the pre-grasp pose itself must be free of contact.
* simulated (position-controlled joint motors, force limited, physics at 240 Hz): the descent
  from the pre-grasp to the grasp pose, closing the fingers, the lift and the hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.geometry import quaternion_to_rotation, rotation_to_quaternion, quaternion_multiply
from ..core.gripper import PRESETS

URDF = "franka_panda/panda.urdf"
ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
TCP_LINK = 11  # panda_grasptarget
HAND_LINK = 8
GRIPPER_LINKS = (8, 9, 10)  # hand and fingers: what counts as the gripper touching something
#: Fingertips beyond the TCP along its +z (m), from the finger collision meshes, and the stroke: the
#: node's ``franka_hand`` gripper preset (core/gripper.py) holds both, so the node plans with them.
TIP_BEYOND_TCP = PRESETS["franka_hand"].tip_beyond_tcp
MAX_OPENING = PRESETS["franka_hand"].max_opening
#: Joint torque limits (N m) of the URDF; the finger motors push with :data:`GRIP_FORCE` each.
ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
GRIP_FORCE = 40.0  # N per finger (the real hand: 70 N continuous, both together 140 N peak)
#: A "ready" configuration used as the IK rest pose (elbow up, hand down).
READY = (0.0, -0.4, 0.0, -2.2, 0.0, 1.8, 0.785)
#: Park configuration while the camera takes the image: arm folded back, out of the view.
PARK = (math.pi * 0.9, -0.3, 0.0, -2.6, 0.0, 2.3, 0.785)


@dataclass
class IKResult:
    q: np.ndarray  # (7,) arm joints
    pos_error: float  # m
    rot_error: float  # rad
    quaternion: np.ndarray  # the TCP orientation actually targeted (the planned one or its 180-degree twin)


def _rot_angle(q_a, q_b) -> float:
    d = abs(float(np.dot(q_a, q_b)) / (np.linalg.norm(q_a) * np.linalg.norm(q_b)))
    return 2.0 * math.acos(min(1.0, d))


class Panda:
    """A Panda in PyBullet client ``client`` with its base (``panda_link0``) at ``T_world_base``."""

    def __init__(self, p, client: int, T_world_base: np.ndarray):
        self.p, self.c = p, client
        self.T_world_base = np.asarray(T_world_base, dtype=np.float64)
        pos = self.T_world_base[:3, 3].tolist()
        orn = rotation_to_quaternion(self.T_world_base[:3, :3]).tolist()
        self.body = p.loadURDF(URDF, pos, orn, useFixedBase=True, physicsClientId=client)
        info = [p.getJointInfo(self.body, j, physicsClientId=client) for j in range(p.getNumJoints(self.body, physicsClientId=client))]
        names = [i[12].decode() for i in info]
        if names[TCP_LINK] != "panda_grasptarget" or names[FINGER_JOINTS[0]] != "panda_leftfinger":
            raise RuntimeError(f"unexpected link layout in {URDF}: {names}")
        self.lower = np.array([info[j][8] for j in ARM_JOINTS])
        self.upper = np.array([info[j][9] for j in ARM_JOINTS])
        for j in (*FINGER_JOINTS, HAND_LINK):
            p.changeDynamics(self.body, j, lateralFriction=1.0, spinningFriction=0.1, rollingFriction=0.0, physicsClientId=client)
        self.park()

    # ----------------------------------------------------------------- frames
    def world_to_base(self, T_world):
        return np.linalg.inv(self.T_world_base) @ np.asarray(T_world, dtype=np.float64)

    def base_pose_to_world(self, position, quaternion) -> tuple[np.ndarray, np.ndarray]:
        T = np.eye(4)
        T[:3, :3] = quaternion_to_rotation(quaternion)
        T[:3, 3] = position
        W = self.T_world_base @ T
        return W[:3, 3].copy(), rotation_to_quaternion(W[:3, :3])

    def tcp_world(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.p.getLinkState(self.body, TCP_LINK, computeForwardKinematics=True, physicsClientId=self.c)
        return np.array(s[4]), np.array(s[5])

    # ----------------------------------------------------------------- teleports
    def set_arm(self, q, opening: float | None = None) -> None:
        """Teleport the arm (and fingers) and hold it there (motor targets = the new state)."""
        p, c = self.p, self.c
        for j, v in zip(ARM_JOINTS, q):
            p.resetJointState(self.body, j, float(v), 0.0, physicsClientId=c)
        self.hold_arm(q)
        if opening is not None:
            w = float(np.clip(opening, 0.0, MAX_OPENING)) / 2
            for j in FINGER_JOINTS:
                p.resetJointState(self.body, j, w, 0.0, physicsClientId=c)
            self.command_fingers(opening)

    def park(self) -> None:
        self.set_arm(PARK, MAX_OPENING)

    # ----------------------------------------------------------------- motors
    def hold_arm(self, q) -> None:
        self.p.setJointMotorControlArray(
            self.body, list(ARM_JOINTS), self.p.POSITION_CONTROL, targetPositions=[float(v) for v in q],
            forces=list(ARM_FORCES), positionGains=[0.3] * 7, velocityGains=[1.0] * 7, physicsClientId=self.c,
        )

    def command_fingers(self, opening: float, force: float = GRIP_FORCE) -> None:
        w = float(np.clip(opening, 0.0, MAX_OPENING)) / 2
        self.p.setJointMotorControlArray(
            self.body, list(FINGER_JOINTS), self.p.POSITION_CONTROL, targetPositions=[w, w], forces=[force, force],
            positionGains=[0.05, 0.05], physicsClientId=self.c,
        )

    def arm_q(self) -> np.ndarray:
        return np.array([s[0] for s in self.p.getJointStates(self.body, list(ARM_JOINTS), physicsClientId=self.c)])

    def opening(self) -> float:
        return float(sum(s[0] for s in self.p.getJointStates(self.body, list(FINGER_JOINTS), physicsClientId=self.c)))

    # ----------------------------------------------------------------- IK
    def _ik_once(self, pos_w, quat_w, seed) -> IKResult:
        p, c = self.p, self.c
        q = np.asarray(seed, dtype=np.float64)
        saved = [p.getJointState(self.body, j, physicsClientId=c)[:2] for j in ARM_JOINTS]
        try:
            for _ in range(4):  # PyBullet's IK is one damped-least-squares solve from the current state: refine
                for j, v in zip(ARM_JOINTS, q):
                    p.resetJointState(self.body, j, float(v), physicsClientId=c)
                sol = p.calculateInverseKinematics(
                    self.body, TCP_LINK, list(pos_w), list(quat_w), lowerLimits=self.lower.tolist(), upperLimits=self.upper.tolist(),
                    jointRanges=(self.upper - self.lower).tolist(), restPoses=list(READY), maxNumIterations=200,
                    residualThreshold=1e-5, physicsClientId=c,
                )
                q = np.clip(np.asarray(sol[:7]), self.lower, self.upper)
                for j, v in zip(ARM_JOINTS, q):
                    p.resetJointState(self.body, j, float(v), physicsClientId=c)
                tp, tq = self.tcp_world()
                pe, re = float(np.linalg.norm(tp - pos_w)), _rot_angle(tq, quat_w)
                if pe < 5e-4 and re < 5e-3:
                    break
        finally:
            for j, (v, dv) in zip(ARM_JOINTS, saved):
                p.resetJointState(self.body, j, v, dv, physicsClientId=c)
        return IKResult(q, pe, re, np.asarray(quat_w, dtype=np.float64))

    def ik(self, pos_w, quat_w, seed=READY) -> IKResult:
        """Joint solution for a TCP pose in the world; tries the pose and its twin turned 180 degrees
        about the approach axis (the same parallel grasp) and keeps the better one."""
        twin = quaternion_multiply(np.asarray(quat_w, dtype=np.float64), np.array([0.0, 0.0, 1.0, 0.0]))
        best = None
        for qw in (np.asarray(quat_w, dtype=np.float64), twin):
            r = self._ik_once(np.asarray(pos_w, dtype=np.float64), qw, seed)
            score = r.pos_error + 0.05 * r.rot_error
            if best is None or score < best[0] - 1e-6:
                best = (score, r)
        return best[1]
