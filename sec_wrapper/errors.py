"""The one error type the CLI turns into a one-line message and exit status 2."""


class SecError(Exception):
    """A user-facing failure: the message says what is wrong and how to fix it, in one line."""
