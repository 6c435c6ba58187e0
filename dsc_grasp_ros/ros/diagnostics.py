"""``grasp_node``'s counters, its periodic summary line and its ``/diagnostics`` status."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

#: Counter names for skipped frames, in the order the summary lists them.
SKIP_REASONS = (
    "unsupported_encoding",
    "bad_image_size",
    "bad_image_step",
    "bad_image_data_size",
    "truncated_message",
    "empty_frame_id",
    "size_mismatch",
    "frame_id_mismatch",
    "camera_info_frame_mismatch",
    "negative_stamp",
    "missing_camera_info",
    "bad_camera_info",
    "camera_info_size_mismatch",
    "all_invalid_depth",
    "depth_wrong_unit",
    "image_too_small",
    "bad_roi",
    "bad_image",
    "missing_image",
    "no_valid_depth_at_grasp",
    "grasps_out_of_limits",
    "non_finite_pose",
    "tf_unavailable",
    "bad_approach",
    "invalid_input",
    "missing_object_mask",
    "bad_object_mask",
    "detector_error",
)

#: Images lost without a pair since the last pair formed after which the input counts as stalled
#: (/diagnostics WARN naming the stamp offset and sync_tolerance).
STALL_UNMATCHED = 10

#: The latency stages the summary line reports, in order.
STAGE_ORDER = ("stamp_to_receive", "convert", "preprocess", "network", "postprocess", "geometry", "publish", "node_overhead",
               "node_total", "receive_to_publish")


class DiagnosticsMixin:
    """The reporting side of :class:`~.grasp_node.GraspNode`: run by the summary timer."""

    def _roi_text(self, det) -> str:
        """How the detector picks the ROI, e.g. ``roi_mode scale at 268.6 network px/m (model metadata)``."""
        if det.cfg.roi is not None:
            return f"fixed box {list(det.cfg.roi)} (roi parameter)"
        if det.cfg.roi_mode == "scale":
            src = "net_px_per_metre parameter" if det.cfg.net_px_per_metre else "model metadata"
            return f"roi_mode scale at {det.px_per_metre:.1f} network px/m ({src})"
        return f"roi_mode {det.cfg.roi_mode}"

    def _count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to a counter (from any worker or the executor)."""
        with self._count_lock:
            self._counters[key] += n

    def counters(self) -> dict[str, int]:
        with self._count_lock:
            c = dict(self._counters)
        c["dropped_stale"] = self._slot.dropped
        c["superseded"] = self._superseded
        c["unmatched"] = self._pairer.unmatched
        c["unmatched_color"], c["unmatched_depth"] = self._pairer.unmatched_color, self._pairer.unmatched_depth
        c["pending_color"], c["pending_depth"] = self._pairer.pending()
        return c

    def _summary(self) -> None:
        c = self.counters()
        stats = self._stats.summary()
        skipped = {k: c[k] for k in SKIP_REASONS if c.get(k)}
        fin, fout = self._in_rate.rate(), self._out_rate.rate()
        lat = " ".join(f"{k} {stats[k][0] * 1e3:.1f}/{stats[k][1] * 1e3:.1f}" for k in STAGE_ORDER if k in stats)
        self.get_logger().info(
            f"in {fin:.1f} fps, out {fout:.1f} fps, processed {self._processed}, grasps {self._published}, "
            f"dropped {c['dropped_stale']} stale + {c['unmatched']} unmatched + {c['superseded']} superseded, skipped {sum(skipped.values())} {skipped or ''}; "
            f"latency ms median/p95: {lat or 'n/a'}"
        )
        self._input_hints()
        st = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: grasp detection", hardware_id="dsc_grasp_ros")
        st.level, st.message = self._status(skipped, fin, fout)
        st.values = [KeyValue(key=k, value=v) for k, v in self._diag_values(c, stats, fin, fout).items()]
        self._diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[st]))

    def _input_hints(self) -> None:
        """Warn when the inputs arrive but never pair (which topic is silent, or stamps that differ)."""
        if self._active and self._subs and self._pairs == 0:
            color, depth = self._in_rate.total, self._depth_count
            if color and not depth:
                self._warn("no_depth", f"color images arrive but no depth on {self._subs[1].topic_name} (aligned depth enabled?)")
            elif depth and not color:
                self._warn("no_color", f"depth images arrive but no color on {self._subs[0].topic_name}")
            elif color and depth:
                self._warn("no_pairs", f"{color} color and {depth} depth images but no equal stamps: set sync_tolerance "
                           "or publish depth aligned to color")
        elif self._active and self._stall_text():
            self._warn("pairing_stalled", self._stall_text())

    def _stall_text(self) -> str | None:
        """Why colour and depth stopped pairing (images keep arriving, none pairs), or None."""
        lost = self._pairer.unmatched_since_pair
        if lost < STALL_UNMATCHED:
            return None
        gap = self._pairer.last_gap_ns
        apart = f"their nearest stamps are {gap * 1e-6:.3f} ms apart" if gap is not None else "no partner stamp is buffered"
        return (f"color and depth stopped pairing: {lost} images unmatched since the last pair; {apart}, "
                f"sync_tolerance is {self._pairer.tolerance_ns * 1e-9:g} s (raise sync_tolerance or stamp depth like its color)")

    def _status(self, skipped: dict, fin: float, fout: float) -> tuple[bytes, str]:
        """``/diagnostics`` level and message."""
        if not self._configured:
            return DiagnosticStatus.WARN, "not configured"
        if skipped and self._processed == 0:
            return DiagnosticStatus.ERROR, "every frame skipped: " + ", ".join(skipped)
        if not self._active:
            return DiagnosticStatus.WARN, "inactive"
        if fin == 0:
            return DiagnosticStatus.WARN, "no input frames"
        stall = self._stall_text()
        if stall:
            return DiagnosticStatus.WARN, stall
        if self._byte_order_hint:
            return DiagnosticStatus.WARN, self._byte_order_hint
        return DiagnosticStatus.OK, f"{fout:.1f} fps"

    def _diag_values(self, c: dict, stats: dict, fin: float, fout: float) -> dict[str, str]:
        kv = {
            "mode": str(self._p("mode")),
            "workers": str(len(self._workers)),
            "input_fps": f"{fin:.2f}",
            "output_fps": f"{fout:.2f}",
            "received": str(self._in_rate.total),
            "processed": str(self._processed),
            "published_grasps": str(self._published),
        }
        det, roi = self._detector, self._last_roi
        if det is not None:
            kv["backend"] = det.engine.backend
            kv["backend_state"] = det.engine.backend_info.get("state", "")
            kv["precision"] = det.engine.precision_info.get("runs", "")
            kv["roi_mode"] = det.cfg.roi_mode if det.cfg.roi is None else "roi parameter"
            kv["net_px_per_metre"] = f"{det.px_per_metre:.2f}"
        t = getattr(self, "_last_target", None)
        if self._p("tracking"):
            kv["target_id"] = str(t.id) if t is not None else ""
            kv["target_state"] = t.state if t is not None else "lost"
            kv["target_switches"] = str(self._tracker.switches)
        if roi is not None:  # the last processed frame's ROI, full-image pixels
            kv["roi"] = f"{roi.x} {roi.y} {roi.w} {roi.h}"
        if self._byte_order_hint:
            kv["depth_byte_order"] = self._byte_order_hint
        stall = self._stall_text()
        if stall:
            kv["pairing_stalled"] = stall
        kv.update({k: str(v) for k, v in sorted(c.items())})
        for k, (med, p95, n) in sorted(stats.items()):
            kv[f"{k}_ms_median"] = f"{med * 1e3:.3f}"
            kv[f"{k}_ms_p95"] = f"{p95 * 1e3:.3f}"
        return kv
