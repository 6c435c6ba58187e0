"""Grasp tracking: one stable target across frames for a closed-loop controller. No ROS imports.

A detector gives a best-first list of grasps per frame; its argmax can jump between two objects
of similar quality from one frame to the next, and a servo controller following it would
oscillate. :class:`GraspTracker` keeps one *target* in the robot frame instead:

* **association**: the grasp of this frame nearest the target by 3-D position and closing-axis
  angle (jaw-symmetric: a grasp and its 180-degree twin about the approach are the same grasp),
  within ``gate_m`` and ``gate_deg``;
* **hysteresis**: another grasp replaces a target that is still seen only when its quality beats
  the target's by ``switch_margin`` for ``switch_frames`` frames in a row at 10 frames/s (the same
  challenger, associated frame to frame), i.e. for ``(switch_frames - 1) x 0.1`` s and at least
  ``switch_frames`` frames at any rate; ``lock`` never switches while the target is seen;
* **smoothing**: position and width exponentially, orientation by slerp after the new grasp was
  turned onto the target's jaw sense (no 180-degree wrap in the average); ``smoothing`` is the
  weight of the previous estimate per 0.1 s (``smoothing ** (dt / 0.1)`` per frame), so the
  target follows the object equally fast at 10 and at 30 frames/s;
* **loss**: a target not seen is *held* (the last estimate, flagged) for ``hold_s``, then
  *lost*; the best grasp of a later frame is acquired as a new target;
* **near range**: when the caller says the camera is too close to see the object whole (e.g. the
  scene's median depth under ``near_range_m``), the target is held without association, for as
  long as the camera stays that close (the final approach runs on it);
* **wrist flip**: of the two jaw-symmetric orientations, the published one has its closing axis
  nearest a reference (the previous target, or a frame the caller passes, e.g. the current TCP),
  so that a controller never turns the wrist by 180 degrees for nothing.

Poses use the TCP convention of :mod:`~dsc_grasp_ros.core.conventions`: +z approach, jaws close
along +-y; quaternions ``(x, y, z, w)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .geometry import quaternion_multiply, quaternion_slerp, quaternion_to_rotation

__all__ = ["TrackerConfig", "Candidate", "Target", "GraspTracker", "STATES", "jaw_flip", "closing_axis_angle", "nearest_flip"]

#: ``tracking``: the target was seen this frame; ``acquired``: a new target after none or a loss;
#: ``switched``: a better grasp replaced a target that was still seen; ``held``: the last estimate,
#: not seen this frame (or at near range); ``lost``: no target.
STATES = ("tracking", "acquired", "switched", "held", "lost")

#: The frame period (s) at which ``switch_frames`` and ``smoothing`` are defined (the rate they were
#: tuned at: the wrist-camera benchmark's 10 frames/s); other rates get the same durations.
REFERENCE_PERIOD_S = 0.1

#: a half turn about the TCP's z (approach) axis: the same grasp with the jaws swapped
_HALF_TURN_Z = np.array([0.0, 0.0, 1.0, 0.0])


@dataclass
class TrackerConfig:
    gate_m: float = 0.03  # largest 3-D distance (m) at which a grasp is the target seen again
    gate_deg: float = 30.0  # largest closing-axis angle (deg, modulo 180) for the same
    switch_margin: float = 0.1  # quality a challenger must add to the target's to replace it ...
    switch_frames: int = 3  # ... in this many frames in a row at 10 frames/s (the same duration at other rates)
    smoothing: float = 0.5  # weight of the previous estimate per 0.1 s (0: none, the raw grasp)
    hold_s: float = 1.0  # how long (s) an unseen target is held before it is lost
    lock: bool = False  # never switch while the target is seen
    near_range_m: float = 0.0  # scene depth (m) under which the target is held without association (0: off)

    def __post_init__(self):
        checks = {"gate_m": self.gate_m > 0, "gate_deg": 0 < self.gate_deg <= 90, "switch_margin": self.switch_margin >= 0,
                  "switch_frames": self.switch_frames >= 1, "smoothing": 0 <= self.smoothing < 1, "hold_s": self.hold_s >= 0,
                  "near_range_m": self.near_range_m >= 0}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError("tracker settings out of range: " + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))


#: valid range of each numeric tracker setting (also the ROS parameter ranges)
TRACKER_RANGES = {"gate_m": (0.001, 0.5), "gate_deg": (1.0, 90.0), "switch_margin": (0.0, 1.0), "switch_frames": (1, 100),
                  "smoothing": (0.0, 0.95), "hold_s": (0.0, 60.0), "near_range_m": (0.0, 2.0)}
#: what each tracker setting does (the node's ``track_*`` parameter descriptions)
TRACKER_HELP = {
    "gate_m": "Largest 3-D distance (m) at which a grasp of a new frame is the tracked target seen again.",
    "gate_deg": "Largest closing-axis angle (degrees, jaw-symmetric) at which a grasp is the tracked target seen again.",
    "switch_margin": "Quality by which another grasp must beat the target's, switch_frames frames in a row, to replace it.",
    "switch_frames": "Frames in a row (at 10 frames/s; the same duration, (N - 1) x 0.1 s, and at least N frames at any rate) "
                     "another grasp must be better by switch_margin before the target switches to it.",
    "smoothing": "Weight of the previous estimate per 0.1 s in the updates of position, orientation (slerp) and width "
                 "(the same time constant at any frame rate); 0 = none.",
    "hold_s": "How long (s) a target that is not seen is held (published as held) before it is lost and a new one acquired.",
    "lock": "Never switch away from a target while it is seen (re-acquire only after it is lost).",
    "near_range_m": "Scene depth (m, median of the image centre) under which the target is held without association, "
                    "for as long as the camera stays that close (the camera cannot see the object whole); 0 = off.",
}


@dataclass
class Candidate:
    """One grasp of a frame in the tracking frame (the robot base)."""

    position: np.ndarray  # (3,) m
    orientation: np.ndarray  # (4,) x, y, z, w
    width: float  # m
    quality: float
    index: int = 0  # its place in the frame's best-first list


@dataclass
class Target:
    id: int
    position: np.ndarray
    orientation: np.ndarray
    width: float
    quality: float
    state: str
    first_seen: float  # s, stamp of the acquisition
    last_seen: float  # s, stamp of the last frame it was seen in
    age: float = 0.0  # s since acquisition
    frames: int = 1  # frames it was seen in
    index: int | None = None  # its grasp's place in this frame's list (None: not seen this frame)

    def as_dict(self) -> dict:
        return {"id": self.id, "state": self.state, "position": [float(a) for a in self.position],
                "orientation": [float(a) for a in self.orientation], "width": float(self.width), "quality": float(self.quality),
                "age": float(self.age), "frames": int(self.frames), "index": self.index}


def jaw_flip(q) -> np.ndarray:
    """The same grasp with the jaws swapped: a half turn about the TCP's approach axis."""
    return quaternion_multiply(np.asarray(q, dtype=np.float64), _HALF_TURN_Z)


