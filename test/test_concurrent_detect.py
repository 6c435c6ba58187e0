"""One detector, several threads: ``GraspDetector.detect`` called on two threads at once gives the
same grasps as serial calls on the same frames (the node's ``workers`` share one detector), and the
readers-writer lock that keeps a detector update away from the detects in progress."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from conftest import box_scene
from dsc_grasp_ros.core.inference import GraspDetector
from dsc_grasp_ros.ros.sync import ReadWriteLock

K = np.array([[615.0, 0, 321.5], [0, 612.0, 238.25], [0, 0, 1.0]])

#: approach directions cycled over the frames: the optical axis, and two tilted ones whose virtual
#: views (view down) replace each other in the detector's view cache on every call
APPROACHES = (None, np.array([0.25, 0.0, 1.0]), np.array([0.0, -0.3, 1.0]))
#: (roi_mode, approaches): the scale ROI (its cache is compared and replaced per frame) on the real
#: camera; the square ROI with the virtual views. (The scale ROI's 5 % hysteresis makes a frame's
#: ROI depend on the frames before it, in any order, when real and virtual frames of different
#: depths mix: such frames would differ between two serial orders too.)
CASES = {"scale ROI": ("scale", (None,)), "virtual views": ("square", APPROACHES)}


@pytest.fixture(scope="module")
def detector():
    # the shipped RGB-D model (grasps on every frame); threads=0 keeps the process's torch threads;
    # eager: no compile in the test suite
    return GraspDetector(device="cpu", backend="eager", threads=0, min_quality=0.0, top_k=5, view="down")


def _jobs(approaches):
    boxes = [(0.03, -0.02, 0.06, 0.03, 0.025), (-0.05, 0.02, 0.04, 0.02, 0.04), (0.0, 0.05, 0.08, 0.05, 0.02),
             (0.06, 0.03, 0.03, 0.025, 0.025), (-0.02, -0.06, 0.05, 0.04, 0.03), (0.01, 0.0, 0.07, 0.015, 0.05)]
    out = []
    for i, box in enumerate(boxes):
        rgb, depth = box_scene(K=K, box=box, seed=i)
        out.append((rgb, depth, approaches[i % len(approaches)]))
    return out


def _summary(res) -> list:
    rows = [[g.u, g.v, g.angle, g.width_px, g.quality, g.jaw_px, *g.position, *g.orientation, g.width_m, g.depth_m,
             -1.0 if g.fingers_clear is None else float(g.fingers_clear)] for g in res.grasps]
    return [(res.roi.x, res.roi.y, res.roi.w, res.roi.h), res.view is not None, np.asarray(rows, dtype=np.float64)]


def _detect(det, job):
    rgb, depth, a = job
    return _summary(det.detect(rgb, depth, K, approach=a))


def _same(a, b) -> bool:
    return a[0] == b[0] and a[1] == b[1] and a[2].shape == b[2].shape and np.allclose(a[2], b[2], rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_two_threads_give_the_grasps_of_serial_calls(detector, case):
    roi_mode, approaches = CASES[case]
    detector.update(roi_mode=roi_mode)
    jobs = _jobs(approaches)
    serial = [_detect(detector, job) for job in jobs]
    assert all(len(s[2]) >= 1 for s in serial), "every frame must give grasps for the comparison to mean something"
    assert [s[1] for s in serial] == [a is not None for _, _, a in jobs]  # the tilted approaches ran the virtual view
    backwards = [_detect(detector, job) for job in reversed(jobs)][::-1]
    assert all(_same(b, s) for b, s in zip(backwards, serial)), "the premise: these frames' grasps do not depend on the order"

    rounds = 2
    barrier = threading.Barrier(2)
    found: list[list] = [[], []]
    errors: list[BaseException] = []

    def worker(k: int):
        order = [(j + k) % len(jobs) for j in range(len(jobs))]  # side by side: frame j and j + 1 (other approaches)
        try:
            barrier.wait(timeout=30)
            for _ in range(rounds):
                for j in order:
                    found[k].append((j, _detect(detector, jobs[j])))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(len(f) == rounds * len(jobs) for f in found)
    for k in range(2):
        for j, got in found[k]:
            assert _same(got, serial[j]), f"thread {k}, frame {j}: {got} != serial {serial[j]}"


def test_readers_share_the_lock_and_a_writer_is_alone():
    lock = ReadWriteLock()
    state = {"readers": 0, "max_readers": 0, "writer": False, "overlap": False}
    guard = threading.Lock()
    both_in = threading.Barrier(2)

    def reader():
        with lock.read():
            with guard:
                state["readers"] += 1
                state["max_readers"] = max(state["max_readers"], state["readers"])
                state["overlap"] |= state["writer"]
            both_in.wait(timeout=10)  # two readers inside at once
            time.sleep(0.05)
            with guard:
                state["readers"] -= 1

    def writer():
        with lock.write():
            with guard:
                state["writer"] = True
                state["overlap"] |= state["readers"] > 0
            time.sleep(0.05)
            with guard:
                state["writer"] = False

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.01)
    w = threading.Thread(target=writer)
    w.start()
    for t in threads + [w]:
        t.join(timeout=10)
    assert state["max_readers"] == 2 and not state["overlap"], state


def test_a_waiting_writer_goes_before_readers_that_come_after_it():
    lock = ReadWriteLock()
    order: list[str] = []
    first_in = threading.Event()
    release = threading.Event()

    def first_reader():
        with lock.read():
            first_in.set()
            release.wait(timeout=10)
            order.append("reader 1")

    def writer():
        with lock.write():
            order.append("writer")

    def late_reader():
        with lock.read():
            order.append("reader 2")

    t1 = threading.Thread(target=first_reader)
    t1.start()
    assert first_in.wait(10)
    tw = threading.Thread(target=writer)
    tw.start()
    time.sleep(0.05)  # the writer waits for reader 1
    t2 = threading.Thread(target=late_reader)
    t2.start()
    time.sleep(0.05)  # reader 2 waits behind the writer, not beside reader 1
    release.set()
    for t in (t1, tw, t2):
        t.join(timeout=10)
    assert order == ["reader 1", "writer", "reader 2"], order
