"""``dsc-grasp model-card``: write the model cards of a scoring run, or print its table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import invoke

DESCRIPTION = """\
Write a scoring run's numbers into the models' JSON cards (metrics: synthetic_unseen,
cornell_heldout, jacquard_heldout, closed_loop, peers_same_images, scored) and print the README
table. The numbers come from 'dsc-grasp score-models', which writes the cards itself unless
--no-cards: this command writes them later from its scores.json, or prints the table only.
Every card must still load afterwards (its weights and their SHA-256 are never touched), else the
old card is put back and the command exits with status 2.
"""

EPILOG = """\
examples:
  dsc-grasp model-card --from runs/scores/scores.json            # write the cards of a scoring run
  dsc-grasp model-card --from runs/scores/scores.json --table    # print its table only
  dsc-grasp model-card --heldout SIM/test models/dsc_graspnet_*.pt  # = dsc-grasp score-models --sim-test SIM/test ...
"""


def register(sub):
    ap = sub.add_parser("model-card", help="write the model cards of a scoring run (dsc-grasp score-models), or print its table",
                        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path, help="with --heldout: model files (.pt with .json beside them)")
    ap.add_argument("--from", dest="source", type=Path, help="scores.json of dsc-grasp score-models: write its cards (or --table)")
    ap.add_argument("--table", action="store_true", help="with --from: print the Markdown table only, write no card")
    ap.add_argument("--training-info", default=None, help="with --from: JSON file or text merged into each card's 'training' "
                    "(keys: 'all', a model file name or stem)")
    ap.add_argument("--heldout", type=Path, help="the old interface: run dsc-grasp score-models --sim-test HELDOUT on the models")
    ap.add_argument("--depth", default="stereo", help="with --heldout: depth image of the held-out set (default: %(default)s)")
    ap.add_argument("--shared", type=Path, default=None, help="with --heldout: real samples (default ../shared/data)")
    ap.set_defaults(func=run, _parser=ap)


def run(args) -> int:
    from ..bench.model_card import CardError, markdown, read_training_info, write_cards

    if args.source:
        try:
            doc = json.loads(args.source.read_text())
        except (OSError, ValueError) as e:
            print(f"dsc-grasp model-card: error: {args.source}: {e}", file=sys.stderr)
            return 2
        if args.table:
            print(markdown(doc))
            return 0
        try:
            for c in write_cards(doc, read_training_info(args.training_info)):
                print(f"updated {c}", file=sys.stderr)
        except (CardError, ValueError, OSError) as e:
            print(f"dsc-grasp model-card: error: {e}", file=sys.stderr)
            return 2
        print(markdown(doc))
        return 0
    if args.heldout:
        fwd = [str(m) for m in args.models] + ["--sim-test", str(args.heldout), "--sim-depth", args.depth]
        if args.shared:
            fwd += ["--shared", str(args.shared)]
        return invoke("score_models", ["score-models", *fwd])
    args._parser.error("give --from SCORES.json or --heldout DIR MODELS...")
    return 2