def closing_axis_angle(qa, qb) -> float:
    """Angle (rad, in [0, pi/2]) between the closing axes of two grasps, jaw-symmetric."""
    ya, yb = quaternion_to_rotation(qa)[:, 1], quaternion_to_rotation(qb)[:, 1]
    return float(math.acos(min(1.0, abs(float(ya @ yb)))))


def nearest_flip(q, reference) -> np.ndarray:
    """Of ``q`` and its jaw flip, the one whose closing axis (+y) points most along the
    reference's (a rotation matrix or quaternion); same hemisphere as ``reference`` as a quaternion."""
    q = np.asarray(q, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    y_ref = (ref if ref.shape == (3, 3) else quaternion_to_rotation(ref))[:, 1]
    out = q if float(quaternion_to_rotation(q)[:, 1] @ y_ref) >= 0 else jaw_flip(q)
    if ref.shape == (4,) and float(out @ ref) < 0:
        out = -out  # the same rotation; keeps slerp and a reader's eye on the short way
    return out / np.linalg.norm(out)


@dataclass
class _Challenger:
    candidate: Candidate
    since: float  # stamp of its first frame
    frames: int = 1


class GraspTracker:
    """Feed it every frame's candidates with :meth:`update`; it returns the target (or None)."""

    def __init__(self, cfg: TrackerConfig | None = None):
        self.cfg = cfg or TrackerConfig()
        self.target: Target | None = None
        self._challenger: _Challenger | None = None
        self._next_id = 1
        self.switches = 0  # switches away from a target that was still seen

    def reset(self):
        self.target, self._challenger = None, None

    def _match(self, ref_pos, ref_q, cands: list[Candidate]) -> Candidate | None:
        c, best, best_d = self.cfg, None, math.inf
        for cand in cands:
            d = float(np.linalg.norm(np.asarray(cand.position) - ref_pos))
            if d <= c.gate_m and math.degrees(closing_axis_angle(cand.orientation, ref_q)) <= c.gate_deg and d < best_d:
                best, best_d = cand, d
        return best

    def _acquire(self, cand: Candidate, stamp: float, state: str, reference) -> Target:
        q = np.asarray(cand.orientation, dtype=np.float64)
        if reference is not None:
            q = nearest_flip(q, reference)
        t = Target(self._next_id, np.asarray(cand.position, dtype=np.float64).copy(), q, float(cand.width), float(cand.quality),
                   state, stamp, stamp, index=cand.index)
        self._next_id += 1
        self._challenger = None
        return t

    def update(self, candidates: list[Candidate], stamp: float, reference=None, scene_depth: float | None = None) -> Target | None:
        """One frame: ``candidates`` best first (may be empty), ``stamp`` in seconds, ``reference``
        an orientation (quaternion or 3x3) whose closing axis new targets should follow (e.g. the
        current TCP; the previous target is the reference while one is tracked), ``scene_depth`` the
        frame's median depth (m) for the near-range hold. Returns the target, or None when lost."""
        c, t = self.cfg, self.target
        cands = sorted(candidates, key=lambda g: -float(g.quality))
        near = c.near_range_m > 0 and scene_depth is not None and scene_depth < c.near_range_m
        if t is not None and near:
            return self._unseen(stamp, expire=False)  # too close to see it: held while the camera stays this close
        if t is not None and not cands:
            return self._unseen(stamp)
        if t is None:
            if not cands:
                return None
            self.target = self._acquire(cands[0], stamp, "acquired", reference)
            return self.target
        seen = self._match(t.position, t.orientation, cands)
        if seen is None:
            if stamp - t.last_seen <= c.hold_s:
                return self._unseen(stamp)
            self.target = self._acquire(cands[0], stamp, "acquired", reference)  # lost, then re-acquired
            return self.target
        best_other = next((g for g in cands if g is not seen), None)
        if not c.lock and best_other is not None and best_other.quality > seen.quality + c.switch_margin:
            ch = self._challenger
            if ch is not None and self._match(ch.candidate.position, ch.candidate.orientation, [best_other]) is not None:
                ch.candidate, ch.frames = best_other, ch.frames + 1
            else:
                self._challenger = ch = _Challenger(best_other, stamp)
            # switch_frames frames at 10 frames/s = (switch_frames - 1) periods; at least switch_frames frames
            held_for = stamp - ch.since + 1e-6
            if ch.frames >= c.switch_frames and held_for >= (c.switch_frames - 1) * REFERENCE_PERIOD_S:
                self.switches += 1
                self.target = self._acquire(best_other, stamp, "switched", t.orientation)
                return self.target
        else:
            self._challenger = None
        self._follow(t, seen, stamp)
        return t

    def _unseen(self, stamp: float, expire: bool = True) -> Target | None:
        t = self.target
        if expire and stamp - t.last_seen > self.cfg.hold_s:
            self.target = None
            self._challenger = None
            return None
        t.state, t.index, t.age = "held", None, stamp - t.first_seen
        return t

    def _follow(self, t: Target, g: Candidate, stamp: float):
        dt = stamp - t.last_seen
        # the weight per 0.1 s; a frame of another period gets the weight of its own length
        a = self.cfg.smoothing ** (dt / REFERENCE_PERIOD_S) if dt > 0 else self.cfg.smoothing
        q_new = nearest_flip(g.orientation, t.orientation)
        t.position = a * t.position + (1 - a) * np.asarray(g.position, dtype=np.float64)
        t.orientation = quaternion_slerp(t.orientation, q_new, 1 - a)
        t.orientation = t.orientation / np.linalg.norm(t.orientation)
        t.width = a * t.width + (1 - a) * float(g.width)
        t.quality = float(g.quality)
        t.state, t.index = "tracking", g.index
        t.last_seen, t.age, t.frames = stamp, stamp - t.first_seen, t.frames + 1
