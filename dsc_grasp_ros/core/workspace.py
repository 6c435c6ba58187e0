"""Where grasps may be: a workspace box, the support plane, and objects from an instance mask.

* :class:`WorkspaceBox`: an axis-aligned box ``[x_min, y_min, z_min, x_max, y_max, z_max]`` in the
  output frame (the robot base): a grasp whose centre is outside is dropped (``outside_workspace``).
* :func:`camera_support_plane`: the support plane (table) fitted in the depth image (RANSAC,
  :func:`.depthref.fit_support_plane`) as ``(normal, offset)`` in the camera optical frame, normal
  towards the camera; a grasp whose centre lies within ``support_margin`` of it grasps the table,
  not an object, and is dropped (``on_support_plane``). The plane also limits how deep a grasp goes
  (:meth:`.gripper.Gripper.execution`).
* Instance masks: a label image aligned with the colour image (0 = background, ``k > 0`` = object
  ``k``, as a segmenter publishes it). Each grasp gets the label under its centre (the most frequent
  object label within ``mask_radius`` pixels when the centre pixel is background: the grasp centre
  of a thin object can fall between its edge pixels); grasps on the background are dropped
  (``off_object``); with a target object, grasps on other objects too (``not_target``); the best
  ``per_object`` grasps of each object are kept (``beyond_per_object``).

Object ids: the string of the label (``"3"`` for label 3): the ``id`` of the CollisionObject a
GraspPlanning request names, and the ``id`` prefix of each published grasp.

ROS-free (numpy only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .geometry import CameraIntrinsics

__all__ = ["WorkspaceError", "WorkspaceBox", "GraspFilter", "FilterResult", "camera_support_plane", "object_labels",
           "parse_object_id", "FILTER_REASONS", "SUPPORT_PLANE_MODES", "Selection", "select_grasps"]

#: Why a grasp was dropped (counted in /diagnostics as ``dropped_<reason>``).
FILTER_REASONS = ("outside_workspace", "on_support_plane", "off_object", "not_target", "beyond_per_object")


class WorkspaceError(ValueError):
    """A workspace, mask or target that cannot be used (the message names the problem)."""


@dataclass(frozen=True)
class WorkspaceBox:
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]

    @classmethod
    def from_list(cls, values) -> "WorkspaceBox | None":
        """``[x_min, y_min, z_min, x_max, y_max, z_max]``; empty = no box (None)."""
        v = list(values or [])
        if not v:
            return None
        if len(v) != 6:
            raise WorkspaceError(f"workspace_box needs 6 numbers [x_min, y_min, z_min, x_max, y_max, z_max], got {len(v)}")
        try:
            f = [float(a) for a in v]
        except (TypeError, ValueError):
            raise WorkspaceError(f"workspace_box must be numbers, got {v}") from None
        if not all(math.isfinite(a) for a in f):
            raise WorkspaceError(f"workspace_box has non-finite values: {v}")
        lo, hi = f[:3], f[3:]
        if not all(a < b for a, b in zip(lo, hi)):
            raise WorkspaceError(f"workspace_box {f}: each minimum must be smaller than its maximum")
        return cls(tuple(lo), tuple(hi))

    def contains(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return np.all((p >= np.asarray(self.lo)) & (p <= np.asarray(self.hi)), axis=1)


def camera_support_plane(depth_m: np.ndarray, cam: CameraIntrinsics, inlier_m: float = 0.01):
    """The support plane of a depth image (metres) in the camera optical frame: ``(normal, offset)``
    with ``normal . x - offset`` the height above it (normal towards the camera), or None when no
    plane can be fitted (too few valid pixels, a plane through the camera)."""
    from .depthref import fit_support_plane

    d = np.asarray(depth_m, dtype=np.float64)
    p = fit_support_plane(d, inlier_m=inlier_m)
    if p is None:
        return None
    # 1/z = p . [u, v, 1] and x = z K^-1 [u, v, 1]  =>  the plane is m . x = 1 with m = K^T p
    m = cam.K.T @ np.asarray(p, dtype=np.float64)
    nm = float(np.linalg.norm(m))
    if not math.isfinite(nm) or nm < 1e-9:
        return None
    # height above the plane, positive on the camera's side: (1 - m.x) / |m|
    return -m / nm, -1.0 / nm


def object_labels(mask: np.ndarray, uv, radius: int = 3) -> np.ndarray:
    """The object label under each grasp centre ``uv`` (N x 2, full-image pixels); 0 = background.
    A centre on the background takes the most frequent non-zero label within ``radius`` pixels."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise WorkspaceError(f"an instance mask is one label per pixel (2-D), got shape {m.shape}")
    h, w = m.shape
    out = np.zeros(len(uv), dtype=np.int64)
    for i, (u, v) in enumerate(np.asarray(uv, dtype=np.float64).reshape(-1, 2)):
        if not (math.isfinite(u) and math.isfinite(v)):
            continue
        c, r = int(round(u)), int(round(v))
        if not (0 <= c < w and 0 <= r < h):
            continue
        lab = int(m[r, c])
        if lab == 0 and radius > 0:
            win = m[max(0, r - radius):r + radius + 1, max(0, c - radius):c + radius + 1].ravel()
            win = win[win != 0]
            if win.size:
                vals, counts = np.unique(win, return_counts=True)
                lab = int(vals[np.argmax(counts)])
        out[i] = lab
    return out


