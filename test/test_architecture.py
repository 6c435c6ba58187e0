"""The layers of the package: the core is ROS-free and imports only itself; only ``ros/`` and
``devtools/`` import rclpy or message packages; every import runs down the layers; no import cycle."""

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "dsc_grasp_ros"
ROS_LAYERS = ("ros", "devtools")

#: what each part may import from the package (besides itself and the package root)
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "sim": {"core"},
    "bench": {"core", "sim"},
    "training": {"core", "data", "sim", "bench"},
    "ros": {"core", "devtools"},  # devtools: only the tf2 stand-in, where tf2_ros is not installed
    "devtools": {"core", "ros", "bench"},
    "commands": {"core", "data", "sim", "bench", "training", "ros", "devtools", "commands"},
    "cli": {"commands"},
}


def ros_imports(path: Path) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for n in names:
            top = n.split(".")[0]
            if top in ("rclpy", "tf2_ros", "tf2_py", "cv_bridge", "message_filters", "launch", "launch_ros") or top.endswith("_msgs"):
                bad.append(f"{path.name}:{node.lineno} imports {n}")
    return bad


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_imports(path: Path) -> set[str]:
    """Modules of this package that ``path`` imports (top-level and inside functions)."""
    mod = _module(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("dsc_grasp_ros"):
                continue
            for a in node.names:  # "from pkg import module"
                cand = f"{target}.{a.name}"
                out.add(cand if (PKG.parent / (cand.replace(".", "/") + ".py")).exists() else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("dsc_grasp_ros"))
    out.discard(mod)
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_core_imports_no_ros():
    core = [p for p in PKG.rglob("*.py") if p.relative_to(PKG).parts[0] not in ROS_LAYERS]
    assert len(core) > 5
    bad = [b for p in core for b in ros_imports(p)]
    assert not bad, "\n".join(bad)


def test_checker_catches_a_ros_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy\nfrom sensor_msgs.msg import Image\nimport rclpy.node\nfrom .ros import x\n")
    assert len(ros_imports(probe)) == 2


def test_imports_run_down_the_layers():
    bad = []
    for p in PKG.rglob("*.py"):
        me = _part(_module(p))
        if me == "":
            continue
        assert me in ALLOWED, f"{p.relative_to(PKG)}: a part of the package the layer table does not know"
        for target in package_imports(p):
            other = _part(target)
            if other not in ("", me) and other not in ALLOWED[me]:
                bad.append(f"{p.relative_to(PKG)} imports {target} ({me} may import {sorted(ALLOWED[me]) or 'only itself'})")
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    graph = {_module(p): package_imports(p) for p in PKG.rglob("*.py")}
    # a package's __init__ importing its own modules is not a cycle worth reporting
    graph = {m: {t for t in ts if t in graph and not m == t.rsplit(".", 1)[0]} for m, ts in graph.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_layer_checker_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    # the checkers resolve relative imports the way Python does
    pkg = tmp_path / "dsc_grasp_ros"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("from ..ros import node\nfrom . import b\n")
    (pkg / "core" / "b.py").write_text("def f():\n    from .a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", pkg)
    imports = package_imports(pkg / "core" / "a.py")
    assert imports == {"dsc_grasp_ros.ros", "dsc_grasp_ros.core.b"}
    assert package_imports(pkg / "core" / "b.py") == {"dsc_grasp_ros.core.a"}
