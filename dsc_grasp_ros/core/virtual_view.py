"""A virtual camera that looks straight down: the frame a tilted camera sees, re-projected. No ROS imports.

The shipped networks learned from a camera looking straight down at the table. A real camera is
usually tilted (mounted on a stand or a robot's head), and the networks then see a view they
never trained on (docs/bench.md: the depth model finds no grasp at all on a 30° view). When the
gripper's approach direction is known (the node's ``approach: target_down``, from TF), the frame
can be turned into the view of a camera at the same place whose optical axis *is* that
direction: a pure rotation of the camera, so the image moves by a homography (no parallax, no
holes: the same surfaces stay visible) and each depth becomes the distance along the new axis.

``K_v`` keeps the focal lengths and moves the principal point so that the ray through the centre
of the real image lands at the centre of the virtual image (the scene stays in view).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from .geometry import CameraIntrinsics, image_axis, quaternion_to_rotation, rotation_to_quaternion

__all__ = ["VIEWS", "VIEW_HELP", "VirtualView", "down_view"]

#: ``DetectorConfig.view`` choices and what each means.
VIEWS = ("camera", "down")
VIEW_HELP = {
    "camera": "the network sees the camera's frame as it is",
    "down": "with an approach direction (the node's approach target_down), the frame is re-projected into a virtual "
            "camera at the same place looking along it (a tilted camera's view turned straight down, as in training); "
            "grasps are mapped back to the real camera",
}

#: Below this angle (degrees) between the approach and the optical axis no virtual view is made.
MIN_TILT_DEG = 2.0


def _rotation_onto_z(a: np.ndarray) -> np.ndarray:
    """The smallest rotation ``R`` with ``R @ a = +z``."""
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(a, z)
    s, c = float(np.linalg.norm(v)), float(a @ z)
    if s < 1e-12:
        return np.eye(3)
    V = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + V + V @ V * ((1.0 - c) / (s * s))


@dataclass
class VirtualView:
    """Real camera -> virtual camera: ``X_virtual = R @ X_real`` (both optical frames)."""

    R: np.ndarray  # 3x3
    K_real: np.ndarray  # 3x3
    K: np.ndarray  # 3x3 of the virtual camera
    width: int
    height: int

    @property
    def tilt_deg(self) -> float:
        return math.degrees(math.acos(max(-1.0, min(1.0, float(self.R[2, 2])))))

    @cached_property
    def homography(self) -> np.ndarray:
        """Real pixel -> virtual pixel: ``K_v R K^-1``."""
        return self.K @ self.R @ np.linalg.inv(self.K_real)

    @cached_property
    def depth_factor(self) -> np.ndarray:
        """Per real pixel, the depth along the virtual axis of its point per metre of real depth:
        ``R[2] . K^-1 [u, v, 1]`` (height x width)."""
        row = self.R[2] @ np.linalg.inv(self.K_real)
        vv, uu = np.mgrid[0:self.height, 0:self.width].astype(np.float64)
        return row[0] * uu + row[1] * vv + row[2]

    def warp(self, rgb: np.ndarray | None, depth_m: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """The virtual frame: colour (bilinear) and depth along the virtual optical axis (nearest
        pixel, so that no depth is mixed across an object's edge; 0 where nothing is seen)."""
        d = np.asarray(depth_m, dtype=np.float32)
        d = np.where(np.isfinite(d) & (d > 0), d, np.float32(0.0))
        zv = (d * self.depth_factor).astype(np.float32)
        zv[zv <= 0] = 0.0
        size = (self.width, self.height)
        depth_v = cv2.warpPerspective(zv, self.homography, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        rgb_v = None
        if rgb is not None:
            rgb_v = cv2.warpPerspective(np.ascontiguousarray(rgb), self.homography, size, flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE)
        return rgb_v, depth_v

    def pose_to_real(self, position, quaternion) -> tuple[np.ndarray, np.ndarray]:
        """A pose in the virtual optical frame -> the real optical frame."""
        p = self.R.T @ np.asarray(position, dtype=np.float64)
        M = self.R.T @ quaternion_to_rotation(quaternion)
        return p, rotation_to_quaternion(M)

    def grasp_to_real_image(self, position_real: np.ndarray, orientation_real, width_m: float) -> tuple[float, float, float, float]:
        """``(u, v, angle, width_px)`` of a real-frame grasp pose in the real image (for pictures and
        the published pixel fields): its point projected, the angle of its closing axis (TCP +y)
        as the image shows it, its width in pixels at its depth along that axis."""
        cam = CameraIntrinsics.from_K(self.K_real)
        p = np.asarray(position_real, dtype=np.float64)
        c = quaternion_to_rotation(orientation_real)[:, 1]
        u, v, angle = image_axis(cam, p, c)
        ends = [cam.project(p + s * width_m / 2 * c)[:2] for s in (-1.0, 1.0)]
        width_px = float(math.hypot(ends[1][0] - ends[0][0], ends[1][1] - ends[0][1]))
        return u, v, angle, width_px


def down_view(K, approach, width: int, height: int) -> VirtualView | None:
    """The virtual camera whose optical axis is ``approach`` (unit 3-vector in the real optical
    frame), or None when the real camera already looks within :data:`MIN_TILT_DEG` of it."""
    a = np.asarray(approach, dtype=np.float64).reshape(3)
    a = a / np.linalg.norm(a)
    if a[2] >= math.cos(math.radians(MIN_TILT_DEG)):
        return None
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    R = _rotation_onto_z(a)
    ray = R @ np.linalg.inv(K) @ np.array([(width - 1) / 2, (height - 1) / 2, 1.0])  # the real centre's ray
    if ray[2] <= 1e-6:
        raise ValueError(f"the approach {a.round(3).tolist()} is more than 90 degrees from the image centre's ray")
    fx, fy = K[0, 0], K[1, 1]
    Kv = np.array([[fx, 0.0, (width - 1) / 2 - fx * ray[0] / ray[2]],
                   [0.0, fy, (height - 1) / 2 - fy * ray[1] / ray[2]],
                   [0.0, 0.0, 1.0]])
    return VirtualView(R, K, Kv, int(width), int(height))
