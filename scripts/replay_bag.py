#!/usr/bin/env python3
"""Replay a rosbag2 (stored CDR + /clock) over DDS; see ``python -m dsc_grasp_ros.devtools.replay -h``.

    .venv/bin/python scripts/replay_bag.py data/bags/sim_rgbd --hz 30 --loop 3
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsc_grasp_ros.devtools.replay import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
