"""The ``edvr`` subcommands, one module each (argparse and option checks, then one library call), registered in
:data:`edvr_lib.cli.COMMANDS`."""
