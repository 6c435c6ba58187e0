"""No path of one machine in what a user reads: README, CHANGELOG, docs/ and the shipped
model cards (models/*.json). Paths are relative to the project or name the flag/dataset they came
from; the metadata writer keeps future cards clean too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Roots of paths that only exist on one machine (a generic placeholder such as /path/to/data is fine).
MACHINE_ROOTS = re.compile(r"(?<![\w.~-])/(work|home|root|tmp|Users|mnt|scratch)/[\w.-]+")


def _strings(obj, where=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(obj, str):
        yield where, obj


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.json")), ids=lambda p: p.name)
def test_model_cards_have_no_absolute_paths(path):
    bad = [(w, s) for w, s in _strings(json.loads(path.read_text())) if s.startswith(("/", "~")) or re.match(r"^[A-Za-z]:\\", s)
           or MACHINE_ROOTS.search(s)]
    assert not bad, f"{path.name}: absolute paths {bad}"


@pytest.mark.parametrize("path", [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))], ids=lambda p: p.name)
def test_docs_have_no_machine_paths(path):
    bad = [(i + 1, m.group(0)) for i, line in enumerate(path.read_text().splitlines()) for m in MACHINE_ROOTS.finditer(line)]
    assert not bad, f"{path.name}: paths of one machine (line, path): {bad}"


def test_ros_doc_has_no_stale_placeholder_paragraph():
    assert "untrained placeholder" not in (ROOT / "docs" / "ros.md").read_text()


def test_metadata_writer_keeps_paths_portable(tmp_path):
    from dsc_grasp_ros.core.model_io import portable_path

    assert portable_path(ROOT / "data" / "x") == "data/x"
    assert portable_path(ROOT.parent / "simdata" / "train") == "../simdata/train"
    assert portable_path("/opt/datasets/cornell") == "cornell"
    assert portable_path(None) is None
    from dsc_grasp_ros.training.trainer import training_record

    rec = training_record({"dataset": "cornell", "path": "/opt/datasets/cornell", "split": "image", "loss": "l", "label_mode": "m",
                           "optimizer": "o", "lr": 1.0, "batch_size": 1, "seed": 0}, {}, "cpu", 1.0)
    assert rec["path"] == "cornell"
