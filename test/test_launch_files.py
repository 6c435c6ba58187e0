"""Static checks of the launch files (the ``launch`` package cannot be installed here): each file
compiles, every file it references exists and is installed by setup.py, every parameter it sets
is one grasp_node declares, every remapped topic is one of the node's inputs, every
LaunchConfiguration is declared, and its executables exist."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

from dsc_grasp_ros.ros import params as P

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
NODE_INPUTS = {"color/image_raw", "depth/image_raw", "color/camera_info"}
#: realsense2_camera 4.5x rs_launch.py arguments this package passes.
RS_LAUNCH_ARGS = {"camera_name", "camera_namespace", "align_depth.enable", "enable_sync", "rgb_camera.color_profile", "depth_module.color_profile",
                  "depth_module.depth_profile", "pointcloud.enable"}


def _installed_patterns():
    tree = ast.parse((ROOT / "setup.py").read_text())
    return [n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "files"
            and n.args and isinstance(n.args[0], ast.Constant)]


def _console_scripts():
    return set(re.findall(r'"(\w[\w-]*) = dsc_grasp_ros[\w.]*:\w+"', (ROOT / "setup.py").read_text()))


def _const_strings(node):
    return [a.value for a in node if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def _kw(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"grasp.launch.py", "realsense_grasp.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_static(path):
    src = path.read_text()
    compile(src, str(path), "exec")
    tree = ast.parse(src)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    fname = lambda c: getattr(c.func, "id", getattr(c.func, "attr", ""))  # noqa: E731
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)

    # files referenced as os.path.join(share, "dir", "file") / PathJoinSubstitution([share, "dir", "file"])
    patterns = _installed_patterns()
    referenced = []
    for c in calls:
        parts = None
        if fname(c) == "join" and len(c.args) >= 3:
            first = c.args[0]
            if isinstance(first, ast.Call) and _const_strings(first.args) != ["dsc_grasp_ros"]:
                continue  # another package's file (realsense2_camera's rs_launch.py)
            parts = _const_strings(c.args[1:])
        elif fname(c) == "PathJoinSubstitution" and c.args and isinstance(c.args[0], ast.List):
            parts = _const_strings(c.args[0].elts[1:])
        if parts and parts[0] in ("config", "launch", "models"):
            referenced.append("/".join(parts))
    for rel in referenced:
        assert (ROOT / rel).is_file(), f"{path.name} references {rel}, which does not exist"
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not installed by setup.py data_files"

    # every LaunchConfiguration is declared
    declared = {_const_strings(c.args[:1])[0] for c in calls if fname(c) == "DeclareLaunchArgument"}
    used = {_const_strings(c.args[:1])[0] for c in calls if fname(c) == "LaunchConfiguration" and _const_strings(c.args[:1])}
    assert used <= declared, f"undeclared launch arguments {used - declared}"

    scripts = _console_scripts()
    for c in calls:
        if fname(c) not in ("Node", "LifecycleNode"):
            continue
        pkg, exe = _kw(c, "package"), _kw(c, "executable")
        if pkg.value != "dsc_grasp_ros":
            continue
        assert exe.value in scripts, f"executable {exe.value} is not a console script in setup.py"
        assert (ROOT / ".venv" / "bin" / exe.value).exists() or not (ROOT / ".venv").exists()
        params = _kw(c, "parameters")
        for d in (e for e in params.elts if isinstance(e, ast.Dict)):
            for k in _const_strings(d.keys):
                assert k in P.BY_NAME or k == "use_sim_time", f"{path.name} sets {k!r}, which grasp_node does not declare"
        remaps = _kw(c, "remappings")
        for t in remaps.elts:
            assert t.elts[0].value in NODE_INPUTS, f"remap of unknown input {t.elts[0].value}"
        assert {t.elts[0].value for t in remaps.elts} == NODE_INPUTS

    # parameters set from launch arguments (PARAMETER_ARGS) and dicts built in the file
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PARAMETER_ARGS" for t in node.targets):
            for name in _const_strings(node.value.elts):
                assert name in P.BY_NAME, f"{path.name} sets parameter {name!r}, which grasp_node does not declare"
                assert name in declared, f"PARAMETER_ARGS {name!r} is not a declared launch argument"
    for d in (n for n in ast.walk(tree) if isinstance(n, ast.Dict)):
        keys = _const_strings(d.keys)
        if "use_sim_time" in keys:  # the node's parameter override dict
            assert all(k in P.BY_NAME or k == "use_sim_time" for k in keys), keys

    # arguments passed to included launch files
    for c in calls:
        if fname(c) != "IncludeLaunchDescription":
            continue
        src_call = c.args[0]
        inner = ast.unparse(src_call)
        la = _kw(c, "launch_arguments")
        keys = _const_strings(la.func.value.keys) if la is not None else []
        if "rs_launch.py" in inner:
            assert set(keys) <= RS_LAUNCH_ARGS, set(keys) - RS_LAUNCH_ARGS
            assert "align_depth.enable" in keys
        elif "grasp.launch.py" in inner:
            own = ast.parse((ROOT / "launch" / "grasp.launch.py").read_text())
            own_args = {_const_strings(n.args[:1])[0] for n in ast.walk(own) if isinstance(n, ast.Call)
                        and getattr(n.func, "id", "") == "DeclareLaunchArgument"}
            assert set(keys) <= own_args, set(keys) - own_args


def test_grasp_launch_defaults_to_realsense_topics():
    src = (ROOT / "launch" / "grasp.launch.py").read_text()
    assert '"camera_ns", default_value="/camera/camera"' in src
    assert "OpaqueFunction(function=_grasp_node)" in src
    assert '"/aligned_depth_to_color/image_raw"' in src
    assert "fastdds_large_images.xml" in src


def _launch_actions(path):
    """The actions listed in ``LaunchDescription([...])`` of ``generate_launch_description``, in order."""
    tree = ast.parse(path.read_text())
    gen = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description")
    ld = next(n for n in ast.walk(gen) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "LaunchDescription")
    return ld.args[0].elts


def test_realsense_launch_sets_the_fast_dds_profile_before_the_camera_starts():
    """The camera process inherits the environment when it is launched: the shared-memory profile
    (32 MB segments, 640x480 images over SHM) must be set before the RealSense include, not only in
    grasp.launch.py, which is included after it."""
    actions = _launch_actions(ROOT / "launch" / "realsense_grasp.launch.py")
    names = [getattr(a.func, "id", "") if isinstance(a, ast.Call) else "" for a in actions]
    rs = next(i for i, a in enumerate(actions) if names[i] == "IncludeLaunchDescription" and "rs_launch" in ast.unparse(a))
    env_before = {_const_strings(a.args[:1])[0]: a for a in actions[:rs] if getattr(a.func, "id", "") == "SetEnvironmentVariable"}
    for var in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE", "RMW_FASTRTPS_USE_QOS_FROM_XML"):
        assert var in env_before, f"{var} is not set before the RealSense include (actions: {names})"
    tree = ast.parse((ROOT / "launch" / "realsense_grasp.launch.py").read_text())
    assigned = {t.id: ast.unparse(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    for var in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        value = env_before[var].args[1]
        text = assigned.get(value.id, "") if isinstance(value, ast.Name) else ast.unparse(value)
        assert "fastdds_large_images.xml" in text, ast.unparse(env_before[var])
    # the same profile file the node's launch file uses, and it is installed
    assert "fastdds_large_images.xml" in (ROOT / "launch" / "grasp.launch.py").read_text()
    assert (ROOT / "config" / "fastdds_large_images.xml").is_file()


def test_realsense_launch_gives_d405_its_colour_profile():
    """A D405 has no RGB module: its colour stream is configured by depth_module.color_profile."""
    src = (ROOT / "launch" / "realsense_grasp.launch.py").read_text()
    assert '"depth_module.color_profile"' in src and '"rgb_camera.color_profile"' in src


def test_camera_namespace_is_normalised_into_valid_topics():
    """camera_namespace:='' gave '//camera/color/image_raw' (an invalid remap); the launch joins the
    namespace parts without empty ones."""
    src = (ROOT / "launch" / "grasp.launch.py").read_text()
    tree = ast.parse(src)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "camera_topic_prefix")
    ns = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "grasp.launch.py", "exec"), ns)  # noqa: S102 - our own file
    f = ns["camera_topic_prefix"]
    assert f("//camera") == "/camera"
    assert f("/camera/camera/") == "/camera/camera"
    assert f("/") == ""
    assert f("cam1//camera") == "/cam1/camera"
