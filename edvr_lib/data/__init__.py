"""Data: the embedded offline dataset, REDS / Vimeo-90K loaders, MATLAB bicubic, safe frame I/O.

Typical use::

    from edvr_lib.data import prepare_embedded, embedded_paths, REDSDataset, VideoTestDataset
    paths = embedded_paths(prepare_embedded())
    train = REDSDataset(paths["gt"], paths["lq"], paths["meta_train"], val_partition=None)
    test = VideoTestDataset(paths["gt"], paths["lq"], paths["meta_test"])
"""
from edvr_lib.data.embedded import (embedded_paths, ground_truth_flow, load_motion, prepare_embedded,
                                    synthetic_clip_names)
from edvr_lib.data.imresize import imresize
from edvr_lib.data.io import read_image, read_meta_info, write_png
from edvr_lib.data.motion_dataset import MotionWindowDataset
from edvr_lib.data.reds_dataset import REDSDataset
from edvr_lib.data.transforms import augment, dihedral_variants, generate_frame_indices, paired_random_crop
from edvr_lib.data.video_test_dataset import VideoTestDataset
from edvr_lib.data.vimeo_dataset import Vimeo90KDataset

__all__ = ["embedded_paths", "ground_truth_flow", "load_motion", "prepare_embedded", "read_meta_info",
           "synthetic_clip_names", "imresize", "read_image", "write_png", "REDSDataset", "MotionWindowDataset",
           "VideoTestDataset", "Vimeo90KDataset", "augment", "dihedral_variants", "generate_frame_indices",
           "paired_random_crop"]
