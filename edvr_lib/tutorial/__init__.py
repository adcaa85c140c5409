"""The notebooks' teaching demos: small PCD / TSA models trained on known motion, their fit loop and figures.

Not part of the network (:mod:`edvr_lib.archs`); import the modules explicitly::

    from edvr_lib.tutorial import pcd_demo, tsa_demo
"""
