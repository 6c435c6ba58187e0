"""``scripts/train_long.sh``'s optional extra data (``MIX``) and label clipping (``MAX_OPENING``): unset,
the training command mixes in the Cornell split alone, as before, and clips nothing; set, each spec
becomes one more ``--mix`` and the opening one ``--max-opening``; a spec without an existing folder or
an opening that is not in metres stops the script before anything runs. The script runs on a copy with a stand-in Python that
records its command lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, mix: str | None, max_opening: str | None = None, lr: str | None = None) -> tuple[int, list[list[str]], str]:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "train_long.sh", root / "scripts" / "train_long.sh")
    for d in ("data/train", "data/test", "extra/cornell_like", "extra/wrist", "shared/data/cornell"):
        (root / d).mkdir(parents=True)
    for d in ("data/train", "data/test"):
        (root / d / ".generated").touch()
    log = root / "calls.log"
    py = root / "fake_python"
    py.write_text(f'#!/usr/bin/env bash\nprintf "%s\\x1f" "$@" >> {log}\necho >> {log}\n')
    py.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("MIX", "RUN", "DATA", "INIT", "SAMPLES_BEFORE", "MAX_OPENING", "LR")}
    env.update(PY=str(py), SHARED=str(root / "shared"), DATA="data", RUN="run", ROUNDS="1", NICE=str(os.nice(0)))
    if mix is not None:
        env["MIX"] = mix
    if max_opening is not None:
        env["MAX_OPENING"] = max_opening
    if lr is not None:
        env["LR"] = lr
    r = subprocess.run(["bash", "scripts/train_long.sh", "rgbd"], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    calls = [line.split("\x1f")[:-1] for line in log.read_text().splitlines()] if log.exists() else []
    return r.returncode, calls, r.stderr


def _train_mixes(calls) -> list[str]:
    (train,) = [c for c in calls if c[:3] == ["-m", "dsc_grasp_ros.cli", "train"]]
    return [train[i + 1] for i, a in enumerate(train) if a == "--mix"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_unset_mix_keeps_the_cornell_mix_alone(tmp_path):
    rc, calls, err = _run(tmp_path, None)
    assert rc == 0, err
    (cornell,) = _train_mixes(calls)
    assert cornell.startswith("cornell:") and "split=config/splits/cornell_shared_split.json,repeat=4,protocol=paper" in cornell


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_mix_adds_one_mix_per_spec(tmp_path):
    rc, calls, err = _run(tmp_path, "jacquard-format:extra/cornell_like,repeat=2  jacquard-format:extra/wrist")
    assert rc == 0, err
    mixes = _train_mixes(calls)
    assert mixes[0].startswith("cornell:")
    assert mixes[1:] == ["jacquard-format:extra/cornell_like,repeat=2", "jacquard-format:extra/wrist"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("mix", ["jacquard-format:extra/missing", "extra/wrist"])
def test_a_bad_mix_stops_before_anything_runs(tmp_path, mix):
    rc, calls, err = _run(tmp_path, mix)
    assert rc == 2 and calls == [] and "MIX:" in err


def _train_call(calls) -> list[str]:
    (train,) = [c for c in calls if c[:3] == ["-m", "dsc_grasp_ros.cli", "train"]]
    return train


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_max_opening_clips_the_labels_only_when_set(tmp_path):
    rc, calls, err = _run(tmp_path / "unset", None)
    assert rc == 0, err
    assert "--max-opening" not in _train_call(calls)
    assert _train_call(calls)[_train_call(calls).index("--lr") + 1] == "1e-3"  # the shipped recipes' rate
    rc, calls, err = _run(tmp_path / "panda", None, max_opening="0.08", lr="3e-4")
    assert rc == 0, err
    train = _train_call(calls)
    assert train[train.index("--max-opening") + 1] == "0.08"
    assert train[train.index("--lr") + 1] == "3e-4"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("value", ["80", "0", "0.0", "-0.08", "wide"])
def test_a_bad_max_opening_stops_before_anything_runs(tmp_path, value):
    rc, calls, err = _run(tmp_path, None, max_opening=value)
    assert rc == 2 and calls == [] and "MAX_OPENING:" in err
