"""Grasp datasets (Cornell, Jacquard, Jacquard-format), augmentation and splits."""

from .augment import Augmentation, rot90_array, rot90_matrix, zoom_roi
from .datasets import DATASETS, LABEL_MODES, GraspDataset, Item, collate, find_items, read_object_map, read_rects
from .formats import (
    DatasetFormatError,
    read_cornell_grasps,
    read_depth,
    read_jacquard_grasps,
    read_rgb,
    write_cornell_grasps,
    write_depth,
    write_jacquard_grasps,
    write_rgb,
)
from .splits import SPLITS, load_split, make_split, save_split, select

__all__ = [
    "Augmentation", "rot90_array", "rot90_matrix", "zoom_roi",
    "DATASETS", "LABEL_MODES", "GraspDataset", "Item", "collate", "find_items", "read_object_map", "read_rects",
    "DatasetFormatError", "read_cornell_grasps", "read_depth", "read_jacquard_grasps", "read_rgb",
    "write_cornell_grasps", "write_depth", "write_jacquard_grasps", "write_rgb",
    "SPLITS", "load_split", "make_split", "save_split", "select",
]
