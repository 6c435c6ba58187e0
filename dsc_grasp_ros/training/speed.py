"""Training-step speed of the precisions of ``dsc-grasp train --precision``, measured interleaved.

``python -m dsc_grasp_ros.training.speed --model models/dsc_graspnet_rgbd.pt --batch 8 --rounds 10``

Each precision gets its own copy of the model (fp32 master weights, channels-last, the run's
optimiser) and trains on the same batch; the steps alternate between the precisions (the order
swapped every round) so that load from other processes hits them alike. The first ``--warmup``
rounds are not counted. Prints median and p95 seconds per step (wall clock, and the process's CPU
time, which other processes' load disturbs less on a shared machine), samples per second and the
ratio to the first precision (fp32), and the cosine between the first step's bf16 and fp32 gradients (same weights, same batch).
The batch is real Cornell images when ``--cornell`` names the folder, else the toy generator's.
A variant is ``PREC[:FLAG[:FLAG]]``: ``fp32`` or ``bf16`` with flags ``contiguous`` (the default
memory layout instead of channels-last), ``nn-dropout`` (the heads' dropout as ``torch.nn.Dropout``
instead of the network's :class:`~dsc_grasp_ros.core.network.HeadDropout`: the step before that
change) and ``compiled`` (the model through ``torch.compile``, its compilation in the warm-up
rounds); e.g. ``fp32:nn-dropout,bf16``. ``--profile`` prints the operators that took the most CPU time in one
extra step of each variant (``torch.profiler``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import numpy as np
import torch

from .loop import train_step
from .run_setup import _make_optimizer


def _batch(modality: str, batch: int, cornell: str | None, input_size: int = 224):
    from ..data import GraspDataset, collate, find_items

    if cornell:
        items = find_items("cornell", cornell)
        source = f"{min(batch, len(items))} Cornell images"
    else:
        import tempfile

        from ..data.toy import write_toy_jacquard

        root = tempfile.mkdtemp(prefix="speed_toy_")
        items = find_items("jacquard-format", write_toy_jacquard(root, n_objects=batch, per_object=1, height=480, width=640, seed=0))
        source = "toy images"
    ds = GraspDataset(items, modality, input_size, None, protocol="paper", depth_ref="plane")
    samples = [ds[i % len(ds)] for i in range(batch)]
    return collate(samples), source


VARIANT_FLAGS = ("contiguous", "nn-dropout", "compiled")


def parse_variant(variant: str) -> tuple[str, set[str]]:
    """``"bf16:nn-dropout"`` -> ``("bf16", {"nn-dropout"})``; unknown precisions or flags raise."""
    prec, *flags = variant.split(":")
    bad = [f for f in flags if f not in VARIANT_FLAGS]
    if prec not in ("fp32", "bf16") or bad:
        raise ValueError(f"unknown variant {variant!r}: fp32 or bf16, optionally :FLAG with FLAG in {', '.join(VARIANT_FLAGS)}")
    return prec, set(flags)


def variant_model(base: torch.nn.Module, variant: str) -> torch.nn.Module:
    """The copy of ``base`` a variant trains (the module whose parameters the optimiser gets)."""
    from ..core.network import HeadDropout

    _, flags = parse_variant(variant)
    m = copy.deepcopy(base)
    if "nn-dropout" in flags:
        for mod in m.modules():
            for name, child in list(mod._modules.items()):
                if isinstance(child, HeadDropout):
                    mod._modules[name] = torch.nn.Dropout(child.p)
    if "contiguous" not in flags:
        m = m.to(memory_format=torch.channels_last)
    return m


def _step(run: dict, data, variant: str) -> None:
    prec, flags = parse_variant(variant)
    train_step(run["forward"], data["x"], data["y"], run["opt"], run["scaler"], "cpu", prec, "p-huber",
               channels_last="contiguous" not in flags)


def measure(model_path: str | None, modality: str, batch: int, rounds: int, warmup: int, precisions, cornell: str | None,
            optimizer: str = "ranger", profile: bool = False) -> dict:
    from ..core.model_io import load_model
    from ..core.network import dsc_graspnet

    if model_path:
        base, meta = load_model(model_path)
        modality = meta.modality
    else:
        torch.manual_seed(0)
        base = dsc_graspnet(modality)
    base = base.train()
    data, source = _batch(modality, batch, cornell)
    runs = {}
    for prec in precisions:
        m = variant_model(base, prec)
        fwd = torch.compile(m) if "compiled" in parse_variant(prec)[1] else m
        runs[prec] = {"model": m, "forward": fwd, "opt": _make_optimizer(optimizer, m.parameters(), 1e-3), "times": [], "cpu": [],
                      "grad": None, "scaler": torch.amp.GradScaler("cuda", enabled=False)}
    for r in range(warmup + rounds):
        order = list(precisions) if r % 2 == 0 else list(reversed(precisions))
        for prec in order:
            run = runs[prec]
            torch.manual_seed(r)
            t0, c0 = time.perf_counter(), time.process_time()
            _step(run, data, prec)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r == 0:
                run["grad"] = torch.cat([p.grad.flatten() for p in run["model"].parameters()])
            if r >= warmup:
                run["times"].append(dt)
                run["cpu"].append(dc)
    res = {"batch": batch, "rounds": rounds, "warmup": warmup, "threads": torch.get_num_threads(), "data": source,
           "model": model_path or f"random {modality}", "torch": torch.__version__, "precisions": {}}
    ref = ref_cpu = None
    for prec in precisions:
        t, c = np.asarray(runs[prec]["times"]), np.asarray(runs[prec]["cpu"])
        med, med_c = float(np.median(t)), float(np.median(c))
        res["precisions"][prec] = {"median_s": round(med, 3), "p95_s": round(float(np.percentile(t, 95)), 3),
                                   "samples_per_s": round(batch / med, 2), "cpu_median_s": round(med_c, 3),
                                   "cpu_p95_s": round(float(np.percentile(c, 95)), 3), "steps": len(t)}
        ref, ref_cpu = ref or med, ref_cpu or med_c
        res["precisions"][prec]["speedup_vs_first"] = round(ref / med, 2)
        res["precisions"][prec]["cpu_speedup_vs_first"] = round(ref_cpu / med_c, 2)
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as profiler

        res["profile"] = {}
        for prec in precisions:
            with profiler(activities=[ProfilerActivity.CPU]) as prof:
                _step(runs[prec], data, prec)
            ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
            res["profile"][prec] = {"total_s": round(sum(e.self_cpu_time_total for e in ops) / 1e6, 3),
                                    "top": {e.key: round(e.self_cpu_time_total / 1e6, 3) for e in ops[:10]}}
    if "fp32" in runs and "bf16" in runs:
        g32, g16 = runs["fp32"]["grad"], runs["bf16"]["grad"]
        res["first_step_grad_cosine_bf16_fp32"] = round(float(torch.nn.functional.cosine_similarity(g32, g16, dim=0)), 4)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dsc_grasp_ros.training.speed", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--model", default=None, help="model file whose weights train (default: a fresh network)")
    ap.add_argument("--modality", default="rgbd", choices=["rgb", "d", "rgbd"], help="without --model (default: %(default)s)")
    ap.add_argument("--batch", type=int, default=8, help="batch size (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=10, help="counted steps per precision (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="uncounted first rounds (default: %(default)s)")
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated variants PREC[:FLAG...] (PREC fp32 or bf16; FLAG contiguous, nn-dropout or compiled), the first is the reference (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--cornell", default=None, metavar="DIR", help="take the batch from this Cornell folder")
    ap.add_argument("--profile", action="store_true", help="also profile one step of each variant (top operators by CPU time)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = measure(args.model, args.modality, args.batch, args.rounds, args.warmup, args.precisions.split(","), args.cornell,
                  profile=args.profile)
    print(json.dumps(res, indent=1))
    for prec, r in res["precisions"].items():
        print(f"{prec}: median {r['median_s']:.2f} s, p95 {r['p95_s']:.2f} s per batch-{res['batch']} step, "
              f"{r['samples_per_s']:.2f} samples/s, x{r['speedup_vs_first']:.2f}; CPU time median {r['cpu_median_s']:.2f} s, "
              f"p95 {r['cpu_p95_s']:.2f} s, x{r['cpu_speedup_vs_first']:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
