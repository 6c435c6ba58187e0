"""Model cards: write a model's scores into its JSON metadata, and the README table of the scores.

The numbers come from ``dsc-grasp score-models`` (which calls this module): for each model the
paper's metric on synthetic unseen objects, the real Cornell held-out part and the real Jacquard
samples, and the closed-loop grasp success, each next to GR-ConvNet3 on the same images and
protocol. This module only *writes* them:

* :func:`update_card` puts them into ``MODEL.json`` under ``metrics`` (keys ``synthetic_unseen``,
  ``cornell_heldout``, ``jacquard_heldout``, ``closed_loop``, ``peers_same_images``, ``scored``),
  merges where/how the model was trained into ``training`` when given, and checks that the file
  still loads with ``dsc_grasp_ros.core.model_io`` (the weights and their SHA-256 are never touched;
  every path is written relative to the project, as model cards must be). Each scoring replaces
  those keys as a whole (a set that was not scored this time is removed, so a card never mixes
  numbers of different runs); the keys of the first model cards (``heldout_objects``,
  ``sim_to_real``: other crops, other sets) are removed too.
* :func:`markdown` renders the scores as the README's table (rows: models and GR-ConvNet3;
  columns: the three image sets and closed-loop success with its Wilson 95 % interval) plus a
  training table and the notes that say which protocol each number used.

``dsc-grasp model-card`` is the command line of this module.
"""

from __future__ import annotations

import json
from pathlib import Path

#: The project root (model files in a scores document are relative to it).
ROOT = Path(__file__).resolve().parents[2]
#: What scores the models; recorded in each card's ``metrics.scored.by``.
SCORED_BY = "dsc-grasp score-models"

#: The image sets of the table, in column order: key -> column title.
SETS = {
    "synthetic_unseen": "synthetic unseen objects",
    "cornell_heldout": "real Cornell held-out",
    "jacquard_heldout": "real Jacquard held-out",
}
#: metrics keys this module owns in a card (replaced as a whole by every scoring).
OWNED_KEYS = (*SETS, "closed_loop", "peers_same_images", "scored")
#: metrics keys of the first model cards (before dsc-grasp score-models existed), superseded.
LEGACY_KEYS = ("heldout_objects", "sim_to_real")
#: per-result fields copied into a card (the per-image lists stay in the scoring run's files).
RESULT_FIELDS = ("accuracy", "correct", "count", "protocol", "protocol_crop", "depth_ref", "depth_ref_source", "pipeline", "crop",
                 "dataset", "path", "depth", "split_file", "part", "limit", "inference_ms_median", "command")
CLOSED_LOOP_FIELDS = ("successes", "trials", "rate", "ci95", "policy", "objects", "trials_per_object", "seed", "camera",
                      "table_texture", "source", "command", "post_processing")


class CardError(RuntimeError):
    """A card that cannot be written (the message names the file)."""


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def fmt_accuracy(r: dict | None) -> str:
    """``81.5 % (75/92)``; ``–`` when not scored."""
    if not r or not r.get("count"):
        return "–"
    return f"{_pct(r['accuracy'])} ({r['correct']}/{r['count']})"


def fmt_rate(r: dict | None) -> str:
    """``85.0 % (170/200; 95 % CI 79.4-89.3 %)``; ``–`` when not run."""
    if not r or not r.get("trials"):
        return "–"
    lo, hi = r["ci95"]
    return f"{_pct(r['rate'])} ({r['successes']}/{r['trials']}; 95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)"


def _subset(d: dict | None, fields) -> dict | None:
    if not d:
        return None
    return {k: d[k] for k in fields if k in d and d[k] is not None}


def card_metrics(doc: dict, row: dict) -> dict:
    """The ``metrics`` entries of one model's card from a scores document (``dsc-grasp score-models``)."""
    out: dict = {}
    for key in SETS:
        r = row["results"].get(key)
        if r and r.get("count"):
            out[key] = _subset(r, RESULT_FIELDS)
    cl = _subset(row.get("closed_loop"), CLOSED_LOOP_FIELDS)
    if cl:
        out["closed_loop"] = cl
    peers = {}
    for other in doc["rows"]:
        if other.get("kind") != "peer":
            continue
        p = {key: _subset(other["results"][key], RESULT_FIELDS) for key in SETS if other["results"].get(key, {}).get("count")}
        pcl = _subset(other.get("closed_loop"), CLOSED_LOOP_FIELDS)
        if pcl:
            p["closed_loop"] = pcl
        if p:
            p["weights"] = other.get("weights")
            peers[other["name"]] = p
    if peers:
        out["peers_same_images"] = peers
    out["scored"] = {"by": SCORED_BY, "command": doc.get("command"), "date": doc.get("date"),
                     "code_version": doc.get("code_version"), "metric": doc.get("metric")}
    return out


