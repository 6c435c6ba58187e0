"""The grasp tracker on known candidate streams: association, hysteresis, jaw symmetry and wrap,
smoothing, loss and re-acquisition, hold, near range and lock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsc_grasp_ros.core.geometry import quaternion_to_rotation, rotation_to_quaternion
from dsc_grasp_ros.core.tracking import (
    Candidate, GraspTracker, TrackerConfig, closing_axis_angle, jaw_flip, nearest_flip,
)

DOWN = np.array([0.0, 0.0, -1.0])  # the approach: straight down in the base frame


def top_grasp(yaw_deg: float) -> np.ndarray:
    """A top-down TCP orientation (+z down) whose closing axis (+y) has the given yaw in the base frame."""
    yaw = math.radians(yaw_deg)
    y = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    z = DOWN
    return rotation_to_quaternion(np.column_stack([np.cross(y, z), y, z]))


def cand(x, y, yaw=0.0, q=0.8, w=0.04, i=0, z=0.05):
    return Candidate(np.array([x, y, z]), top_grasp(yaw), w, q, i)


def yaw_of(q) -> float:
    y = quaternion_to_rotation(q)[:, 1]
    return math.degrees(math.atan2(y[1], y[0]))


A, B = (0.53, 0.03), (0.41, -0.08)  # two objects whose best grasps alternate (as on the demo bag)


def test_two_alternating_objects_keep_one_target():
    tr = GraspTracker(TrackerConfig(switch_margin=0.1, switch_frames=3))
    ids, states = set(), []
    for k in range(40):
        qa, qb = (0.80, 0.78) if k % 2 == 0 else (0.78, 0.80)  # the argmax alternates every frame
        t = tr.update([cand(*A, q=qa, i=0), cand(*B, q=qb, i=1)], stamp=k / 10)
        ids.add(t.id)
        states.append(t.state)
    assert len(ids) == 1 and tr.switches == 0
    assert np.allclose(tr.target.position[:2], A, atol=1e-9)
    assert states[0] == "acquired" and set(states[1:]) == {"tracking"}


def test_a_clearly_better_grasp_takes_over_after_switch_frames():
    tr = GraspTracker(TrackerConfig(switch_margin=0.1, switch_frames=3))
    tr.update([cand(*A, q=0.6)], 0.0)
    first = tr.target.id
    states = [tr.update([cand(*A, q=0.6, i=1), cand(*B, q=0.9, i=0)], 0.1 * k).state for k in range(1, 5)]
    assert states == ["tracking", "tracking", "switched", "tracking"]
    assert tr.target.id != first and np.allclose(tr.target.position[:2], B) and tr.switches == 1


def test_a_challenger_that_does_not_persist_resets_the_count():
    tr = GraspTracker(TrackerConfig(switch_margin=0.1, switch_frames=3))
    tr.update([cand(*A, q=0.6)], 0.0)
    for k in range(1, 13):  # two frames of a better B, one frame without it, over and over
        better = k % 3 != 0
        tr.update([cand(*A, q=0.6)] + ([cand(*B, q=0.9, i=1)] if better else []), 0.1 * k)
    assert tr.switches == 0 and np.allclose(tr.target.position[:2], A)


def test_lock_never_switches_while_the_target_is_seen():
    tr = GraspTracker(TrackerConfig(lock=True, switch_frames=1))
    tr.update([cand(*A, q=0.5)], 0.0)
    for k in range(1, 10):
        tr.update([cand(*B, q=0.99), cand(*A, q=0.5, i=1)], 0.1 * k)
    assert tr.switches == 0 and np.allclose(tr.target.position[:2], A)


@pytest.mark.parametrize("twin", [False, True])
def test_jaw_symmetric_twin_is_the_same_grasp_and_publishes_no_flip(twin):
    """A grasp at yaw 89 deg and its twin at -91 (or -89: wrap) are one grasp: associated, and the
    published closing axis keeps its sense (no 180-degree wrist turn)."""
    tr = GraspTracker(TrackerConfig(smoothing=0.0))
    tr.update([cand(*A, yaw=89.0)], 0.0)
    yaws = []
    for k in range(1, 8):
        raw = -91.0 if k % 2 else 89.0
        c = cand(*A, yaw=raw)
        if twin:
            c.orientation = jaw_flip(c.orientation)
        yaws.append(yaw_of(tr.update([c], 0.1 * k).orientation))
    assert tr.switches == 0 and tr.target.id == 1
    assert all(abs(((y - 89.0 + 180) % 360) - 180) < 1e-6 for y in yaws), yaws


def test_wrap_across_plus_minus_90_is_a_small_angle():
    assert math.degrees(closing_axis_angle(top_grasp(89.0), top_grasp(-89.0))) == pytest.approx(2.0, abs=1e-6)
    assert math.degrees(closing_axis_angle(top_grasp(10.0), jaw_flip(top_grasp(10.0)))) == pytest.approx(0.0, abs=1e-6)
    assert math.degrees(closing_axis_angle(top_grasp(0.0), top_grasp(90.0))) == pytest.approx(90.0, abs=1e-6)


def test_smoothing_averages_position_and_angle_across_the_wrap():
    tr = GraspTracker(TrackerConfig(smoothing=0.5))
    tr.update([cand(0.5, 0.0, yaw=88.0)], 0.0)
    t = tr.update([cand(0.51, 0.0, yaw=-88.0)], 0.1)  # 4 degrees away through the wrap
    assert t.position[0] == pytest.approx(0.505)
    assert abs(((yaw_of(t.orientation) - 90.0 + 180) % 360) - 180) < 1e-6  # halfway: 90, not 0
    assert t.width == pytest.approx(0.04)


def test_jitter_is_reduced_on_a_static_scene():
    rng = np.random.default_rng(0)
    tr = GraspTracker(TrackerConfig(smoothing=0.7))
    raw, out = [], []
    for k in range(200):
        c = cand(0.5 + rng.normal(0, 0.003), rng.normal(0, 0.003), yaw=rng.normal(30, 3))
        raw.append(c.position[:2].copy())
        out.append(tr.update([c], k / 30).position[:2].copy())
    step_raw = np.median(np.linalg.norm(np.diff(raw, axis=0), axis=1))
    step_out = np.median(np.linalg.norm(np.diff(out[10:], axis=0), axis=1))
    assert step_out < 0.5 * step_raw


def test_a_target_out_of_view_is_held_then_lost_then_reacquired():
    tr = GraspTracker(TrackerConfig(hold_s=0.5))
    tr.update([cand(*A)], 0.0)
    t = tr.update([], 0.2)
    assert t.state == "held" and t.index is None and t.id == 1
    t = tr.update([cand(*B, q=0.9)], 0.4)  # only another object seen, within the hold: keep holding A
    assert t.state == "held" and np.allclose(t.position[:2], A)
    assert tr.update([], 0.7) is None  # 0.7 s since A was last seen: lost
    t = tr.update([cand(*B, q=0.9)], 0.8)
    assert t.state == "acquired" and t.id == 2 and np.allclose(t.position[:2], B)


def test_held_beyond_the_hold_time_with_others_seen_reacquires_the_best():
    tr = GraspTracker(TrackerConfig(hold_s=0.3))
    tr.update([cand(*A)], 0.0)
    t = tr.update([cand(*B, q=0.5), cand(0.2, 0.2, q=0.7, i=1)], 1.0)
    assert t.state == "acquired" and np.allclose(t.position[:2], (0.2, 0.2))


def test_near_range_holds_the_target_without_association():
    tr = GraspTracker(TrackerConfig(near_range_m=0.12, hold_s=5.0))
    tr.update([cand(*A)], 0.0, scene_depth=0.3)
    t = tr.update([cand(0.3, 0.3, q=0.99)], 0.1, scene_depth=0.08)  # too close: a spurious far grasp is ignored
    assert t.state == "held" and np.allclose(t.position[:2], A)
    assert tr.update([cand(*A)], 0.2, scene_depth=0.2).state == "tracking"
    # the final approach runs on the held target for as long as the camera stays that close,
    # beyond hold_s (a descent can take longer than the hold time)
    short = GraspTracker(TrackerConfig(near_range_m=0.12, hold_s=0.5))
    short.update([cand(*A)], 0.0, scene_depth=0.3)
    for k in range(1, 30):
        t = short.update([], 0.1 * k, scene_depth=0.08)
        assert t is not None and t.state == "held" and t.id == 1
    assert short.update([], 3.1, scene_depth=0.3) is None  # out of near range and unseen for long: lost


def test_a_reference_orientation_picks_the_flip_of_a_new_target():
    ref = top_grasp(170.0)  # e.g. the current TCP: closing axis at 170 degrees
    tr = GraspTracker()
    t = tr.update([cand(*A, yaw=-15.0)], 0.0, reference=ref)
    assert abs(((yaw_of(t.orientation) - 165.0 + 180) % 360) - 180) < 1e-6  # 165, not -15: 5 degrees of turn
    assert np.allclose(nearest_flip(top_grasp(-15.0), quaternion_to_rotation(ref)), t.orientation) or \
        np.allclose(nearest_flip(top_grasp(-15.0), quaternion_to_rotation(ref)), -t.orientation)


def test_settings_out_of_range_are_refused():
    with pytest.raises(ValueError, match="smoothing"):
        TrackerConfig(smoothing=1.0)
    with pytest.raises(ValueError, match="switch_frames"):
        TrackerConfig(switch_frames=0)


def test_switch_and_smoothing_take_the_same_time_at_10_and_30_frames_per_second():
    """The hysteresis and the smoothing are defined at 10 frames/s and keep their durations at other
    rates: a better challenger replaces the target after 0.2 s (switch_frames 3) at 10 and at 30
    frames/s, and a step of the object is followed with the same time constant."""
    A, B = (0.5, 0.0), (0.6, 0.1)
    switched_at = {}
    for hz in (10, 30):
        tr = GraspTracker(TrackerConfig(switch_margin=0.1, switch_frames=3))
        tr.update([cand(*A, q=0.8)], 0.0)
        for k in range(1, 40):
            t = tr.update([cand(*A, q=0.6), cand(*B, q=0.9, i=1)], 1.0 + k / hz)
            if t.state == "switched":
                switched_at[hz] = (round((k - 1) / hz, 3), k)  # time since the challenger's first frame (k = 1), frames
                break
    assert switched_at == {10: (0.2, 3), 30: (0.2, 7)}  # 3 frames at 10 Hz = 0.2 s; at 30 Hz 7 frames, the same 0.2 s
    # a 10 cm step, followed for 0.3 s: the same remaining lag at both rates
    lag = {}
    for hz in (10, 30):
        tr = GraspTracker(TrackerConfig(smoothing=0.5, gate_m=0.2))
        tr.update([cand(0.5, 0.0)], 0.0)
        for k in range(1, int(0.3 * hz) + 1):
            t = tr.update([cand(0.6, 0.0)], k / hz)
        lag[hz] = 0.6 - float(t.position[0])
    assert lag[10] == pytest.approx(0.1 * 0.5**3) and lag[30] == pytest.approx(lag[10], rel=1e-6)
