"""Training: the loss of the paper and the training loop behind ``dsc-grasp train``."""

from .loss import LOSSES, grasp_loss

__all__ = ["LOSSES", "grasp_loss"]
