"""The one exception type that means "the user gave us something we cannot use".

The CLI turns it into a single line on stderr and exit code 2; everything else is a bug and keeps its
traceback.
"""


class InputError(ValueError):
    """Bad user input: the message names the offending file or value and says how to fix it."""
