"""``dsc-grasp benchmark close-range``: the same scenes seen from a near camera with the scale ROI
clamped and padded, per camera model and distance, as a table and JSON."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pybullet", reason="pybullet is not installed (requirements.txt)")


def test_close_range_sweep_runs_both_roi_modes_on_the_same_scenes(tmp_path, capsys):
    from dsc_grasp_ros.cli import main
    from dsc_grasp_ros.sim import mesh_objects as mo

    try:
        obj = mo.benchmark_names()[0]
    except mo.ObjectsNotFound as e:
        pytest.skip(f"no object meshes: {e}")
    out = tmp_path / "cr.json"
    assert main(["benchmark", "close-range", "--cameras", "d435", "--distances", "0.2", "--objects", obj, "--trials", "1",
                 "--json", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert [(r["camera"], r["distance_m"], r["roi"]) for r in doc["rows"]] == [("d435", 0.2, "clamp"), ("d435", 0.2, "pad")]
    assert all(r["trials"] == 1 and r["successes"] in (0, 1) for r in doc["rows"])
    assert "d435" in capsys.readouterr().out
    assert main(["benchmark", "close-range", "--cameras", "kinect"]) == 2
    assert "unknown ['kinect']" in capsys.readouterr().err
