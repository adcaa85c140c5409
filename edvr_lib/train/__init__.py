"""Training EDVR: option files (``options``) and the training loop, driven by ``edvr train``.

Submodules are imported explicitly (``from edvr_lib.train.options import load_options``); nothing heavy is
imported here.
"""
