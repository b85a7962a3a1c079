"""The one exception type that reaches the user as a single line and exit code 2."""


class InputError(Exception):
    """Bad user input: the message names the file, the object and the problem."""
