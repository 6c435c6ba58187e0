"""Benchmarks of the whole chain (ROS-free): closed-loop simulated picking and the peer networks
(GR-ConvNet3, GG-CNN2) it compares against. Peer code lives here, not in the core."""