def update_card(model_path, metrics: dict, training: dict | None = None) -> dict:
    """Write ``metrics`` (from :func:`card_metrics`) and optional ``training`` entries into the
    JSON beside ``model_path``; returns the new metadata dict. The card must still load with
    ``model_io.load_metadata`` and its weights must still match their SHA-256, else the old card
    is put back and :class:`CardError` is raised."""
    from dsc_grasp_ros.core.model_io import ModelError, load_metadata, load_model

    model_path = Path(model_path)
    card = model_path.with_suffix(".json")
    old_text = card.read_text()
    meta = json.loads(old_text)
    m = meta.setdefault("metrics", {})
    for k in (*OWNED_KEYS, *LEGACY_KEYS):
        m.pop(k, None)
    m.update(metrics)
    if training:
        meta.setdefault("training", {}).update(training)
    tmp = card.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(card)
    try:
        load_metadata(model_path)
        load_model(model_path, None, "cpu")  # SHA-256 and weights still fit the card's network
    except ModelError as e:
        card.write_text(old_text)
        raise CardError(f"{card}: the updated card does not load ({e}); the old card was put back") from e
    return meta


# --------------------------------------------------------------------------- tables
def _row_title(row: dict) -> str:
    if row.get("kind") == "peer":
        return row.get("title") or row["name"]
    mod = {"rgbd": "RGB-D", "d": "depth", "rgb": "RGB"}.get(row.get("modality"), row.get("modality"))
    return f"DSC-GraspNet {mod} (`{Path(row['file']).name}`)"


def _column_title(doc: dict, key: str) -> str:
    s = doc["sets"].get(key) or {}
    if s.get("skipped"):
        return f"{SETS[key]} (not scored)"
    n = s.get("images")
    return f"{SETS[key]} ({n} images)" if n is not None else SETS[key]


def _closed_loop_title(doc: dict) -> str:
    cl = doc.get("closed_loop") or {}
    if cl.get("skipped") or not cl:
        return "closed-loop grasp success (not run)"
    return f"closed-loop grasp success ({len(cl.get('objects', []))} objects x {cl.get('trials_per_object')} trials)"


