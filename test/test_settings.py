"""One source for each default: the core's detector settings feed the node's parameter table, the
``dsc-grasp predict`` options and the parameter table in docs/ros.md."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from dsc_grasp_ros.core import settings as S

ROOT = Path(__file__).resolve().parents[1]


def _predict_parser():
    from dsc_grasp_ros.commands import predict

    top = argparse.ArgumentParser()
    predict.register(top.add_subparsers())
    return top, predict


def test_every_user_setting_has_help_and_a_default():
    fields = {f.name for f in dataclasses.fields(S.DetectorConfig)}
    assert set(S.SETTING_HELP) <= fields
    for name in S.RUNTIME_SETTINGS:
        assert name in S.SETTING_HELP, f"{name} has no help text in core.settings.SETTING_HELP"
    for name, (lo, hi) in S.TUNABLE_RANGES.items():
        d = S.default(name)
        assert lo <= d <= hi, f"default {name}={d} is outside its own range [{lo}, {hi}]"
        assert S.validate_setting(name, d) == d


def test_node_parameters_take_the_core_defaults():
    pytest.importorskip("rcl_interfaces", reason="ROS 2 message packages not installed (./scripts/setup_venv.sh)")
    from dsc_grasp_ros.ros import params as P

    assert set(P.DETECTOR_RUNTIME) == set(S.SETTING_HELP)
    for name in P.DETECTOR_RUNTIME:
        spec = P.BY_NAME[name]
        want = [] if name == "roi" else S.default(name)
        assert spec.default == want, f"node parameter {name} defaults to {spec.default!r}, the core to {want!r}"
        assert spec.description == S.SETTING_HELP[name]
        if name in S.TUNABLE_RANGES:
            assert tuple(spec.range[:2]) == S.TUNABLE_RANGES[name]
    assert P.BY_NAME["threads"].default == S.DEFAULT_THREADS and P.BY_NAME["backend"].choices == S.BACKENDS


def test_predict_options_take_the_core_defaults_except_the_declared_ones():
    top, predict = _predict_parser()
    args = top.parse_args(["predict", "--depth", "d.png", "--fx", "600", "--fy", "600"])
    for _, name, _ in predict.DETECTOR_OPTIONS:
        want = predict.CLI_DEFAULTS.get(name, S.default(name))
        assert getattr(args, name) == want, f"predict --{name}: {getattr(args, name)!r}, expected {want!r}"
    for name in predict.CLI_DEFAULTS:
        assert name in predict.CLI_DEFAULTS_WHY, f"predict differs from the node on {name} without saying why"
    assert args.backend == predict.CLI_DEFAULTS["backend"] and args.threads == predict.CLI_DEFAULTS["threads"]


def test_predict_options_reach_the_detector_config():
    top, predict = _predict_parser()
    args = top.parse_args(["predict", "--depth", "d.png", "--fx", "600", "--fy", "600", "--top-k", "3", "--max-opening", "0.085",
                           "--finger-max-turn", "30", "--roi", "1", "2", "100", "90", "--roi-mode", "square"])
    cfg = S.DetectorConfig(**{name: getattr(args, name) for _, name, _ in predict.DETECTOR_OPTIONS})
    assert (cfg.top_k, cfg.max_gripper_opening, cfg.finger_max_turn_deg, cfg.roi, cfg.roi_mode) == (3, 0.085, 30.0, [1, 2, 100, 90], "square")
    with pytest.raises(SystemExit):
        top.parse_args(["predict", "--depth", "d.png", "--fx", "600", "--fy", "600", "--finger-check", "maybe"])


def _docs_table() -> dict[str, str]:
    """name -> default cell of the parameter table in docs/ros.md."""
    rows = {}
    for line in (ROOT / "docs" / "ros.md").read_text().splitlines():
        m = re.match(r"^\|\s*`(\w+)`\s*\|\s*([^|]*?)\s*\|\s*(startup|runtime|reconfigure)\s*\|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip("`").strip()
    return rows


def _as_doc(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else value
    if isinstance(value, list) and not value:
        return "unset"
    return repr(value)


def test_docs_parameter_table_matches_the_node():
    pytest.importorskip("rcl_interfaces", reason="ROS 2 message packages not installed (./scripts/setup_venv.sh)")
    from dsc_grasp_ros.ros import params as P

    rows = _docs_table()
    missing = [p.name for p in P.PARAMS if p.name not in rows]
    assert not missing, f"docs/ros.md's parameter table lacks {missing}"
    unknown = sorted(set(rows) - set(P.BY_NAME))
    assert not unknown, f"docs/ros.md documents parameters the node does not have: {unknown}"
    wrong = []
    for p in P.PARAMS:
        doc = rows[p.name]
        want = _as_doc(p.default)
        try:
            same = float(doc) == float(p.default) if isinstance(p.default, (int, float)) and not isinstance(p.default, bool) else doc == want
        except ValueError:
            same = False
        if not same:
            wrong.append(f"{p.name}: docs say {doc!r}, the node {want!r}")
    assert not wrong, "\n".join(wrong)


def test_docs_checker_sees_a_wrong_default(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ros.md").write_text("| name | default | when |\n|---|---|---|\n| `sigma` | `3.0` | runtime | x |\n")
    monkeypatch.setattr(__import__("sys").modules[__name__], "ROOT", tmp_path)
    assert _docs_table() == {"sigma": "3.0"}
    assert float(_docs_table()["sigma"]) != S.default("sigma")
