"""``dsc-grasp score-models``: every number of the model cards and the README table.

The scoring runs ``dsc-grasp evaluate`` and ``dsc-grasp eval-peers`` in this process and ``dsc-grasp
bench`` beside them; :mod:`dsc_grasp_ros.bench.model_card` writes the cards and the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import io
import json
import os
import shlex
import sys
import time
from pathlib import Path

from . import ROOT, invoke

DESCRIPTION = """\
Score DSC-GraspNet models for shipping: every number of the model cards and the README table.
"""

EPILOG = """\
For each model (default: the three shipped models, models/dsc_graspnet_{rgbd,d,rgb}.pt) and for
GR-ConvNet3 (../shared/peers) on the same images:

  synthetic unseen objects  --sim-test DIR: a Jacquard-format held-out set (dsc-grasp sim-dataset
                            --object-range test), --sim-depth stereo by default
  real Cornell held-out     ../shared/data/cornell, the held-out part of
                            config/splits/cornell_shared_split.json (17 images, 5 objects)
  real Jacquard held-out    ../shared/data/jacquard, all 23 images (never trained on)
  closed-loop success       dsc-grasp bench: --bench SUMMARY.json of a run that included these
                            models (matched by their weights' SHA-256), or --bench-trials N to run
                            one here (all models, GR-ConvNet3 and the oracle on the same scenes);
                            success rate with its Wilson 95 % interval

Our models are scored by `dsc-grasp evaluate` itself (run in this process, so the numbers are
exactly that command's), with --protocol paper (Cornell: native 224 centre crop; Jacquard and
Jacquard-format: centred square resized to 224; --sim-protocol for the synthetic set) and each
model's own depth reference from its metadata. GR-ConvNet3 runs its own published pipeline
(dsc-grasp eval-peers: Cornell native centre crop, Jacquard and synthetic whole image resized),
on the same selected images.

Writes (--out, default runs/scores): scores.json (every number with count/correct/accuracy,
protocol, depth reference and the command that reproduces it), scores.md (the table to paste into
the README, a training table and the notes), evals/*.json (per-image results) and bench/ (when
run here); updates each model's JSON card (metrics: synthetic_unseen, cornell_heldout,
jacquard_heldout, closed_loop, peers_same_images, scored; training: --training-info) unless
--no-cards. The weights are never touched; a card that would no longer load is put back.
Prints progress lines on stderr, then the table (or, with --json, the scores document).

Sets whose data is missing are skipped with the reason (in the table and the JSON), so the
command also runs where ../shared is absent. Bad input (a missing model, --sim-test folder or
bench summary) exits with status 2 and one line naming it.

examples:
  # before shipping: three models, the v2 held-out set, a paper-size closed-loop run
  dsc-grasp score-models --sim-test SIMV2/test --bench-trials 20 --training-info train_info.json
  # a benchmark that already ran (dsc-grasp bench --policies oracle,models/...pt,grconvnet3 --out runs/bench)
  dsc-grasp score-models --sim-test SIMV2/test --bench runs/bench/summary.json
  # a quick look at one model: 2 images of each set, a 1-trial bench on one object, no card written
  dsc-grasp score-models runs/x/model.pt --sim-test SIMV2/test --limit 2 --bench-trials 1 --bench-objects banana --no-cards
  # write the cards of a scoring later, or print its table: dsc-grasp model-card --from runs/scores/scores.json

--training-info: a JSON file (or text) whose entries are merged into each card's "training":
  {"all": {"hardware": "CPU, 2 cores (x86-64 VM)"},
   "dsc_graspnet_rgbd": {"data": "1,312 synthetic v2 images + 33 Cornell", "minutes": 95, "steps": 1200}}
(keys: "all", a model file's name or stem; the training table shows data, epochs/steps, init_from,
minutes and hardware).
"""

DEFAULT_MODELS = [ROOT / "models" / f"dsc_graspnet_{m}.pt" for m in ("rgbd", "d", "rgb")]
DEFAULT_SPLIT = ROOT / "config" / "splits" / "cornell_shared_split.json"
PEER = "grconvnet3"
PEER_TITLE = "GR-ConvNet3 (`../shared/peers`, Cornell weights, its own pipeline)"
METRIC = "top-1 grasp; correct if angle difference < 30 deg (mod 180) and IoU > 0.25 with one ground-truth rectangle"


class ScoreError(RuntimeError):
    """Bad input: the message names it (exit status 2)."""


def _portable(p) -> str | None:
    from ..core.model_io import portable_path

    return portable_path(p) if p is not None else None


def _cmd(tokens: list) -> str:
    """A command line with every existing path made portable (relative to the project)."""
    out = []
    for t in map(str, tokens):
        key, eq, val = t.partition("=")
        if eq and key.startswith("--") and (val.startswith("/") or Path(val).exists()):
            t = f"{key}={_portable(val)}"
        elif not t.startswith("-") and (t.startswith(("/", "~")) or (("/" in t or t.endswith((".pt", ".json"))) and Path(t).exists())):
            t = _portable(t)
        out.append(t)
    return shlex.join(out)


class Log:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[score-models {time.perf_counter() - self.t0:6.1f} s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the image sets
def plan_sets(args) -> dict:
    """What each column scores: dataset, folder, depth image, split, protocol, peer crop; or why it is skipped."""
    shared = Path(args.shared)
    sets: dict = {}
    if args.sim_test is None:
        sets["synthetic_unseen"] = {"skipped": "no --sim-test folder given"}
    else:
        p = Path(args.sim_test)
        if not p.is_dir():
            raise ScoreError(f"--sim-test folder {p} does not exist (a Jacquard-format held-out set: dsc-grasp sim-dataset --object-range test)")
        sets["synthetic_unseen"] = {"dataset": "jacquard-format", "root": p, "depth": args.sim_depth, "split_file": None,
                                    "protocol": args.sim_protocol, "peer_crop": "square"}
    c = shared / "cornell"
    if c.is_dir():
        split = Path(args.cornell_split)
        if not split.is_file():
            raise ScoreError(f"--cornell-split file {split} not found")
        sets["cornell_heldout"] = {"dataset": "cornell", "root": c, "depth": None, "split_file": split, "part": "test",
                                   "protocol": "paper", "peer_crop": "centre"}
    else:
        sets["cornell_heldout"] = {"skipped": f"no Cornell samples at {_portable(c)}"}
    j = shared / "jacquard"
    if j.is_dir():
        sets["jacquard_heldout"] = {"dataset": "jacquard", "root": j, "depth": "perfect", "split_file": None,
                                    "protocol": "paper", "peer_crop": "square"}
    else:
        sets["jacquard_heldout"] = {"skipped": f"no Jacquard samples at {_portable(j)}"}
    for s in sets.values():
        if not s.get("skipped") and args.limit:
            s["limit"] = args.limit
    return sets


def evaluate_ours(model: Path, s: dict, out_file: Path, args) -> dict:
    """``dsc-grasp evaluate`` on one set (in this process); its JSON result plus the command."""
    argv = ["evaluate", "--dataset", s["dataset"], "--path", str(s["root"]), "--model", str(model), "--protocol", s["protocol"]]
    if s.get("depth") and s["dataset"] != "cornell":
        argv += ["--depth", s["depth"]]
    if s.get("split_file"):
        argv += ["--split-file", str(s["split_file"]), "--part", s["part"]]
    if s.get("limit"):
        argv += ["--limit", str(s["limit"])]
    if args.device != "auto":
        argv += ["--device", args.device]
    shown = list(argv)
    argv += ["--output", str(out_file)] + ([] if args.progress else ["--no-progress"])
    with contextlib.redirect_stdout(sys.stderr if args.progress else io.StringIO()):
        rc = invoke("evaluate", argv)
    if rc != 0:
        raise ScoreError(f"dsc-grasp {' '.join(shown)} failed with status {rc}")
    r = json.loads(out_file.read_text())
    return {
        "accuracy": r["accuracy"], "correct": r["correct"], "count": r["count"],
        "protocol": r["protocol"], "protocol_crop": r["protocol_crop"], "depth_ref": r["depth_ref"],
        "depth_ref_source": r["depth_ref_source"], "dataset": s["dataset"], "path": _portable(s["root"]),
        "depth": s.get("depth"), "split_file": _portable(s.get("split_file")), "part": s.get("part", "all"),
        "limit": s.get("limit"), "inference_ms_median": round(r["inference_ms"]["median"], 2) if r.get("inference_ms") else None,
        "command": _cmd(["dsc-grasp", *shown]), "eval_file": _portable(out_file), "per_image": r["per_image"],
    }


def evaluate_peer(s: dict, out_file: Path, args) -> dict:
    """GR-ConvNet3 with its own pipeline on the same images (``dsc-grasp eval-peers``, in this process)."""
    argv = ["--dataset", s["dataset"], "--path", str(s["root"]), "--crop", s["peer_crop"], "--peers", PEER, "--no-ours"]
    if s.get("depth"):
        argv += ["--depth", s["depth"]]
    if s.get("split_file"):
        argv += ["--split-file", str(s["split_file"]), "--part", s["part"]]
    if s.get("limit"):
        argv += ["--limit", str(s["limit"])]
    if args.peers_dir:
        argv += ["--peers-dir", str(args.peers_dir)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = invoke("eval_peers", ["eval-peers", *argv, "--json", "--no-progress"])
    if rc != 0:
        raise ScoreError(f"dsc-grasp eval-peers {' '.join(argv)} failed with status {rc}")
    doc = json.loads(buf.getvalue())
    out_file.write_text(json.dumps(doc, indent=1) + "\n")
    (r,) = doc["results"]
    return {
        "accuracy": r["accuracy"], "correct": r["correct"], "count": r["count"],
        "pipeline": f"GR-ConvNet3's own: {r['input']}, depth minus the crop mean", "crop": s["peer_crop"],
        "dataset": s["dataset"], "path": _portable(s["root"]), "depth": s.get("depth"),
        "split_file": _portable(s.get("split_file")), "part": s.get("part", "all"), "limit": s.get("limit"),
        "command": _cmd(["dsc-grasp", "eval-peers", *argv]), "eval_file": _portable(out_file), "weights": _portable(r["weights"]),
        "per_image": r["per_image"],
    }


# --------------------------------------------------------------------------- closed loop
def bench_argv(models: list[Path], args, out_dir: Path, with_peer: bool) -> list[str]:
    """``dsc-grasp bench`` arguments: every model (policy = the file's stem), GR-ConvNet3 and the oracle."""
    stems = [m.stem for m in models]
    if len(set(stems)) != len(stems):
        raise ScoreError(f"--bench-trials needs model files with distinct names (bench policies are named after them): {stems}")
    if any("," in str(m) or "=" in str(m) for m in models):
        raise ScoreError("--bench-trials: model paths must not contain ',' or '='")
    pols = (["oracle"] if args.bench_oracle else []) + [str(m) for m in models]
    if with_peer:
        pols.append(f"{PEER}={args.peers_dir}" if args.peers_dir else PEER)
    return ["bench", "--policies", ",".join(pols), "--trials", str(args.bench_trials), "--objects", args.bench_objects,
            "--seed", str(args.bench_seed), "--out", str(out_dir), "--device", "cpu" if args.device == "auto" else args.device]


class BenchRun:
    """The closed-loop run: in a child process beside the evaluations (``parallel``: PyBullet and
    the bench's networks on one core, the evaluations on the other), else in this process."""

    def __init__(self, argv: list[str], out_dir: Path, parallel: bool, progress: bool, log):
        self.argv, self.out_dir, self.parallel, self.progress, self.log = argv, Path(out_dir), parallel, progress, log
        self.proc = None
        self.total = None

    def start(self) -> None:
        if not self.parallel:
            return
        import os
        import subprocess

        self.out_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.log_file = open(self.out_dir / "bench.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "dsc_grasp_ros.cli", *self.argv, "--quiet"], cwd=ROOT, env=env,
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        self.log(f"closed loop started in a child process (pid {self.proc.pid}, 1 thread; log {_portable(self.out_dir / 'bench.log')}): "
                 f"dsc-grasp {' '.join(self.argv)}")

    def _done_trials(self) -> int:
        f = self.out_dir / "trials.jsonl"
        try:
            return sum(1 for _ in open(f)) if f.is_file() else 0
        except OSError:
            return 0

    def finish(self) -> Path:
        if not self.parallel:
            self.log(f"closed loop: dsc-grasp {' '.join(self.argv)}")
            with contextlib.redirect_stdout(sys.stderr if self.progress else io.StringIO()):
                rc = invoke("bench", self.argv + ([] if self.progress else ["--quiet"]))
        else:
            last = 0.0
            while self.proc.poll() is None:
                time.sleep(1.0)
                if time.perf_counter() - last >= 30:
                    last = time.perf_counter()
                    self.log(f"closed loop: {self._done_trials()} trials done")
            rc = self.proc.returncode
            self.log_file.close()
        if rc != 0:
            tail = (self.out_dir / "bench.log").read_text()[-600:] if (self.out_dir / "bench.log").is_file() else ""
            raise ScoreError(f"dsc-grasp bench failed with status {rc}{': ' + tail.strip() if tail else ''}")
        return self.out_dir / "summary.json"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def read_bench(summary_path: Path, rows: list[dict], command: str | None) -> dict:
    """Closed-loop results from a bench summary: our models matched by SHA-256, the peer by name."""
    summary_path = Path(summary_path)
    if summary_path.is_dir():
        summary_path = summary_path / "summary.json"
    if not summary_path.is_file():
        raise ScoreError(f"bench summary {summary_path} not found (dsc-grasp bench --out DIR writes DIR/summary.json)")
    doc = json.loads(summary_path.read_text())
    if "policies" not in doc or "policies_described" not in doc:
        raise ScoreError(f"{summary_path} is not a dsc-grasp bench summary.json")
    pols = doc["policies"]
    info = {
        "source": _portable(summary_path), "command": command, "objects": doc.get("objects", []),
        "trials_per_object": doc.get("trials_per_object"), "seed": doc.get("seed"), "scene": doc.get("scene"),
        "execution": doc.get("execution"), "code_version": doc.get("code_version"), "wall_time_s": doc.get("wall_time_s"),
        "oracle": pols.get("oracle", {}).get("overall"), "unmatched": [],
    }
    sc = doc.get("scene") or {}
    common = {"objects": len(info["objects"]), "trials_per_object": info["trials_per_object"], "seed": info["seed"],
              "camera": sc.get("camera"), "table_texture": sc.get("table_texture"), "source": info["source"], "command": command}
    for row in rows:
        if row["kind"] == "model":
            hits = [p for p in doc["policies_described"] if p.get("sha256") and p.get("sha256") == row["weights_sha256"]]
            hits.sort(key=lambda p: p["name"] != Path(row["file"]).stem)
            name = hits[0]["name"] if hits else None
        else:
            name = row["name"] if row["name"] in pols else None
        if name is None or name not in pols:
            info["unmatched"].append(row["name"])
            continue
        described = next((p for p in doc["policies_described"] if p.get("name") == name), {})
        post = {k: described[k] for k in ("top_k", "finger_check", "finger_max_turn_deg") if k in described}
        row["closed_loop"] = {**pols[name]["overall"], "policy": name, **common, **({"post_processing": post} if post else {}),
                              "failures": pols[name].get("failures"), "per_object": pols[name].get("objects")}
    return info


# --------------------------------------------------------------------------- main
def register(sub):
    ap = sub.add_parser("score-models", help="score models for shipping: held-out sets, closed loop, GR-ConvNet3; write the cards",
                        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path, help="model files (.pt with .json beside them); default: models/dsc_graspnet_{rgbd,d,rgb}.pt")
    g = ap.add_argument_group("image sets")
    g.add_argument("--sim-test", type=Path, default=None, metavar="DIR", help="Jacquard-format held-out set of unseen objects (synthetic); omitted: that column is 'not scored'")
    g.add_argument("--sim-depth", default="stereo", choices=["stereo", "perfect"], help="depth image of --sim-test (default: %(default)s, the noisy one)")
    g.add_argument("--sim-protocol", default="paper", choices=["paper", "native", "square", "scale"],
                   help="dsc-grasp evaluate --protocol for --sim-test (default: %(default)s = centred square resized; 'scale' = the node's ROI from camera.json)")
    g.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", metavar="DIR", help="real samples with cornell/ and jacquard/ (default: ../shared/data)")
    g.add_argument("--cornell-split", type=Path, default=DEFAULT_SPLIT, metavar="FILE", help="split whose 'test' ids are the Cornell held-out part (default: config/splits/cornell_shared_split.json)")
    g.add_argument("--limit", type=int, default=None, metavar="N", help="score only the first N images of each set (smoke tests; the table says so)")
    p = ap.add_argument_group("peer")
    p.add_argument("--peers-dir", type=Path, default=None, metavar="DIR", help="GR-ConvNet3 weights folder (default: ../shared/peers)")
    p.add_argument("--no-peer", dest="peer", action="store_false", help="no GR-ConvNet3 row")
    b = ap.add_argument_group("closed loop")
    bx = b.add_mutually_exclusive_group()
    bx.add_argument("--bench", type=Path, default=None, metavar="SUMMARY", help="summary.json (or its folder) of a dsc-grasp bench run that included these model files")
    bx.add_argument("--bench-trials", type=int, default=None, metavar="N", help="run dsc-grasp bench here with N trials per object (20 = the paper's size)")
    b.add_argument("--bench-objects", default="benchmark", metavar="SPEC", help="with --bench-trials: dsc-grasp bench --objects (default: %(default)s, the 10 YCB objects)")
    b.add_argument("--bench-seed", type=int, default=0, help="with --bench-trials: dsc-grasp bench --seed (default: %(default)s)")
    b.add_argument("--sequential", dest="parallel", action="store_false",
                   help="with --bench-trials: run the bench after the evaluations in this process (default: in a child process "
                   "with 1 thread beside them, when the machine has 2 or more cores)")
    b.add_argument("--no-bench-oracle", dest="bench_oracle", action="store_false", help="with --bench-trials: leave out the oracle (it checks the execution; ~1/5 of the bench time)")
    o = ap.add_argument_group("output")
    o.add_argument("--out", type=Path, default=ROOT / "runs" / "scores", metavar="DIR", help="scores.json, scores.md, evals/, bench/ (default: runs/scores)")
    o.add_argument("--no-cards", dest="cards", action="store_false", help="do not update the models' JSON cards")
    o.add_argument("--training-info", default=None, metavar="FILE|JSON", help="entries merged into each card's 'training' (see below)")
    o.add_argument("--json", action="store_true", help="print the scores document (JSON) instead of the table")
    o.add_argument("--no-progress", dest="progress", action="store_false", help="no progress lines or bars")
    ap.add_argument("--device", default="auto", help="evaluate --device / bench --device: auto (CUDA if present; bench: cpu), cpu, cuda (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice, OMP_NUM_THREADS)")
    ap.set_defaults(func=run, _parser=ap)


def run(args) -> int:
    ap = args._parser
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    if args.bench_trials is not None and args.bench_trials < 1:
        ap.error("--bench-trials must be >= 1")
    log = Log(args.progress)
    t0 = time.perf_counter()
    command = _cmd(["dsc-grasp", *getattr(args, "argv", ["score-models"])])

    import torch

    from ..bench import model_card
    from ..bench.runner import _code_version
    from ..core.model_io import ModelError, load_metadata

    args.parallel = bool(args.bench_trials) and args.parallel and (os.cpu_count() or 1) >= 2
    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.parallel:  # one core for the bench's child process, the rest for the evaluations
        torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1)))
    models = [Path(m) for m in (args.models or DEFAULT_MODELS)]
    try:
        training_info = model_card.read_training_info(args.training_info)
        rows = []
        for m in models:
            if not m.is_file():
                raise ScoreError(f"model file {m} not found")
            meta = load_metadata(m)
            rows.append({"name": m.stem, "kind": "model", "file": _portable(m), "path_abs": str(m.resolve()),
                         "modality": meta.modality, "depth_ref": meta.depth_ref, "upsample_order": meta.network.get("upsample_order", "eq5"),
                         "weights_sha256": meta.weights_sha256, "card": _portable(m.with_suffix(".json")),
                         "training": {**meta.training, **(model_card.training_for(training_info, m) or {})}, "results": {}})
        sets = plan_sets(args)
        peers_dir = Path(args.peers_dir) if args.peers_dir else ROOT.parent / "shared" / "peers"
        with_peer = args.peer and peers_dir.is_dir()
        if with_peer:
            rows.append({"name": PEER, "kind": "peer", "title": PEER_TITLE, "results": {}, "weights": None})
        peer_note = None if with_peer else ("--no-peer" if not args.peer else f"no peer weights at {_portable(peers_dir)}")
        if args.bench is not None and not (args.bench.is_file() or (args.bench / "summary.json").is_file()):
            raise ScoreError(f"bench summary {args.bench} not found (dsc-grasp bench --out DIR writes DIR/summary.json)")
    except (ScoreError, ModelError, ValueError, OSError) as e:
        print(f"dsc-grasp score-models: error: {e}", file=sys.stderr)
        return 2

    out = Path(args.out)
    (out / "evals").mkdir(parents=True, exist_ok=True)
    bench = None
    if args.bench_trials:
        try:
            bench = BenchRun(bench_argv([Path(r["path_abs"]) for r in rows if r["kind"] == "model"], args, out / "bench", with_peer),
                             out / "bench", args.parallel, args.progress, log)
        except ScoreError as e:
            print(f"dsc-grasp score-models: error: {e}", file=sys.stderr)
            return 2
        bench.start()
    active = [k for k, s in sets.items() if not s.get("skipped")]
    jobs = [(row, k) for k in active for row in rows]
    log(f"{len(models)} model(s){' + GR-ConvNet3' if with_peer else ''} on {len(active)} set(s): {', '.join(active) or 'none'}"
        f" ({len(jobs)} evaluations){'; closed loop ' + ('beside them' if args.parallel else 'after them') if args.bench_trials else ''}")
    try:
        for i, (row, key) in enumerate(jobs, 1):
            s = sets[key]
            f = out / "evals" / f"{row['name']}__{key}.json"
            t1 = time.perf_counter()
            r = evaluate_ours(Path(row["path_abs"]), s, f, args) if row["kind"] == "model" else evaluate_peer(s, f, args)
            row["results"][key] = r
            if row["kind"] == "peer":
                row["weights"] = r["weights"]
            log(f"[{i}/{len(jobs)}] {row['name']} on {key}: {model_card.fmt_accuracy(r)} in {time.perf_counter() - t1:.1f} s")
        bench_info: dict
        if args.bench_trials:
            summary = bench.finish()
            bench_cmd = _cmd(["dsc-grasp", "bench", "--policies", ",".join((["oracle"] if args.bench_oracle else [])
                              + [r["file"] for r in rows if r["kind"] == "model"] + ([PEER] if with_peer else [])),
                              "--trials", args.bench_trials, "--objects", args.bench_objects, "--seed", args.bench_seed, "--out", out / "bench"])
            bench_info = read_bench(summary, rows, bench_cmd)
        elif args.bench is not None:
            bench_info = read_bench(args.bench, rows, None)
        else:
            bench_info = {"skipped": "no --bench summary or --bench-trials given"}
        for name in bench_info.get("unmatched", []):
            log(f"warning: {name} is not in the bench run {bench_info.get('source')} (other weights?): its closed-loop cell stays empty")
    except (ScoreError, ModelError, FileNotFoundError, ValueError) as e:
        print(f"dsc-grasp score-models: error: {e}", file=sys.stderr)
        return 2
    finally:
        if bench is not None:
            bench.stop()

    set_info = {}
    for k, s in sets.items():
        if s.get("skipped"):
            set_info[k] = {"skipped": s["skipped"]}
            continue
        first = next((r["results"][k] for r in rows if r["kind"] == "model" and k in r["results"]), {})
        set_info[k] = {"title": model_card.SETS[k], "dataset": s["dataset"], "path": _portable(s["root"]), "depth": s.get("depth"),
                       "split_file": _portable(s.get("split_file")), "part": s.get("part", "all"), "limit": s.get("limit"),
                       "images": first.get("count"), "protocol": s["protocol"], "protocol_crop": first.get("protocol_crop"),
                       "peer_crop": s["peer_crop"]}
    doc = {
        "format": "dsc_grasp_ros.scores/1",
        "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "code_version": _code_version(),
        "metric": METRIC,
        "threads": torch.get_num_threads(),
        "sets": set_info,
        "closed_loop": bench_info,
        "peer": {"name": PEER, "included": True} if with_peer else {"name": PEER, "included": False, "reason": peer_note},
        "rows": rows,
    }
    doc["markdown"] = model_card.markdown(doc)
    cards = []
    if args.cards:
        try:
            cards = model_card.write_cards(doc, training_info, log)
        except (model_card.CardError, OSError) as e:
            print(f"dsc-grasp score-models: error: {e}", file=sys.stderr)
            return 2
    doc["cards_written"] = [_portable(c) for c in cards]
    doc["elapsed_s"] = round(time.perf_counter() - t0, 1)
    (out / "scores.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "scores.md").write_text(doc["markdown"])
    log(f"done in {doc['elapsed_s']:.0f} s: {_portable(out / 'scores.json')}, {_portable(out / 'scores.md')}"
        + (f", {len(cards)} card(s) updated" if cards else ", no card written"))
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(doc["markdown"])
    return 0