def markdown(doc: dict) -> str:
    """The README table, the training table and the notes (which protocol, which command)."""
    keys = list(SETS)
    head = ["model", *(_column_title(doc, k) for k in keys), _closed_loop_title(doc)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in doc["rows"]:
        cells = [_row_title(row), *(fmt_accuracy(row["results"].get(k)) for k in keys), fmt_rate(row.get("closed_loop"))]
        lines.append("| " + " | ".join(cells) + " |")
    cl = doc.get("closed_loop") or {}
    if cl.get("oracle"):
        lines.append("| oracle (knows the object: checks the execution) | | | | " + fmt_rate(cl["oracle"]) + " |")
    notes = ["", "Paper metric, top-1 (angle < 30°, IoU > 0.25)."]
    sets = doc["sets"]
    for key in keys:
        s = sets.get(key) or {}
        if s.get("skipped"):
            notes.append(f"- {SETS[key]}: not scored ({s['skipped']}).")
            continue
        where = f"`{s.get('path')}`" + (f", `{s['split_file']}` part {s['part']}" if s.get("split_file") else "")
        depth = f", {s['depth']} depth" if s.get("dataset") != "cornell" and s.get("depth") else ""
        limit = f", first {s['limit']} images only" if s.get("limit") else ""
        notes.append(f"- {SETS[key]}: {s.get('dataset')} {where}{depth}{limit}; DSC-GraspNet: `dsc-grasp evaluate --protocol "
                     f"{s.get('protocol')}` ({s.get('protocol_crop')}), each model's own depth reference; "
                     f"GR-ConvNet3: its own pipeline (`dsc-grasp eval-peers --crop {s.get('peer_crop')}`).")
    refs = [f"{Path(r['file']).name}: {r.get('depth_ref')}" for r in doc["rows"] if r.get("kind") == "model"]
    if refs:
        notes.append(f"- Depth references (from each model's metadata): {', '.join(refs)}.")
    if any(r.get("kind") == "peer" for r in doc["rows"]):
        notes.append("- GR-ConvNet3's weights (`../shared/peers`) were trained on a random image-wise split of the full Cornell "
                     "dataset, which most likely contained the Cornell held-out images: its Cornell number is not a held-out number.")
    if cl and not cl.get("skipped"):
        sc = cl.get("scene") or {}
        notes.append(f"- Closed loop: `dsc-grasp bench` (docs/bench.md), objects {', '.join(cl.get('objects', []))}; "
                     f"{cl.get('trials_per_object')} trials each, seed {cl.get('seed')}, camera {sc.get('camera')}, "
                     f"table texture {sc.get('table_texture')}; every policy on the same scenes; Wilson 95 % intervals; "
                     f"source `{cl.get('source')}`.")
        post = sorted({json.dumps(r["closed_loop"]["post_processing"], sort_keys=True) for r in doc["rows"]
                       if (r.get("closed_loop") or {}).get("post_processing")})
        if post:
            notes.append("- Closed loop, our models' post-processing (detector settings of the run): "
                         + "; ".join(", ".join(f"{k} {v}" for k, v in json.loads(p).items()) for p in post)
                         + ". GR-ConvNet3 as published (its best grasp, no finger check).")
    elif cl.get("skipped"):
        notes.append(f"- Closed loop: not run ({cl['skipped']}).")
    notes.append(f"- Produced by `{doc.get('command')}` ({doc.get('date')}, commit {str((doc.get('code_version') or {}).get('commit'))[:12]}).")
    return "\n".join(lines + notes) + "\n\n" + training_markdown(doc)


def _training_cells(t: dict) -> list[str]:
    data = t.get("data")
    if not data:
        parts = []
        if t.get("dataset"):
            n = f", {t['train_items']} training images" if t.get("train_items") else ""
            parts.append(f"{t['dataset']} `{t.get('path')}`{n}")
        for mx in t.get("mix") or []:
            parts.append(f"+ {mx.get('dataset', '?')} `{mx.get('path')}`")
        data = " ".join(parts) or "–"
    steps = t.get("steps")
    epochs = t.get("epochs", t.get("epoch"))
    run = ", ".join(x for x in (f"{epochs} epochs" if epochs is not None else "", f"{steps} steps" if steps is not None else "",
                                f"from `{t['init_from']}`" if t.get("init_from") else "") if x) or "–"
    minutes = t.get("minutes", t.get("wall_minutes"))
    return [str(data), run, f"{minutes:.1f}" if isinstance(minutes, (int, float)) else (str(minutes) if minutes else "–"),
            str(t.get("hardware") or "–")]


def training_markdown(doc: dict) -> str:
    """Where and how each model was trained (from its card's ``training``)."""
    lines = ["| model | training data | training | minutes | hardware |", "|---|---|---|---|---|"]
    for row in doc["rows"]:
        if row.get("kind") == "model":
            lines.append("| " + " | ".join([_row_title(row), *_training_cells(row.get("training") or {})]) + " |")
    return "\n".join(lines) + "\n"


def write_cards(doc: dict, training_info: dict | None = None, log=None) -> list[str]:
    """Update the card of every model row of a scores document; returns the cards written."""
    written = []
    for row in doc["rows"]:
        if row.get("kind") != "model":
            continue
        path = Path(row["path_abs"]) if row.get("path_abs") else ROOT / row["file"]
        update_card(path, card_metrics(doc, row), training_for(training_info, path))
        written.append(str(path.with_suffix(".json")))
        if log:
            log(f"card updated: {path.with_suffix('.json')}")
    return written


def training_for(info: dict | None, model_path: Path) -> dict | None:
    """The training entries for one model from a ``--training-info`` mapping: keys ``all``, the
    file name (``dsc_graspnet_rgbd.pt``), its stem or its modality-free alias are merged in that order."""
    if not info:
        return None
    model_path = Path(model_path)
    out: dict = {}
    for key in ("all", "*", model_path.stem, model_path.name):
        v = info.get(key)
        if isinstance(v, dict):
            out.update(v)
    return out or None


def read_training_info(text: str | None) -> dict | None:
    """``--training-info``: a JSON file, or the JSON text itself (starting with ``{``)."""
    if not text:
        return None
    raw = text if text.lstrip().startswith("{") else Path(text).read_text()
    d = json.loads(raw)
    if not isinstance(d, dict) or not all(isinstance(v, dict) for v in d.values()):
        raise ValueError("--training-info must be a JSON object of objects: {\"all\": {...}, \"dsc_graspnet_rgbd\": {...}}")
    return d
