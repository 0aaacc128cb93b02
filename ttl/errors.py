"""The one exception type for errors a user can cause, and the check every settings class shares."""


class TTLError(Exception):
    """An error caused by the user's input; entry points print it as one line and exit 2."""


def reason(error: BaseException) -> str:
    """`Type: first line` of an exception, for a one-line message."""
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:200]}"


def check_positive(prefix: str, **values: int | None) -> None:
    """Refuse a count below 1 (None: unset, allowed), naming the key as `prefix + key`."""
    for key, value in values.items():
        if value is not None and value < 1:
            raise TTLError(f"{prefix}{key}={value!r}: must be at least 1")
