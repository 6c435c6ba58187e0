"""A free-floating parallel-jaw gripper for grasp trials.

Two box fingers on prismatic joints under a palm, no arm: the base is held and moved by a fixed
constraint, the fingers are closed by velocity motors with a force limit. For labelling grasps
this is equivalent to a Panda hand at the end of an arm (the arm only brings the hand to the
pose) and an order of magnitude cheaper to simulate.

Body frame = tool-centre-point (TCP) frame of :mod:`dsc_grasp_ros.core.conventions`: ``+z`` is the
approach direction, the jaws close along ``y``; the TCP lies :data:`TIP_BELOW_TCP` above the
fingertips (between the finger pads). Joint ``i`` (0, 1) is the distance of finger ``i``'s inner
face from the TCP plane ``y = 0``: the opening is ``q0 + q1``.
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


@dataclass
class GripperIds:
    body: int
    constraint: int


def create(p, client: int, park=(0.0, 0.0, 5.0)) -> GripperIds:
    """Create the gripper in ``client``, parked at ``park`` (out of the way), fully open."""
    half_len = FINGER_LENGTH / 2
    zc = TIP_BELOW_TCP - half_len  # finger box centre along z
    palm_z = TIP_BELOW_TCP - FINGER_LENGTH - PALM_THICKNESS / 2
    palm_half = [JAW_SIZE / 2 + 0.005, MAX_OPENING / 2 + FINGER_THICKNESS + 0.005, PALM_THICKNESS / 2]
    palm = p.createCollisionShape(p.GEOM_BOX, halfExtents=palm_half, collisionFramePosition=[0, 0, palm_z], physicsClientId=client)
    fh = [JAW_SIZE / 2, FINGER_THICKNESS / 2, half_len]
    f0 = p.createCollisionShape(p.GEOM_BOX, halfExtents=fh, collisionFramePosition=[0, FINGER_THICKNESS / 2, zc], physicsClientId=client)
    f1 = p.createCollisionShape(p.GEOM_BOX, halfExtents=fh, collisionFramePosition=[0, -FINGER_THICKNESS / 2, zc], physicsClientId=client)
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
        p.resetJointState(body, j, MAX_OPENING / 2, physicsClientId=client)
        p.setJointMotorControl2(body, j, p.VELOCITY_CONTROL, targetVelocity=0, force=0, physicsClientId=client)
    cid = p.createConstraint(body, -1, -1, -1, p.JOINT_FIXED, [0, 0, 0], [0, 0, 0], park, physicsClientId=client)
    p.changeConstraint(cid, park, [0, 0, 0, 1], maxForce=500, physicsClientId=client)
    return GripperIds(body, cid)


def place(p, client: int, g: GripperIds, position, orientation, opening: float) -> None:
    """Teleport the gripper (and its constraint target) to a TCP pose with the given opening."""
    p.resetBasePositionAndOrientation(g.body, list(position), list(orientation), physicsClientId=client)
    p.resetBaseVelocity(g.body, [0, 0, 0], [0, 0, 0], physicsClientId=client)
    for j in (0, 1):
        p.resetJointState(g.body, j, opening / 2, 0.0, physicsClientId=client)
        p.setJointMotorControl2(g.body, j, p.VELOCITY_CONTROL, targetVelocity=0, force=GRIP_FORCE, physicsClientId=client)
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
