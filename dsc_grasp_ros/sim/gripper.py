"""A free-floating parallel-jaw gripper for grasp trials.

Two box fingers on prismatic joints under a palm, no arm: the base is held and moved by a fixed
constraint, the fingers are closed by velocity motors with a force limit. For labelling grasps
this is equivalent to a Panda hand at the end of an arm (the arm only brings the hand to the
pose) and an order of magnitude cheaper to simulate.

Body frame = tool-centre-point (TCP) frame of :mod:`dsc_grasp_ros.core.conventions`: ``+z`` is the
approach direction, the jaws close along ``y``; the TCP lies :data:`TIP_BELOW_TCP` above the
fingertips (between the finger pads). Joint ``i`` (0, 1) is the distance of finger ``i``'s inner
face from the TCP plane ``y = 0``: the opening is ``q0 + q1``.

The stroke is a robot gripper's (:data:`SIM_GRIPPERS`, from the presets of
:mod:`dsc_grasp_ros.core.gripper`): ``franka_hand`` (80 mm, the default and every data set before the
option), ``robotiq_2f_85`` (85 mm) and ``robotiq_2f_140`` (140 mm, which reaches across boxes the Panda
cannot). Only the stroke changes between them; the finger boxes, grip force and closing speed are the
constants below for all three (a labeller's stand-in for the jaws, not their meshes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Geometry (m).
MAX_OPENING = 0.08
JAW_SIZE = 0.02  # finger width along x (the rectangle's jaw size)
FINGER_THICKNESS = 0.01  # along the closing axis
FINGER_LENGTH = 0.045  # along the approach axis
TIP_BELOW_TCP = 0.01  # fingertips are this far beyond the TCP along +z
PALM_THICKNESS = 0.02
GRIP_FORCE = 20.0  # N per finger
CLOSE_SPEED = 0.12  # m/s per finger


@dataclass(frozen=True)
class SimGripper:
    """The simulated gripper's geometry (m): a robot gripper's stroke with the labeller's finger boxes."""

    name: str = "franka_hand"
    max_opening: float = MAX_OPENING
    jaw_size: float = JAW_SIZE
    finger_thickness: float = FINGER_THICKNESS
    finger_length: float = FINGER_LENGTH
    tip_below_tcp: float = TIP_BELOW_TCP
    palm_thickness: float = PALM_THICKNESS
    grip_force: float = GRIP_FORCE


def _sim_grippers() -> dict[str, SimGripper]:
    from ..core.gripper import PRESETS

    return {name: SimGripper(name=name, max_opening=g.max_opening) for name, g in PRESETS.items()}


#: The strokes the labeller can use, by the names of :data:`dsc_grasp_ros.core.gripper.PRESETS`.
SIM_GRIPPERS: dict[str, SimGripper] = _sim_grippers()
DEFAULT_GRIPPER = "franka_hand"
PANDA = SIM_GRIPPERS[DEFAULT_GRIPPER]
assert PANDA.max_opening == MAX_OPENING, "the Franka hand preset's stroke is the labeller's default"


def sim_gripper(name: str) -> SimGripper:
    """The simulated gripper called ``name`` (ValueError naming the choices otherwise)."""
    try:
        return SIM_GRIPPERS[name]
    except KeyError:
        raise ValueError(f"unknown gripper {name!r}: choose one of {list(SIM_GRIPPERS)}") from None


@dataclass
class GripperIds:
    body: int
    constraint: int
    spec: SimGripper = PANDA


