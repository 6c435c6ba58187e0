"""A worked example of a robot-side client: ask ``grasp_node`` for grasps with the MoveIt service
``~/plan_grasps`` (moveit_msgs/srv/GraspPlanning) and execute the best answer on the benchmark's
simulated Panda: pre-grasp (``pre_grasp_approach`` back from ``grasp_pose``), approach, close,
retreat (lift), hold.

The node runs in ``mode: request`` (no inference until asked) as a separate process; the simulator
is its camera driver and robot state publisher (colour, aligned depth, camera_info and ``/tf``,
as :class:`~dsc_grasp_ros.devtools.bench_driver.NodePolicy`). While a request waits, the camera keeps
streaming (a fresh stamp every ``frame_period`` s), as a real camera does; the node answers from the
first image pair that arrives after the request. The executed pose is the ``grasp_pose`` as the node
computed it (past the surface, in the robot's TCP frame: mapped back with the gripper's
``tcp_transform``), the pre-grasp distance is the message's, the opening comes from the
``pre_grasp_posture`` joint values: the benchmark executes exactly what a MoveIt client receives.

    python -m dsc_grasp_ros.devtools.grasp_client --objects banana,pear --trials 2
    python -m dsc_grasp_ros.devtools.grasp_client --tcp robotiq_2f_85 ...   (the Robotiq's TCP frame on the Panda)

On a robot the same steps run with moveit_py (docs/ros.md, "GraspPlanning with MoveIt").
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from ..bench.policies import ImageGrasp, Observation, PlannedGrasp, PolicyError
from ..core.gripper import preset
from .bench_driver import NodeNotAnswering, NodePolicy, observation_messages


class PlanningPolicy(NodePolicy):
    """The benchmark policy whose plan is ``grasp_node``'s answer to GraspPlanning (see the module docstring).

    ``tcp_transform``: the node's ``tcp_transform`` parameter (None: the preset's); ``node_params``:
    any other node parameters (``support_plane`` defaults to ``clamp``: the node fits the table and keeps
    the fingertips above it, as the benchmark's executor does with the simulated table)."""

    def __init__(self, name: str = "dsc_rgbd@plan_grasps", tcp_transform=None, frame_period: float = 0.2,
                 plan_timeout: float = 30.0, **node_params):
        node_params.setdefault("support_plane", "clamp")
        node_params.setdefault("gripper", "franka_hand")
        node_params["mode"] = "request"
        node_params["plan_timeout"] = float(plan_timeout)
        if tcp_transform is not None:
            node_params["tcp_transform"] = [float(a) for a in tcp_transform]
        self.gripper = preset(node_params["gripper"])
        if tcp_transform is not None:
            self.gripper = self.gripper.with_overrides(tcp_transform=tuple(float(a) for a in tcp_transform))
        self.frame_period = float(frame_period)
        self.opening_margin = float(node_params.get("opening_margin", 0.01))
        super().__init__(name=name, **node_params)
        from moveit_msgs.srv import GraspPlanning

        self._srv_type = GraspPlanning
        self._client = self._node.create_client(GraspPlanning, f"/{self._node_name()}/plan_grasps")
        deadline = time.monotonic() + 60
        while not self._client.service_is_ready():
            if time.monotonic() > deadline or self._dead():
                self.close()
                raise NodeNotAnswering(f"grasp_node offers no ~/plan_grasps; its log ends with:\n{self.log_tail()}")
            time.sleep(0.1)

    @staticmethod
    def _node_name() -> str:
        from .bench_driver import NODE_NAME

        return NODE_NAME

    def describe(self) -> dict:
        d = super().describe()
        d.update(mode="GraspPlanning through grasp_node (request mode)", tcp_transform=list(self.gripper.tcp_transform))
        return d

    def plan(self, obs: Observation) -> PlannedGrasp | None:
        answer = self.request(obs)
        code, message, grasps = answer
        if code == "PLANNING_FAILED":
            return None
        if code != "SUCCESS":
            raise NodeNotAnswering(f"~/plan_grasps answered {code}: {message}")
        return self.to_planned(grasps[0], obs)

    def request(self, obs: Observation, target_id: str = "") -> tuple[str, str, list]:
        """Call ~/plan_grasps while streaming ``obs`` as the camera; ``(code name, message, grasps)``."""
        from moveit_msgs.msg import MoveItErrorCodes

        codes = {v: k for k, v in vars(MoveItErrorCodes).items() if k.isupper() and type(v) is int}
        req = self._srv_type.Request()
        req.target.id = target_id
        fut = self._client.call_async(req)
        deadline = time.monotonic() + self.timeout
        while not fut.done():
            if time.monotonic() > deadline or self._dead():
                raise NodeNotAnswering(f"~/plan_grasps did not answer within {self.timeout:.0f} s; log:\n{self.log_tail()}")
            self._publish_frame(obs)
            fut_wait = time.monotonic() + self.frame_period
            while not fut.done() and time.monotonic() < fut_wait:
                time.sleep(0.005)
        r = fut.result()
        return codes.get(r.error_code.val, str(r.error_code.val)), r.error_code.error_message, list(r.grasps)

    def to_planned(self, grasp, obs: Observation) -> PlannedGrasp:
        """A moveit_msgs/Grasp -> what the executor runs: the grasp pose (TCP frame, at the grasp depth),
        the pre-grasp distance and the opening of the pre-grasp posture."""
        if grasp.grasp_pose.header.frame_id != obs.base_frame:
            raise PolicyError(f"grasp in frame {grasp.grasp_pose.header.frame_id!r}, not {obs.base_frame!r}")
        p, q = grasp.grasp_pose.pose.position, grasp.grasp_pose.pose.orientation
        opening = self.gripper.width_of(list(grasp.pre_grasp_posture.points[0].positions))
        width = max(0.0, opening - 2 * self.opening_margin)
        return PlannedGrasp(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]), width,
                            ImageGrasp(0.0, 0.0, 0.0, 0.0, float(grasp.grasp_quality)), {"id": grasp.id},
                            tcp_transform=tuple(self.gripper.tcp_transform), at_grasp_depth=True,
                            pregrasp_m=float(grasp.pre_grasp_approach.desired_distance))

    def _publish_frame(self, obs: Observation) -> None:
        tf, info, depth, color = observation_messages(obs, self._stamp())
        self._pub_tf.publish(self._TFMessage(transforms=[tf]))
        self._pub_info.publish(info)
        time.sleep(0.005)
        self._pub_depth.publish(depth)
        self._pub_color.publish(color)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Call grasp_node's ~/plan_grasps (moveit_msgs/srv/GraspPlanning) and execute "
                                             "the answers on the benchmark's simulated Panda; prints the benchmark summary.")
    ap.add_argument("--objects", default="banana,tomato_soup_can,power_drill", help="comma-separated benchmark objects")
    ap.add_argument("--trials", type=int, default=1, help="scenes per object (default: 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tcp", default=None, help="publish in this preset's TCP frame (e.g. robotiq_2f_85), executed on the Panda "
                                                "after the inverse transform (default: the Franka hand's)")
    ap.add_argument("--out", default=None, help="folder for trials.jsonl and summary.json")
    a = ap.parse_args(argv)
    from ..bench import report
    from ..bench.runner import run_benchmark

    tcp = None if a.tcp is None else preset(a.tcp).tcp_transform
    pol = PlanningPolicy(tcp_transform=tcp)
    try:
        records, doc, _ = run_benchmark([pol], [o for o in a.objects.split(",") if o], a.trials, a.seed, tiles=False)
    finally:
        pol.close()
    for r in records:
        print(json.dumps({k: r[k] for k in ("object", "trial", "outcome", "error")} | {"executed_tcp_base": (r.get("executed") or {}).get("tcp_base")}))
    print(report.format_table(doc["policies"]))
    if a.out:
        from pathlib import Path

        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (out / "summary.json").write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
