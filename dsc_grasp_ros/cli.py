"""``dsc-grasp``: the command-line entry point.

Each sub-command lives in its own module, which provides ``register(subparsers)`` that adds a
parser and sets ``func`` to a callable taking the parsed arguments and returning an exit code.
Modules import their heavy dependencies (torch, rclpy, matplotlib, PyBullet) when the command
runs, so that ``dsc-grasp --help`` is quick and the commands that need no ROS work without it.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

#: Sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES = [
    "dsc_grasp_ros.commands.predict",
    "dsc_grasp_ros.commands.train",
    "dsc_grasp_ros.commands.evaluate",
    "dsc_grasp_ros.commands.export",
    "dsc_grasp_ros.commands.sim_dataset",
    "dsc_grasp_ros.commands.bench",
    "dsc_grasp_ros.commands.benchmark",
    "dsc_grasp_ros.commands.score_models",
    "dsc_grasp_ros.commands.model_card",
    "dsc_grasp_ros.commands.eval_peers",
    "dsc_grasp_ros.commands.dataset_stats",
    "dsc_grasp_ros.commands.candidates",
    "dsc_grasp_ros.commands.plot",
    "dsc_grasp_ros.commands.bag",
    "dsc_grasp_ros.commands.gpu_check",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsc-grasp",
        description="DSC-GraspNet grasp detection: predict grasps on RGB-D images, train and "
        "evaluate models on Cornell/Jacquard-format data, export to ONNX, generate synthetic data, "
        "benchmark closed-loop picking in simulation and latency, score models for their cards, "
        "draw the docs' pictures, record and replay bags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'dsc-grasp COMMAND --help' for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `dsc-grasp predict --json | head` should not print a traceback
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given (commands that record how they were run)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
