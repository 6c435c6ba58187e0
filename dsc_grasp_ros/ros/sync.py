"""Stamp pairing, a latest-frame-only slot, a readers-writer lock and rolling statistics (no
rclpy, thread-safe).

``message_filters`` is not a dependency: :class:`StampPairer` pairs color and depth messages
whose header stamps are equal or within a tolerance, and :class:`LatestSlot` keeps only the
newest matched pair for the inference threads (each pair goes to one of them), counting the ones
it overwrites as dropped.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass
class FramePair:
    """A color and a depth message with matching stamps, plus bookkeeping."""

    color: Any
    depth: Any
    stamp_ns: int
    info: Any = None
    received: float = field(default_factory=time.perf_counter)
    received_wall: float = field(default_factory=time.time)
    #: The order the node queued it in (increasing with the stamp, also across a clock jump back);
    #: None: not ordered (a pair handed to the per-frame path directly)
    seq: int | None = None


class StampPairer:
    """Pairs two message streams by stamp (nanoseconds).

    ``add_color`` / ``add_depth`` return a :class:`FramePair` when the new message completes a
    pair (the nearest partner within ``tolerance_ns``), else ``None``. Messages older than a
    completed pair, and messages pushed out of the small buffers, are counted as unmatched, per
    stream (``unmatched_color`` / ``unmatched_depth``); :meth:`pending` says how many of each still
    wait for a partner. Every color message added is, at any time, in exactly one of: a returned
    pair, ``unmatched_color``, or ``pending()[0]`` (and the same for depth).
    """

    def __init__(self, tolerance_ns: int = 0, buffer_size: int = 10):
        self.tolerance_ns = int(tolerance_ns)
        self.buffer_size = int(buffer_size)
        self._color: "collections.OrderedDict[int, Any]" = collections.OrderedDict()
        self._depth: "collections.OrderedDict[int, Any]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self.unmatched_color = 0
        self.unmatched_depth = 0
        self._unmatched_at_pair = 0
        #: |stamp difference| (ns) between the last message that found no partner and the nearest
        #: buffered message of the other stream (None: the other stream had nothing buffered)
        self.last_gap_ns: int | None = None

    @property
    def unmatched(self) -> int:
        """Messages of either stream that will never be paired."""
        return self.unmatched_color + self.unmatched_depth

    @property
    def unmatched_since_pair(self) -> int:
        """Messages lost since the last pair formed (or since the start): a stream that stopped
        pairing makes this grow while nothing pairs."""
        return self.unmatched - self._unmatched_at_pair

    def pending(self) -> tuple[int, int]:
        """(color, depth) messages buffered, still waiting for a partner."""
        with self._lock:
            return len(self._color), len(self._depth)

    def add_color(self, stamp_ns: int, msg) -> FramePair | None:
        return self._add(stamp_ns, msg, self._color, self._depth, color_first=True)

    def add_depth(self, stamp_ns: int, msg) -> FramePair | None:
        return self._add(stamp_ns, msg, self._depth, self._color, color_first=False)

    def clear(self) -> None:
        """Forget the buffered messages (counted as unmatched: they will never be paired)."""
        with self._lock:
            self.unmatched_color += len(self._color)
            self.unmatched_depth += len(self._depth)
            self._color.clear()
            self._depth.clear()
            self._unmatched_at_pair = self.unmatched  # a fresh start (activate): not a stall

    def _add(self, stamp, msg, mine, other, color_first) -> FramePair | None:
        with self._lock:
            best, best_dt = None, None
            for s in other:
                dt = abs(s - stamp)
                if dt <= self.tolerance_ns and (best_dt is None or dt < best_dt):
                    best, best_dt = s, dt
            if best is None:
                if other:
                    self.last_gap_ns = min(abs(s - stamp) for s in other)
                if stamp in mine:  # a second message of the same stamp replaces the first: that one is lost
                    self._count(color_first, 1)
                mine[stamp] = msg
                while len(mine) > self.buffer_size:
                    mine.popitem(last=False)
                    self._count(color_first, 1)
                return None
            partner = other.pop(best)
            # Everything older than this pair can no longer be matched in order: drop it.
            for buf, is_color in ((mine, color_first), (other, not color_first)):
                old = [s for s in buf if s <= max(stamp, best)]
                for s in old:
                    del buf[s]
                self._count(is_color, len(old))
            self._unmatched_at_pair = self.unmatched
            color, depth = (msg, partner) if color_first else (partner, msg)
            color_stamp = stamp if color_first else best
            return FramePair(color=color, depth=depth, stamp_ns=color_stamp)

    def _count(self, is_color: bool, n: int) -> None:
        if is_color:
            self.unmatched_color += n
        else:
            self.unmatched_depth += n


class LatestSlot:
    """Holds at most one item; ``put`` overwrites (counting a drop), ``get`` blocks for one. Several
    threads may ``get``: each item goes to one of them."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._closed = False
        self.dropped = 0

    def put(self, item) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def get(self, timeout: float | None = None):
        """The newest item, or ``None`` on timeout or after :meth:`close`."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        with self._cond:
            self._item = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._item = None


class ReadWriteLock:
    """Many readers or one writer. A waiting writer goes first: readers that arrive after it wait
    until it is done, so a stream of readers cannot starve it. Not re-entrant.

    ``with lock.read(): ...`` / ``with lock.write(): ...``
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self):
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self):
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class RateMeter:
    """Events per second over a sliding window of ``window`` seconds."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.window = window
        self._clock = clock
        self._t: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self.total = 0

    def tick(self) -> None:
        with self._lock:
            self.total += 1
            now = self._clock()
            self._t.append(now)
            self._trim(now)

    def rate(self) -> float:
        with self._lock:
            now = self._clock()
            self._trim(now)
            if len(self._t) < 2:
                return 0.0
            span = max(now - self._t[0], self._t[-1] - self._t[0])
            return (len(self._t) - 1) / span if span > 0 else 0.0

    def _trim(self, now) -> None:
        while self._t and now - self._t[0] > self.window:
            self._t.popleft()


class StageStats:
    """Rolling per-stage durations (seconds): median and p95 over the last ``size`` frames."""

    def __init__(self, size: int = 300):
        self.size = size
        self._d: dict[str, collections.deque] = {}
        self._lock = threading.Lock()

    def add(self, timings: dict[str, float]) -> None:
        with self._lock:
            for k, v in timings.items():
                self._d.setdefault(k, collections.deque(maxlen=self.size)).append(float(v))

    def summary(self) -> dict[str, tuple[float, float, int]]:
        """``{stage: (median_s, p95_s, n)}``."""
        with self._lock:
            out = {}
            for k, d in self._d.items():
                if d:
                    a = np.fromiter(d, dtype=np.float64)
                    out[k] = (float(np.median(a)), float(np.percentile(a, 95)), len(a))
            return out
