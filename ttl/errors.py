"""The one exception type for errors a user can cause, and the check every settings class shares."""


class TTLError(Exception):
    """An error caused by the user's input; entry points print it as one line and exit 2."""


def check_positive(prefix: str, **values: int | None) -> None:
    """Refuse a count below 1 (None: unset, allowed), naming the key as `prefix + key`."""
    for key, value in values.items():
        if value is not None and value < 1:
            raise TTLError(f"{prefix}{key}={value!r}: must be at least 1")
