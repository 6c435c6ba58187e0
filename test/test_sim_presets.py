"""The synthetic-data presets are rows of one table driving one scene builder and one labeller."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pybullet")

from dsc_grasp_ros.sim import scene as sc  # noqa: E402
from dsc_grasp_ros.sim import trials  # noqa: E402
from dsc_grasp_ros.sim.dataset import GenConfig, generate_scene  # noqa: E402
from dsc_grasp_ros.sim.presets import PRESETS  # noqa: E402


class _Built(Exception):
    pass


def test_each_preset_run_passes_its_table_row_to_the_one_builder(monkeypatch, tmp_path):
    seen = {}

    def builder(p, client, rng, cfg, items, n_objects, root=None):
        seen[cfg.name] = (cfg, list(items), n_objects)
        raise _Built

    monkeypatch.setattr(sc, "build_scene", builder)
    # the mesh source needs the shared object folder only to list names: give it two
    monkeypatch.setattr(sc.MeshObjects, "select", lambda self, text: ["mug_a", "mug_b"])
    for name in PRESETS:
        with pytest.raises(_Built):
            generate_scene(5, tmp_path, GenConfig.of_preset(name, width=64, height=48))
    assert set(seen) == set(PRESETS) == {"v1", "v2", "cornell", "wrist"}
    for name, (cfg, items, n) in seen.items():
        assert cfg == PRESETS[name]  # the run's defaults are the preset's own: nothing lost on the way
        lo, hi = PRESETS[name].objects_per_scene
        assert lo <= n <= hi
    assert seen["v1"][1][:3] == [0, 1, 2] and seen["v2"][1] == ["mug_a", "mug_b"]
    # the presets differ only in their settings
    v1, v2 = PRESETS["v1"], PRESETS["v2"]
    assert (v1.objects, v2.objects) == ("catalogue", "meshes")
    assert not v1.clutter and v2.clutter
    assert v1.camera.distance == (0.35, 0.7) and v2.camera.distance == (0.35, 1.5)
    assert (v1.camera.max_tilt_deg, v2.camera.max_tilt_deg) == (20.0, 35.0)
    assert (v1.depth_model, v2.depth_model) == ("stereo", "realsense")
    assert v1.label == trials.LabelParams() and v2.label.spread and v2.label.max_candidates_per_view == 72


def test_run_options_override_the_preset():
    cfg = GenConfig.of_preset("v2", candidates=5, max_candidates_per_view=9, dist_range=(0.5, 0.9), max_tilt_deg=10.0, views=1)
    s = cfg.scene_config()
    assert s.name == "v2" and s.views == 1
    assert (s.label.candidates, s.label.max_candidates_per_view) == (5, 9)
    assert s.camera.distance == (0.5, 0.9) and s.camera.max_tilt_deg == 10.0 and not s.camera.vertical
    v1 = GenConfig(candidates=7, height_range=(0.4, 0.5)).scene_config()
    assert v1.label.candidates == 7 and v1.label.max_candidates_per_view is None  # v1 has no per-view cap
    assert v1.camera.distance == (0.4, 0.5) and v1.camera.vertical


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_camera_draws_stay_in_the_preset_ranges(name):
    from dsc_grasp_ros.sim import camera as cam

    c = PRESETS[name].camera
    rng = np.random.default_rng(0)
    for _ in range(200):
        T, intr, info = cam.sample_camera(rng, [0.1, -0.2], 0.3, c, 320, 240)
        assert 0 <= info["tilt_deg"] <= c.max_tilt_deg + 1e-3
        along = info["distance_m"] * (np.cos(np.radians(info["tilt_deg"])) if c.vertical else 1.0)
        assert c.distance[0] - 1e-3 <= along <= c.distance[1] + 1e-3
        assert T[2, 2] < 0  # looks down
        f0 = cam.D435_FX * 320 / cam.D435_WIDTH
        assert c.focal_jitter[0] * f0 - 1e-9 <= intr.fx <= c.focal_jitter[1] * f0 + 1e-9
