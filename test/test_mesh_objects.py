"""The shared object-mesh loader: known mass properties, name sets, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from dsc_grasp_ros.sim import mesh_objects as mo


def _box_obj(size, offset=(0, 0, 0), parts=1) -> str:
    """An OBJ of an axis-aligned box (optionally split into ``parts`` slabs along x, one ``o`` each)."""
    sx, sy, sz = size
    lines, base = [], 0
    for k in range(parts):
        x0 = -sx / 2 + k * sx / parts
        x1 = x0 + sx / parts
        lines.append(f"o convex_{k}")
        for x in (x0, x1):
            for y in (-sy / 2, sy / 2):
                for z in (-sz / 2, sz / 2):
                    lines.append(f"v {x + offset[0]} {y + offset[1]} {z + offset[2]}")
        # vertex index = 1 + base + 4*ix + 2*iy + iz; outward-facing quads split in triangles
        quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
        for q in quads:
            a, b, c, d = (base + 1 + i for i in q)
            lines.append(f"f {a} {b} {c}")
            lines.append(f"f {a} {c} {d}")
        base += 8
    return "\n".join(lines) + "\n"


def _make_root(tmp_path, objects: dict, bench=("box",)):
    pt = tmp_path / "objects" / "pile_train"
    pt.mkdir(parents=True)
    for name, (obj, mass) in objects.items():
        (pt / f"{name}_collision.obj").write_text(obj)
        (pt / f"{name}_visual.obj").write_text(obj)
        (pt / f"{name}.urdf").write_text(
            f'<?xml version="1.0"?><robot name="{name}"><link name="base_link">'
            f'<inertial><mass value="{mass}"/><inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial>'
            f'<visual><geometry><mesh filename="{name}_visual.obj"/></geometry></visual>'
            f'<collision><geometry><mesh filename="{name}_collision.obj"/></geometry></collision>'
            "</link></robot>"
        )
    (tmp_path / "objects" / "benchmark_objects.txt").write_text("\n".join(bench) + "\n")
    return tmp_path / "objects"


def test_box_mass_properties_are_exact(tmp_path):
    size, off, m = (0.10, 0.04, 0.02), (0.01, -0.02, 0.03), 0.3
    root = _make_root(tmp_path, {"box": (_box_obj(size, off, parts=3), m), "bolt": (_box_obj((0.02, 0.02, 0.02)), 0.1)})
    pr = mo.mesh_properties("box", root)
    assert pr.volume == pytest.approx(np.prod(size), rel=1e-9)
    np.testing.assert_allclose(pr.com, off, atol=1e-12)
    a, b, c = size
    expected = sorted([m / 12 * (b * b + c * c), m / 12 * (a * a + c * c), m / 12 * (a * a + b * b)])
    np.testing.assert_allclose(sorted(pr.principal_moments), expected, rtol=1e-9)
    # scale 2: volume x8, moments x4 (same mass)
    pr2 = mo.mesh_properties("box", root, scale=2.0)
    assert pr2.volume == pytest.approx(8 * pr.volume)
    np.testing.assert_allclose(sorted(pr2.principal_moments), 4 * np.array(expected), rtol=1e-9)


def test_loaded_body_has_mesh_inertia_at_its_com(tmp_path):
    pytest.importorskip("pybullet")
    from dsc_grasp_ros.sim.scene import connect, disconnect

    size, off, m = (0.10, 0.04, 0.02), (0.01, 0.0, 0.0), 0.3
    root = _make_root(tmp_path, {"box": (_box_obj(size, off), m)})
    p, c = connect()
    try:
        b = mo.load_mesh_object(p, c, "box", [0, 0, 0.5], [0, 0, 0, 1], root=root, mass=0.5)
        info = p.getDynamicsInfo(b, -1, physicsClientId=c)
        assert info[0] == pytest.approx(0.5)
        assert info[1] == pytest.approx(mo.LATERAL_FRICTION)
        np.testing.assert_allclose(info[3], off, atol=1e-6)  # inertial frame at the COM
        a, bb, cc = size
        np.testing.assert_allclose(sorted(info[2]), sorted([0.5 / 12 * (bb * bb + cc * cc), 0.5 / 12 * (a * a + cc * cc), 0.5 / 12 * (a * a + bb * bb)]), rtol=1e-4)
        # the link frame (mesh origin) is where we put it
        pos, _ = p.getBasePositionAndOrientation(b, physicsClientId=c)
        np.testing.assert_allclose(pos, [0.01, 0, 0.5], atol=1e-6)  # base pose = COM pose in PyBullet
    finally:
        disconnect(p, c)


def test_name_sets_and_errors(tmp_path):
    root = _make_root(tmp_path, {"box": (_box_obj((0.05, 0.05, 0.05)), 0.1), "boxy_thing": (_box_obj((0.05, 0.05, 0.05)), 0.1), "can": (_box_obj((0.05, 0.05, 0.05)), 0.1)})
    assert mo.benchmark_names(root) == ["box"]
    assert mo.training_names(root) == ["boxy_thing", "can"]
    assert mo.resolve_names("benchmark", root) == ["box"]
    assert mo.resolve_names("train", root) == ["boxy_thing", "can"]
    assert mo.resolve_names("can, box", root) == ["can", "box"]
    assert len(mo.resolve_names(str(root / "pile_train"))) == 3  # a folder -> its URDF paths
    assert mo.resolve_names("held-out", root) == ["boxy_thing"] == mo.object_selection("test", root)  # by its name's hash
    # a long list of names is a list, not a path (it once failed with "File name too long")
    with pytest.raises(mo.UnknownObject, match="x" * 40):
        mo.resolve_names(",".join(["can"] * 30 + ["x" * 300]), root)
    assert mo.resolve_names(",".join(["can"] * 100), root) == ["can"] * 100
    with pytest.raises(mo.UnknownObject, match=r"'bx'.*close matches: box"):
        mo.resolve_names("can,bx", root)
    with pytest.raises(mo.ObjectsNotFound, match="pile_train"):
        mo.objects_root(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):  # the error is a FileNotFoundError for callers that catch that
        mo.benchmark_names(tmp_path / "nowhere")


def test_shared_benchmark_set_is_disjoint_from_training():
    try:
        root = mo.objects_root()
    except mo.ObjectsNotFound as e:
        pytest.skip(f"shared object meshes absent: {e}")
    bench = mo.benchmark_names(root)
    assert len(bench) == 10 and "banana" in bench
    train = mo.training_names(root)
    assert not set(bench) & set(train)
    assert len(bench) + len(train) == len(mo.all_names(root))
    pr = mo.mesh_properties("tomato_soup_can", root)
    assert 1e-5 < min(pr.principal_moments) and max(pr.extent) < 0.3