def create(p, client: int, park=(0.0, 0.0, 5.0), spec: SimGripper = PANDA) -> GripperIds:
    """Create the gripper ``spec`` in ``client``, parked at ``park`` (out of the way), fully open."""
    half_len = spec.finger_length / 2
    zc = spec.tip_below_tcp - half_len  # finger box centre along z
    palm_z = spec.tip_below_tcp - spec.finger_length - spec.palm_thickness / 2
    palm_half = [spec.jaw_size / 2 + 0.005, spec.max_opening / 2 + spec.finger_thickness + 0.005, spec.palm_thickness / 2]
    palm = p.createCollisionShape(p.GEOM_BOX, halfExtents=palm_half, collisionFramePosition=[0, 0, palm_z], physicsClientId=client)
    fh = [spec.jaw_size / 2, spec.finger_thickness / 2, half_len]
    f0 = p.createCollisionShape(p.GEOM_BOX, halfExtents=fh, collisionFramePosition=[0, spec.finger_thickness / 2, zc], physicsClientId=client)
    f1 = p.createCollisionShape(p.GEOM_BOX, halfExtents=fh, collisionFramePosition=[0, -spec.finger_thickness / 2, zc], physicsClientId=client)
    body = p.createMultiBody(
        baseMass=0.4,
        baseCollisionShapeIndex=palm,
        basePosition=park,
        baseInertialFramePosition=[0, 0, 0],  # PyBullet poses are COM poses: keep COM = TCP
        linkMasses=[0.05, 0.05],
        linkCollisionShapeIndices=[f0, f1],
        linkVisualShapeIndices=[-1, -1],
        linkPositions=[[0, 0, 0], [0, 0, 0]],
        linkOrientations=[[0, 0, 0, 1], [0, 0, 0, 1]],
        linkInertialFramePositions=[[0, 0, 0], [0, 0, 0]],
        linkInertialFrameOrientations=[[0, 0, 0, 1], [0, 0, 0, 1]],
        linkParentIndices=[0, 0],
        linkJointTypes=[p.JOINT_PRISMATIC, p.JOINT_PRISMATIC],
        linkJointAxis=[[0, 1, 0], [0, -1, 0]],
        physicsClientId=client,
    )
    for j in (-1, 0, 1):
        p.changeDynamics(body, j, lateralFriction=1.0, spinningFriction=0.002, rollingFriction=0.0, physicsClientId=client)
    for j in (0, 1):
        p.resetJointState(body, j, spec.max_opening / 2, physicsClientId=client)
        p.setJointMotorControl2(body, j, p.VELOCITY_CONTROL, targetVelocity=0, force=0, physicsClientId=client)
    cid = p.createConstraint(body, -1, -1, -1, p.JOINT_FIXED, [0, 0, 0], [0, 0, 0], park, physicsClientId=client)
    p.changeConstraint(cid, park, [0, 0, 0, 1], maxForce=500, physicsClientId=client)
    return GripperIds(body, cid, spec)


def place(p, client: int, g: GripperIds, position, orientation, opening: float) -> None:
    """Teleport the gripper (and its constraint target) to a TCP pose with the given opening."""
    p.resetBasePositionAndOrientation(g.body, list(position), list(orientation), physicsClientId=client)
    p.resetBaseVelocity(g.body, [0, 0, 0], [0, 0, 0], physicsClientId=client)
    for j in (0, 1):
        p.resetJointState(g.body, j, opening / 2, 0.0, physicsClientId=client)
        p.setJointMotorControl2(g.body, j, p.VELOCITY_CONTROL, targetVelocity=0, force=g.spec.grip_force, physicsClientId=client)
    p.changeConstraint(g.constraint, list(position), list(orientation), maxForce=500, physicsClientId=client)


def opening(p, client: int, g: GripperIds) -> float:
    return float(sum(p.getJointState(g.body, j, physicsClientId=client)[0] for j in (0, 1)))


def collides(p, client: int, g: GripperIds, bodies, margin: float = 0.001) -> bool:
    """True when the gripper (in its current pose) is within ``margin`` of any of ``bodies``."""
    for b in bodies:
        if p.getClosestPoints(g.body, b, margin, physicsClientId=client):
            return True
    return False


def tcp_orientation(approach, closing) -> np.ndarray:
    """Quaternion (x, y, z, w) of the TCP frame: ``+z = approach``, ``+y = closing`` axis."""
    from .camera import matrix_to_quat

    z = np.asarray(approach, dtype=np.float64)
    z = z / np.linalg.norm(z)
    y = np.asarray(closing, dtype=np.float64)
    y = y - z * (y @ z)
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    return matrix_to_quat(np.column_stack([x, y, z]))
