"""``scripts/train_long.sh``'s optional extra data (``MIX``): unset, the training command mixes in the
Cornell split alone, as before; set, each spec becomes one more ``--mix``; a spec without an existing
folder stops the script before anything runs. The script runs on a copy with a stand-in Python that
records its command lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, mix: str | None) -> tuple[int, list[list[str]], str]:
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
    env = {k: v for k, v in os.environ.items() if k not in ("MIX", "RUN", "DATA", "INIT", "SAMPLES_BEFORE")}
    env.update(PY=str(py), SHARED=str(root / "shared"), DATA="data", RUN="run", ROUNDS="1", NICE=str(os.nice(0)))
    if mix is not None:
        env["MIX"] = mix
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
