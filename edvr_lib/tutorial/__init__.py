"""The notebooks' teaching demos: small PCD / TSA models trained on known motion, their fit loop and figures.

Not part of the network (:mod:`edvr_lib.archs`); import the modules explicitly::

    from edvr_lib.tutorial import pcd_demo, tsa_demo

* :mod:`~edvr_lib.tutorial.why_align`: fusing a moving window raw vs aligned with the true flow (notebook 02);
* :mod:`~edvr_lib.tutorial.network_tour`: one window through the whole EDVR, parameters / FLOPs per stage, paper vs
  code (notebook 02);
* :mod:`~edvr_lib.tutorial.pcd_demo`: a small PCD trained on known motion (notebook 02);
* :mod:`~edvr_lib.tutorial.alignment_real`: the learned EDVR's PCD motion on real frames vs Farneback flow (02);
* :mod:`~edvr_lib.tutorial.tsa_demo`: TSA fusion demos (notebook 03);
* :mod:`~edvr_lib.tutorial.results`: ``record(...)``, the checked headline figures every "Reading the results" cell
  states and ``make tutorial`` writes to ``docs/tutorial_results.md``.
"""
