"""Lifecycle transitions requested *by id* in the wrong state, over real DDS,
and truncated serialized images sent to the running node.

rclpy's ``change_state`` service calls ``trigger_transition_by_id`` without checking that the
transition exists in the current state, so ``RCLError: Transition is not registered`` escaped
``executor.spin()`` and killed the node. Launch ``ChangeState`` events and lifecycle managers
send ids, so the node must answer ``success=false`` and keep serving.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402

from ros_helpers import open_ros_context, start_node, write_params  # noqa: E402

DOMAIN_ID = 211  # fixed, outside pick_domain_id()'s 20..199 and the tf2 test's 231


def _call(client, req, timeout=20.0):
    assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
    fut = client.call_async(req)
    deadline = time.monotonic() + timeout
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fut.done(), f"no answer from {client.srv_name} (node dead?)"
    return fut.result()


def test_transition_by_id_in_wrong_state_answers_false(tmp_path, monkeypatch):
    ctx, env = open_ros_context(monkeypatch, DOMAIN_ID)
    params = write_params(tmp_path / "params.yaml", {"device": "cpu", "diagnostics_period": 0.5, "qos_reliability": "reliable"})
    node = start_node(params, env, tmp_path / "node.log")
    from rclpy.executors import SingleThreadedExecutor

    client_node = rclpy.create_node("lifecycle_prober", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(client_node)
    import threading

    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    try:
        change = client_node.create_client(ChangeState, "/grasp_node/change_state")
        get = client_node.create_client(GetState, "/grasp_node/get_state")

        def by_id(tid):
            return _call(change, ChangeState.Request(transition=Transition(id=tid))).success

        def state():
            return _call(get, GetState.Request()).current_state.label

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not get.service_is_ready() or state() != "active"):
            assert node.alive(), node.output()
            time.sleep(0.2)
        assert state() == "active", node.output()

        # truncated serialized Images over DDS (raw CDR bytes) must not stop the node's spin
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.serialization import serialize_message
        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        from dsc_grasp_ros.ros import conversions as conv

        diags = []
        client_node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        pub = client_node.create_publisher(Image, "/color/image_raw", 10)
        raw = serialize_message(conv.array_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8", Header(frame_id="cam")))
        deadline = time.monotonic() + 10
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        for cut in (10, 30, 60, len(raw) - 100):
            pub.publish(raw[:cut])  # rclpy publishes bytes as an already serialized message
            time.sleep(0.1)

        def truncated_count():
            for d in reversed(diags):
                for st in d.status:
                    for kv in st.values:
                        if kv.key == "truncated_message":
                            return int(kv.value)
            return 0

        deadline = time.monotonic() + 15
        while truncated_count() < 4 and time.monotonic() < deadline:
            assert node.alive(), node.output()
            time.sleep(0.1)
        assert truncated_count() == 4, (diags[-1:], node.output())
        assert node.alive() and state() == "active"
        # wrong state: each answered false, state unchanged, node alive
        for tid in (Transition.TRANSITION_CLEANUP, Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE, 99):
            assert by_id(tid) is False, tid
            assert node.alive(), node.output()
            assert state() == "active"
        assert by_id(Transition.TRANSITION_DEACTIVATE) and state() == "inactive"
        assert by_id(Transition.TRANSITION_DEACTIVATE) is False and state() == "inactive"
        assert by_id(Transition.TRANSITION_CLEANUP) and state() == "unconfigured"
        assert by_id(Transition.TRANSITION_ACTIVATE) is False and state() == "unconfigured"  # activate before configure
        assert by_id(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN) and state() == "finalized"
        assert by_id(Transition.TRANSITION_CONFIGURE) is False  # configure after shutdown
        assert state() == "finalized" and node.alive(), node.output()
        # by label in the wrong state too (rclpy already handled this one)
        assert _call(change, ChangeState.Request(transition=Transition(label="activate"))).success is False
        assert node.alive()
    finally:
        ex.shutdown()
        client_node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        node.stop()
    log = node.output()
    assert "Transition is not registered" not in log and "Traceback" not in log, log
    assert "not available in state" in log, log
