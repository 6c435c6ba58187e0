"""Image-wise / object-wise / k-fold splits and their files."""

from __future__ import annotations

import pytest

from dsc_grasp_ros.data import Item, load_split, make_split, save_split, select


def _items(n_obj=10, per=4):
    return [Item(f"o{o}/{k}_o{o}", f"o{o}", "", "", "", "jacquard") for o in range(n_obj) for k in range(per)]


def test_image_split_is_seeded_disjoint_and_90_10():
    items = _items()
    a = make_split(items, "image", seed=1)
    assert a == make_split(items, "image", seed=1)
    assert a["test"] != make_split(items, "image", seed=2)["test"]
    assert len(a["train"]) == 36 and len(a["test"]) == 4
    assert set(a["train"]).isdisjoint(a["test"]) and set(a["train"]) | set(a["test"]) == {it.id for it in items}
    assert {i.split("/")[0] for i in a["test"]} & {i.split("/")[0] for i in a["train"]}  # images of one object on both sides


def test_object_split_keeps_objects_together():
    items = _items()
    s = make_split(items, "object", train_fraction=0.8, seed=0)
    tr = {i.split("/")[0] for i in s["train"]}
    te = {i.split("/")[0] for i in s["test"]}
    assert tr.isdisjoint(te) and len(te) == 2 and len(s["test"]) == 8
    assert s["units"] == {"train": 8, "test": 2}


def test_k_fold_partitions_everything():
    items = _items(7, 2)
    seen = []
    for f in range(3):
        s = make_split(items, "object", seed=4, folds=3, fold=f)
        assert set(s["train"]).isdisjoint(s["test"])
        seen += s["test"]
    assert sorted(seen) == sorted(it.id for it in items)
    with pytest.raises(ValueError):
        make_split(items, "object", folds=3, fold=3)


def test_split_file_round_trip_and_select(tmp_path):
    items = _items(3, 2)
    s = make_split(items, "object", seed=0)
    save_split(tmp_path / "split.json", s, dataset="jacquard")
    back = load_split(tmp_path / "split.json")
    assert back["test"] == s["test"] and back["dataset"] == "jacquard"
    assert [it.id for it in select(items, back["test"])] == s["test"]
    with pytest.raises(ValueError, match="not found"):
        select(items[:1], back["test"] + ["nope"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a split file"):
        load_split(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="at least 2"):
        make_split(items[:2], "object")
