"""The one exception type users see for bad input."""


class EDVRError(Exception):
    """A problem with the user's input (a file, a folder, a value).

    The message names what is wrong and how to fix it. The command line prints it without a traceback, exit status 2.
    """
