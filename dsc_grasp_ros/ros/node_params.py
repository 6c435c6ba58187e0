"""Parameter handling of ``grasp_node``: declaration with descriptors, startup validation and the
set-parameters callback (see :mod:`.params` for the parameter table)."""

from __future__ import annotations

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter

from . import params as P


class ParametersMixin:
    """The parameter side of :class:`~.grasp_node.GraspNode` (uses ``self._pairer``, ``self._detector``,
    ``self._det_lock``, ``self._configured``)."""

    def _declare_parameters(self) -> None:
        """Declare every parameter with its descriptor. A value given at startup (params file,
        ``-p``) that rclpy refuses (wrong type, outside the descriptor's range) would raise out of the
        constructor and kill the process: the parameter gets its default instead, the refusal is
        logged as an error and kept in ``_bad_params``, and ``configure`` fails naming it until a valid
        value is set. An integer for a double parameter (``net_px_per_metre: 300`` in YAML) is taken
        as that double."""
        from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

        self._bad_params: dict[str, str] = {}
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        for spec in P.PARAMS:
            try:
                self._declare_one(spec)
                continue
            except (InvalidParameterTypeException, InvalidParameterValueException) as e:
                error = e
            given = overrides[spec.name].value if spec.name in overrides else None
            if isinstance(spec.default, float) and isinstance(given, int) and not isinstance(given, bool):
                try:
                    self._declare_one(spec, float(given))
                    continue
                except InvalidParameterValueException as e:
                    error = e
            self._declare_one(spec, ignore_override=True)
            self._bad_params[spec.name] = (f"parameter {spec.name}: the value {given!r} given at startup was refused ({error}); "
                                           f"it holds its default {spec.default!r} until a valid value is set")
            self.get_logger().error(self._bad_params[spec.name] + ": configure will fail until then")

    def _declare_one(self, spec, value=None, ignore_override: bool = False) -> None:
        desc = P.descriptor(spec)
        if isinstance(spec.default, list):
            # An empty list has no type: declare the type, then set the default if nothing
            # (or an empty YAML list, which reaches rclpy as "not set") overrode it.
            ptype = {"double": Parameter.Type.DOUBLE_ARRAY, "integer": Parameter.Type.INTEGER_ARRAY,
                     "string": Parameter.Type.STRING_ARRAY}[P.ARRAY_TYPES[spec.name]]
            self.declare_parameter(spec.name, ptype, desc, ignore_override=ignore_override)
            try:
                self.get_parameter(spec.name).value
            except rclpy.exceptions.ParameterUninitializedException:
                self.set_parameters([Parameter(spec.name, ptype, list(spec.default))])
        elif value is not None:
            self.declare_parameter(spec.name, value, desc, ignore_override=True)
        else:
            self.declare_parameter(spec.name, spec.default, desc, ignore_override=ignore_override)

    def _check_parameters(self) -> str | None:
        """Why the current parameters cannot be configured (naming the parameter), or None. Values
        from the params file never went through the set-parameters callback: checked here."""
        from ..core.inference import validate_setting

        if self._bad_params:
            return next(iter(self._bad_params.values()))
        for spec in P.PARAMS:
            reason = P.validate(spec.name, self._p(spec.name))
            if reason:
                return f"parameter {spec.name}: {reason}"
        for name in P.DETECTOR_RUNTIME:
            value = self._p(name)
            try:
                validate_setting(name, (value or None) if name == "roi" else value)
            except ValueError as e:
                return f"parameter {name}: {e}"
        from .target import tracker_config

        try:
            tracker_config(self._p)
        except ValueError as e:
            return f"parameters track_*: {e}"
        problem = self._planning_problem()
        if problem:
            return f"parameters gripper/tcp_transform/finger_joints/workspace_box: {problem}"
        if not self._p("min_depth") < self._p("max_depth"):
            return f"parameters min_depth={self._p('min_depth')} and max_depth={self._p('max_depth')}: min_depth must be smaller"
        return None

    def _p(self, name: str):
        v = self.get_parameter(name).value
        if name in P.ARRAY_TYPES:
            return list(v) if v is not None else []
        return v

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        detector_changes = {}
        for p in params:
            spec = P.BY_NAME.get(p.name)
            if spec is None:
                continue
            value = p.value
            if spec.when == P.STARTUP:
                return SetParametersResult(successful=False, reason=f"{p.name} is only read at startup")
            if spec.when == P.RECONFIGURE and self._configured:
                return SetParametersResult(
                    successful=False,
                    reason=f"{p.name} can only change while the node is unconfigured: "
                    "deactivate and clean up the node, set it, then configure and activate",
                )
            if spec.name in P.ARRAY_TYPES and value is None:
                value = []
            reason = P.validate(p.name, value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            if p.name in P.DETECTOR_RUNTIME:
                detector_changes[p.name] = (list(value) or None) if p.name == "roi" else value
        if "min_depth" in detector_changes or "max_depth" in detector_changes:
            lo = detector_changes.get("min_depth", self._p("min_depth"))
            hi = detector_changes.get("max_depth", self._p("max_depth"))
            if not lo < hi:
                return SetParametersResult(successful=False, reason=f"min_depth={lo} must be smaller than max_depth={hi}")
        if detector_changes and self._detector is not None:
            try:
                with self._det_lock.write():  # alone: no worker is inside detect() meanwhile
                    self._detector.update(**detector_changes)
            except ValueError as e:
                return SetParametersResult(successful=False, reason=str(e))
        elif detector_changes:
            from ..core.inference import validate_setting

            try:
                for k, v in detector_changes.items():
                    validate_setting(k, v)
            except ValueError as e:
                return SetParametersResult(successful=False, reason=str(e))
        from .planning import PLANNING_PARAMS

        planning = {p.name: p.value for p in params if p.name in PLANNING_PARAMS}
        if planning:
            reason = self._planning_problem(planning)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        tracking = {p.name: p.value for p in params if p.name == "tracking" or p.name.startswith("track_")}
        if tracking:
            reason = self._retune_target(tracking)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        for p in params:  # everything is valid: apply what the node itself holds
            self._bad_params.pop(p.name, None)
            if p.name == "sync_tolerance":
                self._pairer.tolerance_ns = int(round(p.value * 1e9))
        return SetParametersResult(successful=True)
