"""What ``grasp_node`` publishes for a processed frame: the best pose, all poses, the candidate
cloud, gripper markers and (when someone listens) the annotated debug image."""

from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import Pose, PoseArray, PoseStamped
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from . import conversions as conv


class OutputsMixin:
    """The publishing side of :class:`~.grasp_node.GraspNode` (uses ``self._pubs``, ``self._pub_lock``,
    ``self._active``, ``self._counters``)."""

    def _rows_and_poses(self, res, T) -> tuple[list, list]:
        """The detector's grasps in the output frame (``T``: camera -> target, None = camera frame):
        candidate-cloud rows and poses; a grasp with a non-finite value is dropped and warned about."""
        rows, poses = [], []
        for g in res.grasps:
            pos, quat = np.asarray(g.position, float), np.asarray(g.orientation, float)
            if T is not None:
                pos, quat = T.apply_pose(pos, quat)
            pos, quat = self._tcp_pose(pos, quat)  # the robot's TCP frame (tcp_transform; identity for the Franka hand)
            vals = [*pos, *quat, g.width_m, g.quality, g.angle, g.u, g.v]
            if not all(math.isfinite(float(x)) for x in vals):
                self._count("rejected_candidates")
                self._warn("non_finite_pose", f"grasp at (u={g.u:.1f}, v={g.v:.1f}) has a non-finite pose; not published")
                continue
            rows.append(vals + [math.nan if g.fingers_clear is None else float(g.fingers_clear)])
            poses.append(_pose(pos, quat))
        return rows, poses

    def _publish(self, header, rows, poses, res, rgb, image_header, target=None) -> None:
        """``target``: ``(pose or None, JSON state or None)`` of the tracker (:mod:`.target`): the
        pose goes to ``~/grasp`` (with tracking off: the frame's best grasp)."""
        best, state = target if target is not None else ((poses[0] if poses else None), None)
        with self._pub_lock:
            if not self._active or not self._pubs:
                return
            pubs = self._pubs
            if best is not None:
                pose = best if isinstance(best, Pose) else _pose(*best)
                pubs["grasp"].publish(PoseStamped(header=header, pose=pose))
                self._published += 1
            if state is not None:
                pubs["target_state"].publish(String(data=state))
            pubs["grasps"].publish(PoseArray(header=header, poses=poses))
            pubs["candidates"].publish(conv.candidates_to_cloud(np.asarray(rows, dtype=np.float64).reshape(-1, len(conv.CANDIDATE_FIELDS)), header))
            if self._p("publish_markers"):
                pubs["markers"].publish(_markers(header, rows, poses))
            if pubs["debug"].get_subscription_count() > 0:
                pubs["debug"].publish(self._debug_image(res, rgb, image_header))

    def _tcp_pose(self, pos, quat):
        """Our grasp frame -> the robot's TCP frame (the gripper's ``tcp_transform``)."""
        from ..core.gripper import GripperError

        try:
            g = self.gripper()
        except GripperError:  # validated when set; a race with a parameter change: publish the grasp frame
            return pos, quat
        if g.tcp_transform == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0):
            return pos, quat
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
            return pos, quat  # dropped by the caller
        return g.to_tcp(pos, quat)

    def _debug_image(self, res, rgb, image_header):
        """The colour image with the grasps (and, on the real camera, the quality map and ROI) drawn."""
        from ..core.visualize import draw_grasps

        # with view down the ROI and the quality map are the virtual camera's: not drawn on the real image
        virtual = getattr(res, "view", None) is not None
        det = self._detector
        img = draw_grasps(rgb, res.grasps, None if virtual else res.quality_map, None if virtual else res.roi,
                          fingers=det.cfg.fingers() if det is not None else None)
        return conv.array_to_image(img, "rgb8", header=image_header)


def _markers(header, rows, poses) -> MarkerArray:
    arr = MarkerArray()
    arr.markers.append(Marker(header=header, action=Marker.DELETEALL))
    for i, (row, pose) in enumerate(zip(rows, poses)):
        arr.markers.append(conv.gripper_marker(header, pose, row[7], row[8], i))
    return arr


def _pose(pos, quat) -> Pose:
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(a) for a in pos)
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (float(a) for a in quat)
    return p
