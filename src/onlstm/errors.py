"""Exceptions shared across the package.

`UserError` marks a mistake of the user (a missing file, a malformed line, a bad
argument): the command line prints its message and exits with status 2, without a
traceback. Everything else is a bug and keeps its traceback.

It is a `ValueError`, so a library caller's ``except ValueError`` also catches a bad
configuration or a malformed file.
"""


class UserError(ValueError):
    """An error caused by user input; the message says what to fix."""
