"""``grasp_node``'s per-frame path, on the inference threads (``workers``): a colour/depth pair and
the newest CameraInfo are checked and converted, the core detector runs, the grasps are
transformed into the output frame and published. Every frame that cannot be processed is skipped
and counted under a reason (:data:`.diagnostics.SKIP_REASONS`) with a throttled warning naming the
problem.

With several workers, frames run side by side and may finish out of order: the tracker update and
the publishing happen under the publishing lock, for a frame newer than the last one published
only (an older one is dropped and counted as ``superseded``). What one frame's path hands to a
later step of the same frame (the GraspPlanning request it answers, the workspace selection's
counts) is kept per thread."""

from __future__ import annotations

import sys
import time

import numpy as np
from std_msgs.msg import Header

from . import conversions as conv


class TransformUnavailable(RuntimeError):
    pass


class FrameMixin:
    """The processing side of :class:`~.grasp_node.GraspNode` (uses ``self._camera_to_target`` and
    ``self._publish``)."""

    # per-thread facts of the frame in progress, read by .planning (each worker has its own frame)
    @property
    def _frame_received(self) -> float:
        return getattr(self._frame_local, "received", -1.0)

    @_frame_received.setter
    def _frame_received(self, value: float) -> None:
        self._frame_local.received = value

    @property
    def _last_selection(self) -> tuple:
        return getattr(self._frame_local, "selection", (0, {}))

    @_last_selection.setter
    def _last_selection(self, value: tuple) -> None:
        self._frame_local.selection = value

    def _work(self, stop=None) -> None:
        """One inference thread: runs until ``stop`` (default: the node's stop event) is set."""
        stop = stop if stop is not None else self._stop
        while not stop.is_set():
            pair = self._slot.get(timeout=0.5)
            if pair is None or stop.is_set():
                continue
            try:
                self._process(pair)
            except Exception as e:  # noqa: BLE001 - the node must survive any frame
                self._skip("detector_error", f"unexpected error on frame {pair.stamp_ns * 1e-9:.3f}: {type(e).__name__}: {e}")

    def _warn(self, key: str, text: str, error: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e9) >= float(self._p("warn_throttle")):
            self._last_warn[key] = now
            n = self._counters[key]
            # (rclpy loggers must not change severity at one call site: two calls)
            if error:
                self.get_logger().error(f"{text} [{key}: {n} so far]")
            else:
                self.get_logger().warning(f"{text} [{key}: {n} so far]")

    def _skip(self, reason: str, text: str, error: bool = False) -> None:
        self._count(reason)
        self._warn(reason, f"frame skipped: {text}", error)
        self._request_failed_frame(reason, text)  # a GraspPlanning request waiting for this frame gets the reason

    def _process(self, pair) -> None:
        t_start = time.perf_counter()
        self._frame_received = pair.received  # which GraspPlanning request this frame answers (.planning)
        color, depth_msg, info = pair.color, pair.depth, self._info  # the newest CameraInfo
        image_header = conv.header_msg(color.header)
        stamp, cam_frame = image_header.stamp, image_header.frame_id
        if not self._stamps_valid(color, depth_msg) or not self._frame_ids_agree(cam_frame, depth_msg, info):
            return
        converted = self._convert(color, depth_msg, info)
        if converted is None:
            return
        rgb, depth, cam = converted
        t_conv = time.perf_counter()
        found = self._detect(rgb, depth, cam, cam_frame, stamp)
        if found is None:
            return
        res, T, t_det, t_tf = found
        self._note_distortion(cam)
        if not self._account_rejections(res):
            return
        selected = self._select(res, T, depth, cam, stamp, cam_frame)  # workspace, support plane, masks (.planning)
        if selected is None:
            return
        labels, plane_out = selected
        if res.grasps and res.grasps[0].fingers_clear is False:  # finger_check prefer: no clear grasp this frame
            self._count("best_grasp_fingers_blocked")
        rows, poses = self._rows_and_poses(res, T)
        if res.grasps and not rows:
            self._skip("non_finite_pose", "no grasp with a finite pose")
            return
        header = Header(stamp=stamp, frame_id=self._p("target_frame") or cam_frame)
        near = self._near_depth(depth)
        moveit = self._moveit_grasps(header, res, T, labels, plane_out)
        with self._pub_lock:  # in stamp order: the tracker, the messages and the statistics
            if not self._in_order(pair):
                return
            target = self._track(rows, stamp.sec + stamp.nanosec * 1e-9, near)
            self._publish(header, rows, poses, res, rgb, image_header, target)
            self._publish_planning(header, moveit)
            self._processed += 1
            self._out_rate.tick()
        t_pub = time.perf_counter()
        self._record_timings(pair, res, stamp, t_start, t_conv, t_det, t_tf, t_pub)

    def _in_order(self, pair) -> bool:
        """Under the publishing lock: whether ``pair`` is newer than the last frame published (then
        it becomes that frame); else it is dropped and counted as superseded. The order is the one the
        pairs were queued in, which is their stamps' (and stays right across a clock jump back, e.g. a
        bag that loops with sim time). A pair without ``seq`` is not ordered."""
        if pair.seq is None:
            return True
        if pair.seq < self._last_seq:
            self._superseded += 1
            return False
        self._last_seq = pair.seq
        return True

    def _near_depth(self, depth) -> float | None:
        """The scene depth the tracker's near-range hold compares (only computed when it is on)."""
        if not self._p("tracking") or self._p("track_near_range_m") <= 0:
            return None
        from ..core.preprocess import scene_depth

        return scene_depth(depth)

    def _stamps_valid(self, color, depth_msg) -> bool:
        """Image stamps are times, never negative (else skipped, counted: a pose stamped before the
        epoch cannot be looked up in tf, nor meant)."""
        for what, msg in (("color", color), ("depth", depth_msg)):
            st = msg.header.stamp
            if st.sec < 0:
                self._skip("negative_stamp", f"the {what} image is stamped {st.sec + st.nanosec * 1e-9:.9f} s, before the epoch: "
                           "check the driver's clock", error=True)
                return False
        return True

    def _frame_ids_agree(self, cam_frame: str, depth_msg, info=None) -> bool:
        """The colour image has a frame id, the depth the same one and the CameraInfo (when it names
        one) too: another camera's intrinsics would give wrong poses (else skipped, counted)."""
        if not cam_frame:
            self._skip(
                "empty_frame_id",
                "the color image has an empty header.frame_id: the grasp pose would have no frame "
                "(set the camera driver's frame id, e.g. camera_color_optical_frame)",
                error=True,
            )
            return False
        if depth_msg.header.frame_id != cam_frame:
            self._skip(
                "frame_id_mismatch",
                f"color frame_id {cam_frame!r} differs from depth frame_id {depth_msg.header.frame_id!r}: "
                "the depth must be aligned to the color camera",
                error=True,
            )
            return False
        info_frame = info.header.frame_id if info is not None else ""
        if info_frame and info_frame != cam_frame:
            self._skip(
                "camera_info_frame_mismatch",
                f"CameraInfo frame_id {info_frame!r} differs from the images' frame_id {cam_frame!r}: these are another "
                "camera's intrinsics (remap color/camera_info to the color camera's camera_info)",
                error=True,
            )
            return False
        return True

    def _convert(self, color, depth_msg, info):
        """``(rgb, depth, camera model)`` of the pair, or None (skipped, counted)."""
        try:
            rgb = conv.color_to_rgb(color)
            depth = conv.depth_to_array(depth_msg)
            if rgb.shape[:2] != depth.shape[:2]:
                raise conv.MessageError(
                    "size_mismatch",
                    f"color ({color.width}x{color.height}) and depth ({depth_msg.width}x{depth_msg.height}) sizes differ: "
                    "subscribe to the depth aligned to color",
                )
            cam = conv.camera_info_intrinsics(info, color.width, color.height)
        except conv.MessageError as e:
            self._skip(e.reason, str(e))
            return None
        self._check_byte_order(depth_msg, depth)
        return rgb, depth, cam

    def _check_byte_order(self, depth_msg, depth) -> None:
        """A depth image flagged with the other byte order than the host's whose depth only makes sense
        byte-swapped (a wrong ``is_bigendian`` flag): counted, warned about and reported in
        /diagnostics (``depth_byte_order``). Images in the host's byte order cost nothing here."""
        if bool(depth_msg.is_bigendian) == (sys.byteorder == "big"):
            self._byte_order_hint = None
            return
        sample = depth[::4, ::4]
        as_read, swapped = _median_m(sample), _median_m(sample.byteswap())
        lo, hi = float(self._p("min_depth")), float(self._p("max_depth"))
        if (lo <= as_read <= hi) or not (lo <= swapped <= hi):
            self._byte_order_hint = None
            return
        self._byte_order_hint = (
            f"depth byte order: the depth image is flagged is_bigendian={int(depth_msg.is_bigendian)}; read that way its "
            f"median depth is {as_read:.2f} m, outside min_depth..max_depth ({lo:g}..{hi:g} m), byte-swapped it is "
            f"{swapped:.2f} m: the driver's is_bigendian flag is probably wrong"
        )
        self._count("depth_byte_order_suspect")
        self._warn("depth_byte_order_suspect", self._byte_order_hint)

    def _detect(self, rgb, depth, cam, cam_frame: str, stamp):
        """Run the detector and look the transform up: ``(result, T, t_detected, t_transformed)`` or
        None (skipped, counted; or the detector was released meanwhile)."""
        from ..core.preprocess import InputError

        T = approach = None
        looked_up = False
        if self._p("approach") == "target_down":  # the descent direction is needed before inference
            try:
                T = self._camera_to_target(cam_frame, stamp)
            except TransformUnavailable as e:
                self._skip("tf_unavailable", str(e))
                return None
            looked_up = True
            if T is not None:  # target_frame's -z in the camera optical frame
                approach = T.matrix[:3, :3].T @ np.array([0.0, 0.0, -1.0])

        with self._det_lock.read():  # shared by the workers; a detector update waits for them
            det = self._detector
            if det is None:
                return None
            try:
                res = det.detect(None if det.modality == "d" else rgb, depth, cam.K, cam.D, cam.distortion_model,
                                 approach=approach)
            except InputError as e:
                self._skip(e.code, str(e))
                return None
        self._last_roi = res.roi
        t_det = time.perf_counter()

        # The transform at the image stamp is looked up after inference: by then tf has usually
        # received it and the lookup does not wait.
        try:
            if not looked_up:
                T = self._camera_to_target(cam_frame, stamp)
        except TransformUnavailable as e:
            self._skip("tf_unavailable", str(e))
            return None
        return res, T, t_det, time.perf_counter()

    def _note_distortion(self, cam) -> None:
        """Say once per configure how the CameraInfo's distortion is used (each message once: a
        distortion that is used does not silence the warning about one that is ignored)."""
        if cam.D is not None and "distortion" not in self._last_warn:
            self._last_warn["distortion"] = time.monotonic()  # once per configure
            self.get_logger().info(f"CameraInfo has non-zero {cam.distortion_model} distortion: grasp pixels are undistorted before deprojection")
        elif cam.ignored_distortion and "distortion_ignored" not in self._last_warn:
            self._last_warn["distortion_ignored"] = time.monotonic()
            self.get_logger().warning(f"CameraInfo distortion model {cam.ignored_distortion!r} is not supported: its non-zero D is ignored "
                                      "(poses off-centre may be wrong; publish rectified images or plumb_bob/equidistant)")

    def _account_rejections(self, res) -> bool:
        """Count the candidates the detector rejected; False when none is left (frame skipped)."""
        if not res.rejected:
            return True
        self._count("rejected_candidates", len(res.rejected))
        for code in res.rejected_codes:
            self._count(f"rejected_{code}")
        if not res.grasps:
            limits = [r for r, c in zip(res.rejected, res.rejected_codes) if c != "no_valid_depth"]
            if limits:
                self._skip("grasps_out_of_limits", f"all {len(res.rejected)} candidates rejected: {limits[0]}")
            else:
                self._skip("no_valid_depth_at_grasp", f"all {len(res.rejected)} candidates rejected: {res.rejected[0]}")
            return False
        self._warn("rejected_candidates", f"{len(res.rejected)} grasp candidates dropped: {res.rejected[0]}")
        return True

    def _record_timings(self, pair, res, stamp, t_start, t_conv, t_det, t_tf, t_pub) -> None:
        timings = dict(res.timings)
        timings.update(
            convert=t_conv - t_start,
            detect=t_det - t_conv,
            transform=t_tf - t_det,
            publish=t_pub - t_tf,
            node_total=t_pub - t_start,
            queue=t_start - pair.received,
            receive_to_publish=t_pub - pair.received,
        )
        # what the ROS layer adds to the core's own stages (conversion, transform, messages, locking)
        timings["node_overhead"] = timings["node_total"] - sum(res.timings.values())
        # stamp -> arrival at the node (camera/driver + transport), when the stamps are wall-clock times
        stamp_s = stamp.sec + stamp.nanosec * 1e-9
        if 0.0 <= pair.received_wall - stamp_s < 10.0:
            timings["stamp_to_receive"] = pair.received_wall - stamp_s
        self._stats.add(timings)
        if self._debug_timings:  # one line per frame (the benchmark pairs them with its end-to-end times)
            self.get_logger().debug(
                f"frame {conv.stamp_to_ns(stamp)} timings_ms " + " ".join(f"{k}={v * 1e3:.3f}" for k, v in sorted(timings.items()))
            )


def _median_m(depth: np.ndarray) -> float:
    """Median of the valid depth in metres (uint16 millimetres or float metres); nan when none."""
    d = depth.astype(np.float64) * (1e-3 if depth.dtype.kind == "u" else 1.0)
    d = d[np.isfinite(d) & (d > 0)]
    return float(np.median(d)) if d.size else float("nan")