def parse_object_id(object_id: str, mask: np.ndarray | None = None) -> int:
    """The label an object id names (``"3"`` -> 3); WorkspaceError when it is not a label or (with a
    mask) no pixel carries it."""
    s = str(object_id).strip()
    try:
        lab = int(s)
    except ValueError:
        raise WorkspaceError(f"object id {object_id!r} is not an instance-mask label (ids are the labels: '1', '2', ...)") from None
    if lab <= 0:
        raise WorkspaceError(f"object id {object_id!r}: labels start at 1 (0 is the background)")
    if mask is not None and not np.any(np.asarray(mask) == lab):
        present = [int(x) for x in np.unique(np.asarray(mask)) if x != 0]
        raise WorkspaceError(f"object {object_id!r} is not in the current instance mask (objects present: "
                             f"{[str(x) for x in present] or 'none'})")
    return lab


@dataclass
class FilterResult:
    keep: list[int]  # indices into the input, best first (input order)
    labels: list[int]  # the object label of each kept grasp (0: no mask)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def count(self, reason: str) -> int:
        return self.dropped.get(reason, 0)


@dataclass
class GraspFilter:
    """Which grasps to keep, in the order given (best first)."""

    box: WorkspaceBox | None = None
    support_margin: float = 0.0  # > 0: drop grasps whose centre is this close to the support plane
    per_object: int = 0  # > 0 (with a mask): at most this many grasps per object
    mask_radius: int = 3

    def apply(self, centres_out, centres_cam=None, uv=None, plane_cam=None, mask=None, target: int | None = None) -> FilterResult:
        """``centres_out``: grasp centres in the output frame (N x 3; the box is there);
        ``centres_cam``: the same in the camera frame (the support plane is there); ``uv``: the
        grasp centres in the image (for the mask); ``target``: keep only that object's grasps."""
        n = len(centres_out)
        ok = np.ones(n, dtype=bool)
        dropped: dict[str, int] = {}

        def drop(reason, bad):
            bad = bad & ok
            if np.any(bad):
                dropped[reason] = dropped.get(reason, 0) + int(np.count_nonzero(bad))
                ok[bad] = False

        if self.box is not None and n:
            drop("outside_workspace", ~self.box.contains(centres_out))
        if self.support_margin > 0 and plane_cam is not None and centres_cam is not None and n:
            nrm, off = plane_cam
            h = np.asarray(centres_cam, dtype=np.float64).reshape(-1, 3) @ np.asarray(nrm) - off
            drop("on_support_plane", h < self.support_margin)
        labels = np.zeros(n, dtype=np.int64)
        if mask is not None and n:
            if uv is None:
                raise WorkspaceError("an instance mask needs the grasps' image coordinates")
            labels = object_labels(mask, uv, self.mask_radius)
            drop("off_object", labels == 0)
            if target is not None:
                drop("not_target", labels != int(target))
            if self.per_object > 0:
                seen: dict[int, int] = {}
                extra = np.zeros(n, dtype=bool)
                for i in range(n):
                    if ok[i]:
                        seen[labels[i]] = seen.get(labels[i], 0) + 1
                        extra[i] = seen[labels[i]] > self.per_object
                drop("beyond_per_object", extra)
        elif target is not None:
            raise WorkspaceError("a target object needs an instance mask (none received on object_masks)")
        keep = [int(i) for i in np.nonzero(ok)[0]]
        return FilterResult(keep, [int(labels[i]) for i in keep], dropped)


