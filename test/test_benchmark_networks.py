"""dsc-grasp benchmark network at CI size: every default network except the
compiled ones (both up-sampling orders plain and eager, both peers), one interleaved round, with
the JSON and markdown outputs. No timing is asserted; the lead runs the full version (with
``-compiled``) on a quiet machine for the README."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dsc_grasp_ros import cli
from dsc_grasp_ros.bench import networks

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT.parent / "shared" / "peers"


@pytest.fixture
def bench():
    if not PEERS_DIR.is_dir():
        pytest.skip(f"peer weights not found at {PEERS_DIR} (dev machines and CI have ../shared/peers)")
    threads = torch.get_num_threads()
    yield networks
    torch.set_num_threads(threads)


def test_quick_run_covers_both_orders_and_the_peers(bench, tmp_path, capsys):
    js, md = tmp_path / "b.json", tmp_path / "b.md"
    rc = cli.main(["benchmark", "network", "--no-compile", "--iters", "1", "--warmup", "0", "--threads", "1", "--no-progress",
                     "--json", str(js), "--markdown", str(md)])
    assert rc == 0
    text = capsys.readouterr().out  # the text table still goes to stdout when both go to files
    out = json.loads(js.read_text())
    names = list(out["networks"])
    for order in ("csp_first", "eq5"):
        assert f"dsc-{order}-plain" in names and f"dsc-{order}-eager" in names, names
    assert {"grconvnet3", "ggcnn2"} <= set(names) and not any(n.endswith("-compiled") for n in names), names
    # ratios against our fast path present (eager here: --no-compile), GR-ConvNet3 ratios for everyone
    assert out["reference"] == "dsc-csp_first-eager"
    assert out["networks"]["dsc-csp_first-eager"]["ratio_to_reference"] == 1.0
    assert all(s["n"] == 1 and s["median_ms"] > 0 and "grconvnet3_over_this" in s for s in out["networks"].values())
    assert out["networks"]["dsc-csp_first-eager"]["backend"] == "eager"
    m = out["machine"]
    assert m["threads"] == 1 and m["torch"] == torch.__version__ and out["date_utc"][:2] == "20"
    assert out["command"].startswith("dsc-grasp benchmark network ") and "--no-compile" in out["command"]
    # markdown: the machine line and one row per network, ready for the README
    table = md.read_text()
    assert f"torch {torch.__version__}" in table and "1 thread(s)" in table and out["date_utc"] in table
    rows = [line for line in table.splitlines() if line.startswith("| `") or line.startswith("| **`")]
    assert len(rows) == len(names), table
    assert "| **`dsc-csp_first-eager`** |" in table and "GR-ConvNet3 median / this" in table
    assert "dsc-eq5-eager" in text and "median ms" in text


def test_defaults_and_reference(bench):
    every = bench.default_networks()
    assert [n for n in every if n.endswith("-compiled")] == ["dsc-csp_first-compiled", "dsc-eq5-compiled"]
    assert bench.default_networks(compile=False) == [n for n in every if not n.endswith("-compiled")]
    assert bench.default_reference(every) == "dsc-csp_first-compiled"
    assert bench.default_reference(["ggcnn2", "dsc-eq5-plain"]) == "dsc-eq5-plain"
    assert bench.default_reference(["ggcnn2"]) == "ggcnn2"


def test_json_and_markdown_cannot_both_go_to_stdout(bench, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["benchmark", "network", "--json", "--markdown", "--networks", "ggcnn2"])
    assert e.value.code == 2 and "stdout" in capsys.readouterr().err
