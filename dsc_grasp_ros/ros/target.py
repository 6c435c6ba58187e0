"""``grasp_node``'s tracked target: each processed frame's grasps (in the output frame) go through the
core :class:`~dsc_grasp_ros.core.tracking.GraspTracker`; ``~/grasp`` publishes its target and
``~/grasp_target_state`` (std_msgs/String, one JSON object) says which target it is: id, state
(acquired / tracking / switched / held / lost), age, frames seen and switches so far."""

from __future__ import annotations

import json
import threading

import numpy as np

from ..core.tracking import TRACKER_HELP, Candidate, GraspTracker, Target, TrackerConfig


def tracker_config(get) -> TrackerConfig:
    """The tracker settings from the ``track_*`` parameters (``get(name)`` reads one)."""
    return TrackerConfig(**{name: get(f"track_{name}") for name in TRACKER_HELP})


def target_state(t: Target | None, switches: int, stamp_s: float) -> str:
    doc = {"stamp": round(stamp_s, 9), "switches": switches}
    if t is None:
        doc.update(state="lost", id=None)
    else:
        doc.update(id=t.id, state=t.state, age_s=round(t.age, 3), frames=t.frames, index=t.index, quality=round(t.quality, 4),
                   width_m=round(t.width, 5), position=[round(float(a), 5) for a in t.position],
                   orientation=[round(float(a), 6) for a in t.orientation])
    return json.dumps(doc)


class TargetMixin:
    """The tracking side of :class:`~.grasp_node.GraspNode` (uses ``self._p``)."""

    def _init_target(self) -> None:
        self._track_lock = threading.Lock()
        self._tracker = GraspTracker(tracker_config(self._p))
        self._last_target: Target | None = None

    def _reset_target(self) -> None:
        with self._track_lock:
            self._tracker = GraspTracker(tracker_config(self._p))
            self._last_target = None

    def _retune_target(self, changes: dict) -> str | None:
        """Apply changed ``track_*``/``tracking`` parameters; the reason they are refused, or None."""
        values = {name: changes.get(f"track_{name}", self._p(f"track_{name}")) for name in TRACKER_HELP}
        try:
            cfg = TrackerConfig(**values)
        except (ValueError, TypeError) as e:
            return str(e)
        with self._track_lock:
            if "tracking" in changes:
                self._tracker = GraspTracker(cfg)
                self._last_target = None
            else:
                self._tracker.cfg = cfg  # the current target is kept
        return None

    def _track(self, rows: list, stamp_s: float, scene_depth: float | None):
        """The target for this frame's candidate rows (best first, output frame): ``(position,
        orientation)`` to publish on ``~/grasp`` (None: nothing to publish) and the JSON state."""
        if not self._p("tracking"):
            return ((np.asarray(rows[0][0:3]), np.asarray(rows[0][3:7])) if rows else None), None
        cands = [Candidate(np.asarray(r[0:3], dtype=np.float64), np.asarray(r[3:7], dtype=np.float64), float(r[7]), float(r[8]), i)
                 for i, r in enumerate(rows)]
        with self._track_lock:
            t = self._tracker.update(cands, stamp_s, scene_depth=scene_depth)
            self._last_target = t
            state = target_state(t, self._tracker.switches, stamp_s)
        return ((t.position.copy(), t.orientation.copy()) if t is not None else None), state
