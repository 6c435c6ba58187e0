"""``python -m dsc_grasp_ros.training.speed``: its variants build the model they name (precision,
layout, the heads' dropout before and after HeadDropout), unknown ones are refused, and one tiny
interleaved measurement reports every variant."""

from __future__ import annotations

import pytest
import torch

from dsc_grasp_ros.core.network import HeadDropout, dsc_graspnet
from dsc_grasp_ros.training import speed


def test_variants_parse_and_refuse():
    assert speed.parse_variant("bf16") == ("bf16", set())
    assert speed.parse_variant("fp32:contiguous:nn-dropout") == ("fp32", {"contiguous", "nn-dropout"})
    for bad in ("fp16", "bf16:fast", "fp32:contiguous:x"):
        with pytest.raises(ValueError, match="unknown variant"):
            speed.parse_variant(bad)


def test_variant_models_differ_only_where_named():
    base = dsc_graspnet("rgbd")
    new = speed.variant_model(base, "bf16")
    old = speed.variant_model(base, "bf16:nn-dropout:contiguous")
    heads = lambda m: [type(h[0]) for h in m.heads.values()]  # noqa: E731
    assert heads(new) == [HeadDropout] * 4 and heads(old) == [torch.nn.Dropout] * 4
    assert new.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert old.stem[0].weight.is_contiguous() and not old.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), old.state_dict().values()))  # same weights
    assert heads(base) == [HeadDropout] * 4  # the base is left as it was


def test_one_tiny_measurement_reports_each_variant():
    torch.manual_seed(0)
    res = speed.measure(None, "d", batch=2, rounds=1, warmup=0, precisions=["fp32:nn-dropout", "fp32"], cornell=None)
    assert list(res["precisions"]) == ["fp32:nn-dropout", "fp32"]
    for r in res["precisions"].values():
        assert r["steps"] == 1 and r["samples_per_s"] > 0
    assert res["precisions"]["fp32:nn-dropout"]["speedup_vs_first"] == 1.0
