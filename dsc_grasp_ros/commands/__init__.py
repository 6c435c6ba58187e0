"""Sub-commands of ``dsc-grasp`` (see :mod:`dsc_grasp_ros.cli`).

Each module provides ``register(subparsers)``; a command with sub-commands of its own
(``dsc-grasp benchmark network``) adds a second level of sub-parsers the same way.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

#: The project root (``models/``, ``config/``, ``runs/``; ``../shared`` sits beside it).
ROOT = Path(__file__).resolve().parents[2]


def invoke(module: str, argv: list[str]) -> int:
    """Run one sub-command in this process, as ``dsc-grasp ARGV`` would (``module``: its module
    name in this package, e.g. ``"evaluate"``; ``argv[0]``: the command name)."""
    parser = argparse.ArgumentParser(prog="dsc-grasp")
    importlib.import_module(f"{__name__}.{module}").register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    args.argv = list(argv)
    return int(args.func(args) or 0)


def add_group(sub, name: str, help: str, description: str, epilog: str | None = None):
    """A command with sub-commands (``dsc-grasp NAME SUB``): returns the sub-parsers to add them to.
    ``dsc-grasp NAME`` alone prints its help and exits with status 2."""
    p = sub.add_parser(name, help=help, description=description, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
