"""Development and test tooling around the node: bag writing and replay, a listener, the tf2
stand-in and the closed-loop bench driver. Not needed to run the node on a robot."""
