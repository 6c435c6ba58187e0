"""dsc-grasp plot curve: the measured-points curve of docs/training.md (the gap picture)."""

import json
from pathlib import Path

from dsc_grasp_ros import cli

ROOT = Path(__file__).resolve().parents[1]


def plot_curve(argv) -> int:
    return cli.main(["plot", "curve", *argv])


def test_committed_curve_plots_and_prints_its_points(tmp_path, capsys):
    png = tmp_path / "curve.png"
    assert plot_curve([str(ROOT / "config/curves/rgbd_csp_first.json"), "--out", str(png), "--json"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(capsys.readouterr().out)
    assert doc["target"] == 90.0
    labels = [s["label"] for s in doc["series"]]
    assert any("Cornell" in label for label in labels) and any("Jacquard" in label for label in labels)
    # x is samples = optimiser steps x batch 8: the shipped RGB-D model is epoch 12, 733 steps
    shipped = [p for s in doc["series"] for p in s["points"] if p[0] == 733 * 8]
    assert len(shipped) == 4


def test_bad_curve_files_exit_2_naming_the_problem(tmp_path, capsys):
    png = tmp_path / "c.png"
    assert plot_curve([str(tmp_path / "missing.json"), "--out", str(png)]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"series": [{"label": "a", "points": [[0, 50]]}]}))
    assert plot_curve([str(bad), "--out", str(png)]) == 2
    assert "x must be positive" in capsys.readouterr().err
    bad.write_text(json.dumps({"series": [{"label": "a", "points": []}]}))
    assert plot_curve([str(bad), "--out", str(png)]) == 2
    assert "has no points" in capsys.readouterr().err
    bad.write_text("{not json")
    assert plot_curve([str(bad), "--out", str(png)]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert not png.exists()
