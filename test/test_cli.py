"""The dsc-grasp command line: every sub-command explains itself (description and examples with its
own command line), groups without a sub-command print their help, ``--help`` loads no ROS,
plotting or simulation library, and bad input files give one error line naming them (status 2)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dsc_grasp_ros import cli

ROOT = Path(__file__).resolve().parents[1]

#: the sub-commands that replaced the scripts, as typed after ``dsc-grasp``
COMMANDS = [
    ["score-models"], ["model-card"], ["eval-peers"], ["dataset-stats"], ["candidates"],
    ["benchmark", "network"], ["benchmark", "core"], ["benchmark", "node"], ["benchmark", "backends"], ["benchmark", "finger-check"],
    ["plot", "curve"], ["plot", "training"], ["plot", "finger-check"],
    ["bag", "record-sim"],
]


def _run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # --help, usage errors
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help_describes_the_command_with_examples_of_its_own_command_line(cmd):
    rc, out, _ = _run([*cmd, "--help"])
    assert rc == 0
    assert out.startswith(f"usage: dsc-grasp {' '.join(cmd)}")
    description = out.split("\n\n")[1]
    assert len(description.split()) >= 8, description  # a sentence, not a name
    assert "examples:" in out and f"dsc-grasp {' '.join(cmd)} " in out.split("examples:")[1]
    assert "scripts/" not in out and ".py " not in out


@pytest.mark.parametrize("group,subs", [("benchmark", ["network", "core", "node", "backends", "finger-check"]),
                                        ("plot", ["curve", "training", "finger-check"]),
                                        ("bag", ["record-sim", "replay"])])
def test_a_group_alone_prints_its_sub_commands_and_exits_2(group, subs):
    rc, out, _ = _run([group])
    assert rc == 2
    assert out.startswith(f"usage: dsc-grasp {group}")
    assert all(s in out for s in subs)


def test_top_level_help_lists_every_command():
    rc, out, _ = _run(["--help"])
    assert rc == 0
    for name in ("predict", "train", "evaluate", "export", "sim-dataset", "bench", "benchmark", "score-models", "model-card",
                 "eval-peers", "dataset-stats", "candidates", "plot", "bag"):
        assert f"\n    {name}" in out, name


def test_bag_replay_forwards_its_arguments_to_the_replayer():
    pytest.importorskip("rclpy", reason="dsc-grasp bag replay needs ROS 2 (rclpy)")
    rc, out, _ = _run(["bag", "replay", "--help"])
    assert rc == 0
    assert out.startswith("usage: dsc-grasp bag replay") and "--lockstep" in out and "--restamp" in out


def test_building_the_parser_loads_no_ros_plotting_or_simulation_library():
    code = ("import sys\nfrom dsc_grasp_ros import cli\ncli.build_parser()\n"
            "print(sorted(m for m in ('rclpy', 'matplotlib', 'pybullet', 'onnxruntime') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_benchmark_choices_are_the_networks():
    from dsc_grasp_ros.commands import benchmark
    from dsc_grasp_ros.core.network import MODALITY_CHANNELS, UPSAMPLE_ORDERS

    assert tuple(benchmark.UPSAMPLE_ORDERS) == tuple(UPSAMPLE_ORDERS)
    assert tuple(benchmark.MODALITIES) == tuple(sorted(MODALITY_CHANNELS))


def test_node_benchmark_reads_the_nodes_per_frame_timings():
    pytest.importorskip("rclpy", reason="dsc-grasp benchmark node needs ROS 2 (rclpy)")
    from dsc_grasp_ros.devtools.node_benchmark import parse_frame_timings

    log = ("[DEBUG] [grasp_node]: frame 1700000000000000001 timings_ms preprocess=2.0 network=10.5 postprocess=1.5 geometry=1.0\n"
           "[INFO] [grasp_node]: something else\n"
           "[DEBUG] [grasp_node]: frame 1700000000033333334 timings_ms preprocess=1.0 network=9.0 postprocess=1.0 geometry=1.0 convert=0.4\n")
    got = parse_frame_timings(log)
    assert set(got) == {1700000000000000001, 1700000000033333334}
    assert got[1700000000000000001] == pytest.approx(0.015) and got[1700000000033333334] == pytest.approx(0.012)


def test_node_benchmark_times_only_after_the_background_compile_settled():
    """The timed phase starts once /diagnostics say ``compiled`` (or ``fallback``/``eager``), not while
    the node still serves eager frames; a node that never settles is reported as ``compiling``."""
    pytest.importorskip("rclpy", reason="dsc-grasp benchmark node needs ROS 2 (rclpy)")
    from dsc_grasp_ros.devtools.node_benchmark import wait_backend_settled

    class Diagnostics:  # stands in for the listener: the node's /diagnostics values over time
        def __init__(self, states):
            self.states = list(states)

        def latest_diagnostics(self):
            return {"backend_state": self.states.pop(0)} if len(self.states) > 1 else {"backend_state": self.states[0]}

    seq = Diagnostics(["", "compiling", "compiling", "compiled"])
    assert wait_backend_settled(seq, 5.0) == "compiled" and seq.states == ["compiled"]
    assert wait_backend_settled(Diagnostics(["fallback"]), 5.0) == "fallback"
    assert wait_backend_settled(Diagnostics(["compiling"]), 0.3) == "compiling"


def test_record_sim_writes_a_bag_and_keeps_an_existing_one(tmp_path):
    pytest.importorskip("rosbags", reason="the bag writer needs the rosbags library (requirements.txt)")
    out = tmp_path / "bag"
    argv = ["bag", "record-sim", "--synthetic", "--frames", "2", "--width", "64", "--height", "48", "--out", str(out)]
    rc, stdout, err = _run(argv)
    assert rc == 0, err
    assert (out / "metadata.yaml").is_file() and "2 frames 64x48 at 30 Hz" in stdout
    rc, _, err = _run(argv)
    assert rc == 2 and "exists (use --force to overwrite)" in err
    assert _run([*argv, "--force"])[0] == 0


def test_model_card_and_candidates_name_a_missing_input(tmp_path):
    rc, _, err = _run(["model-card", "--from", str(tmp_path / "scores.json")])
    assert rc == 2 and err.count("\n") == 1 and "dsc-grasp model-card: error:" in err and "scores.json" in err
    rc, _, err = _run(["candidates", str(tmp_path / "m.pt")])
    assert rc == 2 and err.strip() == f"dsc-grasp candidates: error: model file {tmp_path / 'm.pt'} not found"


def test_a_command_records_its_own_command_line():
    from dsc_grasp_ros.commands import invoke

    seen = {}

    def register(sub):
        p = sub.add_parser("probe")
        p.add_argument("--x")
        p.set_defaults(func=lambda args: seen.setdefault("argv", args.argv) and 0)

    import types

    sys.modules["dsc_grasp_ros.commands._probe"] = types.SimpleNamespace(register=register)
    try:
        assert invoke("_probe", ["probe", "--x", "1"]) == 0
    finally:
        del sys.modules["dsc_grasp_ros.commands._probe"]
    assert seen["argv"] == ["probe", "--x", "1"]


# --------------------------------------------------------------------------- bad input files
def _depth_png(path: Path) -> Path:
    cv2.imwrite(str(path), np.full((48, 64), 600, np.uint16))
    return path


@pytest.mark.parametrize("case", ["missing depth", "missing rgb", "depth is a folder"])
def test_predict_names_a_missing_image_in_one_line_without_opencv_warnings(tmp_path, capfd, case):
    depth, rgb = _depth_png(tmp_path / "d.png"), None
    if case == "missing depth":
        depth = tmp_path / "nowhere" / "d.png"
        want = f"dsc-grasp predict: error: --depth file {depth} does not exist"
    elif case == "missing rgb":
        rgb = tmp_path / "c.png"
        want = f"dsc-grasp predict: error: --rgb file {rgb} does not exist"
    else:
        depth = tmp_path
        want = f"dsc-grasp predict: error: --depth {tmp_path} is a folder, not an image file"
    argv = ["predict", "--depth", str(depth), "--fx", "500", "--fy", "500", "--device", "cpu"] + (["--rgb", str(rgb)] if rgb else [])
    assert cli.main(argv) == 2
    out, err = capfd.readouterr()  # file-descriptor level: OpenCV writes its warnings there
    assert err.splitlines() == [want] and out == ""


def test_predict_an_image_that_does_not_decode_is_bad_input(tmp_path, capfd):
    bad = tmp_path / "d.png"
    bad.write_text("not an image")
    assert cli.main(["predict", "--depth", str(bad), "--fx", "500", "--fy", "500", "--device", "cpu"]) == 2
    err = capfd.readouterr().err
    assert err.splitlines() == [f"dsc-grasp predict: error: cannot read depth image {bad}"]


@pytest.mark.parametrize("content,want", [
    ("{not json", "config.json: not JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
    ("{}", "config.json: missing key 'config'"),
    (json.dumps({"config": {"modality": "d"}}), "config.json: missing key 'config.input_size'"),
    ("[1, 2]", "config.json: expected a JSON object"),
], ids=["not JSON", "empty object", "config without sizes", "a list"])
def test_export_names_a_broken_run_config_in_one_line(tmp_path, capfd, content, want):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"")
    (run / "config.json").write_text(content)
    assert cli.main(["export", str(run)]) == 2
    out, err = capfd.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dsc-grasp export: error: {run / 'config.json'}: ") and want in lines[0], err
    assert "Traceback" not in err and out == ""
