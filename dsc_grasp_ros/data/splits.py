"""Train/test splits: image-wise (seeded shuffle of samples) or object-wise (seeded shuffle of
objects, so that no object is in both parts), 90/10 by default, or fold ``i`` of a k-fold split.

A split is a JSON file holding the held-out and training ids; ``dsc-grasp train`` writes it into
the run folder and ``dsc-grasp evaluate --split-file`` reads it, so evaluation uses exactly the
held-out samples of that run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .datasets import Item

__all__ = ["SPLITS", "make_split", "save_split", "load_split", "select"]

SPLITS = ("image", "object")
SPLIT_FORMAT = "dsc_grasp_ros.split/1"


def make_split(
    items: Sequence[Item],
    kind: str = "image",
    train_fraction: float = 0.9,
    seed: int = 0,
    folds: int | None = None,
    fold: int = 0,
) -> dict:
    """Split ``items`` into ``{'train': [ids], 'test': [ids], ...}``.

    ``kind='image'`` shuffles samples; ``kind='object'`` shuffles their ``group`` (the object
    folder for Jacquard, the object-map id for Cornell). With ``folds=k`` the shuffled units are
    cut into ``k`` near-equal folds and fold ``fold`` is held out; otherwise the first
    ``round(train_fraction * units)`` units train (at least one unit is held out and one trains).
    """
    if kind not in SPLITS:
        raise ValueError(f"unknown split {kind!r}: use one of {SPLITS}")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate sample ids")
    units = sorted({it.id if kind == "image" else it.group for it in items})
    if len(units) < 2:
        raise ValueError(f"a {kind}-wise split needs at least 2 {'samples' if kind == 'image' else 'objects'}, found {len(units)}")
    order = np.random.default_rng(seed).permutation(len(units))
    shuffled = [units[i] for i in order]
    if folds:
        if not 2 <= folds <= len(units) or not 0 <= fold < folds:
            raise ValueError(f"need 2 <= folds ({folds}) <= {len(units)} units and 0 <= fold ({fold}) < folds")
        test_units = set(np.array_split(np.array(shuffled, dtype=object), folds)[fold].tolist())
    else:
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train fraction must be in (0, 1), got {train_fraction}")
        n_train = min(max(int(round(train_fraction * len(units))), 1), len(units) - 1)
        test_units = set(shuffled[n_train:])
    key = (lambda it: it.id) if kind == "image" else (lambda it: it.group)
    test = [it.id for it in items if key(it) in test_units]
    train = [it.id for it in items if key(it) not in test_units]
    return {
        "format": SPLIT_FORMAT,
        "kind": kind,
        "seed": int(seed),
        "train_fraction": None if folds else float(train_fraction),
        "folds": folds,
        "fold": fold if folds else None,
        "units": {"train": len(units) - len(test_units), "test": len(test_units)},
        "train": train,
        "test": test,
    }


def save_split(path, split: dict, **extra) -> None:
    d = dict(split)
    d.update(extra)
    Path(path).write_text(json.dumps(d, indent=1) + "\n")


def load_split(path) -> dict:
    d = json.loads(Path(path).read_text())
    if d.get("format") != SPLIT_FORMAT or "test" not in d:
        raise ValueError(f"{path} is not a split file written by dsc-grasp train")
    return d


def select(items: Sequence[Item], ids: Sequence[str], what: str = "split") -> list[Item]:
    """The items with the given ids, in the ids' order; a missing id is an error naming it."""
    by_id = {it.id: it for it in items}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} {what} ids not found in the dataset (first: {missing[0]!r}); wrong --path or --dataset?")
    return [by_id[i] for i in ids]
