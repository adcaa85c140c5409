"""The notebooks' teaching demos (not part of the network; import the modules explicitly:
``from edvr_lib.tutorial import pcd_demo, tsa_demo``): notebook 02's :mod:`~edvr_lib.tutorial.why_align`,
:mod:`~edvr_lib.tutorial.network_tour`, :mod:`~edvr_lib.tutorial.pcd_demo` and
:mod:`~edvr_lib.tutorial.alignment_real`, notebook 03's :mod:`~edvr_lib.tutorial.tsa_demo`, and
:mod:`~edvr_lib.tutorial.results`, the checked headline figures of every "Reading the results" cell.
"""
