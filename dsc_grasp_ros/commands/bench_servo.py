"""``dsc-grasp bench --mode servo``: the closed-loop wrist-camera benchmark (:mod:`dsc_grasp_ros.bench.servo`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def format_table(summary: dict, settings: dict) -> str:
    lines = [f"servo {settings['scenario']} at {settings['rate_hz']:g} Hz (simulated); wrist camera {settings['width']}x{settings['height']}, "
             f"{settings['hfov_deg']:g} deg HFOV",
             f"{'policy':28s} {'success':>9s} {'Wilson 95%':>13s} {'switches':>9s} {'jitter mm/deg':>14s} {'latency ms':>11s} {'Hz':>6s}"]
    for name, s in summary.items():
        j = s.get("jitter") or {}
        jit = f"{j['position_mm']:.2f}/{j['angle_deg']:.2f}" if j.get("position_mm") is not None else "-"
        lat = s["latency_ms"] or {}
        lines.append(f"{name:28s} {s['success']:>3d}/{s['trials']:<4d} {100 * s['wilson95'][0]:5.1f}-{100 * s['wilson95'][1]:5.1f}% "
                     f"{s['switches_per_trial']:9.2f} {jit:>14s} {lat.get('median', float('nan')):11.1f} {s['perception_hz'] or 0:6.1f}")
    return "\n".join(lines)


def plot_trials(records, out: Path, n: int = 12) -> Path:
    """Top view of the first ``n`` trials per policy: the TCP path and the tracked target."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r.policy for r in records))
    cols = min(n, max(sum(r.policy == nm for r in records) for nm in names))
    fig, axes = plt.subplots(len(names), cols, figsize=(2.2 * cols, 2.3 * len(names)), squeeze=False)
    pts = [(row[1], row[2]) for r in records for row in r.path] + [(row[4], row[5]) for r in records for row in r.path if row[4] is not None]
    lo, hi = (np.min(pts, axis=0) - 0.02, np.max(pts, axis=0) + 0.02) if pts else (np.zeros(2), np.ones(2))
    for i, nm in enumerate(names):
        rs = [r for r in records if r.policy == nm][:cols]
        for j in range(cols):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            if j >= len(rs):
                ax.axis("off")
                continue
            r = rs[j]
            tcp = [(row[1], row[2]) for row in r.path]
            tgt = [(row[4], row[5]) for row in r.path if row[4] is not None]
            if tcp:
                ax.plot(*zip(*tcp), "-", color="0.4", lw=1)
            if tgt:
                ax.plot(*zip(*tgt), ".", color="tab:blue", ms=3)
            ax.set_xlim(lo[0], hi[0]), ax.set_ylim(lo[1], hi[1])
            ax.set_aspect("equal")
            ax.set_title(f"{r.object[:14]} {r.trial}", fontsize=7)
            for side in ax.spines.values():
                side.set_color("tab:green" if r.success else "tab:red")
                side.set_linewidth(2)
            if j == 0:
                ax.set_ylabel(nm, fontsize=7)
    fig.suptitle("servo trials, top view: TCP path (grey), tracked target (blue); green = success", fontsize=9)
    fig.tight_layout()
    path = out / "servo_trials.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_servo_bench(args, build_policies) -> int:
    """``build_policies``: :func:`dsc_grasp_ros.commands.bench.build_policies` (passed in: no import cycle)."""
    from dataclasses import asdict

    from ..bench.policies import ModelPolicy, PolicyError
    from ..bench.servo import ServoSettings, run_servo
    from ..sim import mesh_objects as mo

    try:
        objects = mo.resolve_names(args.objects, args.objects_root)
        settings = ServoSettings(scenario=args.scenario, rate_hz=args.rate, depth_noise=args.depth_noise,
                                 support_plane=args.support_plane).validate()
        # through the node (@node): its own tracker makes ~/grasp the target, with the servo's near-range hold
        node_params = {"tracking": True, "track_near_range_m": settings.near_range_m, "support_plane": settings.support_plane}
        policies = build_policies(args.policies, args.device, args.finger_check, args.finger_max_turn, "vertical", args.view,
                                  node_params)
    except (mo.ObjectsNotFound, mo.UnknownObject, PolicyError, ValueError) as e:
        print(f"dsc-grasp bench: error: {e}", file=sys.stderr)
        return 2
    pairs = []
    for p in policies:  # ours with tracking on and off; the peers and the oracle through the same tracker
        pairs.append((p, True))
        if isinstance(p, ModelPolicy):
            pairs.append((p, False))  # the same model with tracking off: each frame's best grasp
    out = Path(args.out) if args.out else None
    sink = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        sink = open(out / "trials.jsonl", "w")

    def on_trial(r):
        if sink is not None:
            sink.write(json.dumps(r.as_dict()) + "\n")
            sink.flush()

    t0 = time.perf_counter()
    try:
        records, summary = run_servo(pairs, objects, args.trials, args.seed, settings, args.objects_root, progress=not args.quiet,
                                     jitter_frames=args.jitter_frames, on_trial=on_trial)
    finally:
        if sink is not None:
            sink.close()
        for p in policies:
            p.close()
    doc = {"mode": "servo", "settings": asdict(settings), "objects": objects, "trials_per_object": args.trials, "seed": args.seed,
           "policies": summary, "wall_time_s": round(time.perf_counter() - t0, 1), "command": "dsc-grasp " + " ".join(getattr(args, "argv", []) or [])}
    if out is not None:
        (out / "summary.json").write_text(json.dumps(doc, indent=1))
        doc["files"] = {"trials": str(out / "trials.jsonl"), "summary": str(out / "summary.json"),
                        "picture": str(plot_trials(records, out))}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(format_table(summary, doc["settings"]))
        print(f"\n{len(records)} trials, wall time {doc['wall_time_s']:.1f} s" + (f"; outputs in {out}" if out else ""))
    return 0
