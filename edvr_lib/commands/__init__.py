"""The ``edvr`` subcommands, one module each: argparse and option checks only, then one library call.

Registered in :data:`edvr_lib.cli.COMMANDS` (explicitly, no folder scanning).
"""