#: ``support_plane`` choices: ``off``; ``clamp``: the plane is fitted in the depth image and limits
#: how deep a grasp goes (fingertips above it); ``remove``: clamp, and grasps on the plane are dropped.
SUPPORT_PLANE_MODES = ("off", "clamp", "remove")


@dataclass
class Selection:
    """What :func:`select_grasps` kept: the grasps (best first), their object labels, why the others
    were dropped, and the support plane (camera optical frame; None when off or not fitted)."""

    grasps: list
    labels: list[int]
    dropped: dict[str, int]
    plane_cam: tuple | None


def select_grasps(grasps, T=None, box: WorkspaceBox | None = None, support_plane: str = "off", support_margin: float = 0.01,
                  depth=None, cam: CameraIntrinsics | None = None, mask=None, target: int | None = None, per_object: int = 0,
                  mask_radius: int = 3) -> Selection:
    """Keep the detector's grasps (``MetricGrasp`` list, camera optical frame, best first) that lie
    inside ``box`` (output frame: ``T`` maps camera -> output, None = the camera frame), off the
    support plane (``support_plane`` ``remove``; fitted in ``depth`` with ``cam``), on an object of
    ``mask`` (HxW labels aligned with the image), on object ``target`` when given, at most
    ``per_object`` per object. The node and the benchmark's clutter check call this one function."""
    if support_plane not in SUPPORT_PLANE_MODES:
        raise WorkspaceError(f"support_plane must be one of {SUPPORT_PLANE_MODES}, got {support_plane!r}")
    plane = None
    if support_plane != "off" and depth is not None and cam is not None and grasps:
        from .preprocess import depth_to_metres

        plane = camera_support_plane(depth_to_metres(depth)[0], cam)
    if mask is not None and depth is not None and np.asarray(mask).shape[:2] != np.asarray(depth).shape[:2]:
        raise WorkspaceError(f"the instance mask ({np.asarray(mask).shape[1]}x{np.asarray(mask).shape[0]}) is not the size of the "
                             f"images ({np.asarray(depth).shape[1]}x{np.asarray(depth).shape[0]}): it must be aligned with the colour image")
    cam_pts = np.array([np.asarray(g.position, dtype=np.float64) for g in grasps]).reshape(-1, 3)
    out_pts = cam_pts if T is None else T.apply(cam_pts).reshape(-1, 3)
    uv = np.array([(g.u, g.v) for g in grasps], dtype=np.float64).reshape(-1, 2)
    flt = GraspFilter(box=box, support_margin=support_margin if support_plane == "remove" else 0.0, per_object=per_object,
                      mask_radius=mask_radius)
    r = flt.apply(out_pts, cam_pts, uv, plane, mask, target)
    return Selection([grasps[i] for i in r.keep], r.labels, r.dropped, plane)
