"""The runtime core: pre/post-processing, network, backends, geometry, finger clearance, inference.

Imports no rclpy and no message package; usable from plain Python."""
