"""The one exception type for errors a user can cause (bad config, missing file, mismatch)."""


class TTLError(Exception):
    """An error caused by the user's input; entry points print it as one line and exit 2."""
