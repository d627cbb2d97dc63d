"""The one exception type that reaches users as a clear one-line error (exit code 2)."""


class SymtuneError(Exception):
    """Bad input or an unmet precondition. The CLI prints the message and exits with code 2."""
