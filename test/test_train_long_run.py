"""The long run's curve (``python -m dsc_grasp_ros.training.long_run record``): the latest weights
of a run are scored and appended to ``RUN/curve.json``, which grows run by run and draws with
``dsc-grasp plot curve``; ``scripts/train_long.sh`` is valid shell and documents itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dsc_grasp_ros.cli import main
from dsc_grasp_ros.data.toy import write_toy_jacquard
from dsc_grasp_ros.training import long_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_jacquard(tmp_path_factory.mktemp("toy"), n_objects=3, per_object=2, height=96, width=128, seed=1)


def test_record_appends_points_run_by_run(toy, tmp_path, capsys):
    run = tmp_path / "long_d"
    train = ["train", "--dataset", "jacquard-format", "--path", str(toy), "--modality", "d", "--input-size", "32",
             "--batch-size", "2", "--workers", "0", "--no-progress", "--precise-bn", "1", "--out", str(run)]
    sets = {"toy": f"--dataset jacquard-format --path {toy} --split-file {run / 'split.json'}"}
    base = ROOT / "config" / "curves" / "rgbd_csp_first.json"
    assert main(train + ["--epochs", "1"]) == 0
    r1 = long_run.record(run, sets, base, samples_before=100)
    assert r1["step"] == 2 and r1["samples"] == 100 + 2 * 2 and r1["sets"]["toy"]["count"] == 1
    assert main(train + ["--epochs", "2", "--resume"]) == 0
    r2 = long_run.record(run, sets, base, samples_before=100)
    assert r2["samples"] == 108
    doc = json.loads((run / "curve.json").read_text())
    kept = json.loads(base.read_text())["series"]
    assert doc["series"][: len(kept)] == kept  # the recipe's earlier points stay
    mine = [s for s in doc["series"] if s["label"] == "long_d: toy"]
    assert [p[0] for p in mine[0]["points"]] == [104, 108]
    assert [p[1] for p in mine[0]["points"]] == [round(100 * r["sets"]["toy"]["accuracy"], 1) for r in (r1, r2)]
    lines = (run / "curve" / "points.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [2, 4]
    assert (run / "curve" / "step_0000004.pt").is_file()
    capsys.readouterr()
    png = tmp_path / "curve.png"
    assert main(["plot", "curve", str(run / "curve.json"), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_long_script_is_valid_shell_and_resumes():
    script = ROOT / "scripts" / "train_long.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "--resume" in text and "--init-from" in text and "long_run record" in text
    assert "cornell_shared_split.json" in text and "--gripper" in text and 'NICE="${NICE:-19}"' in text and 'THREADS="${THREADS:-1}"' in text
