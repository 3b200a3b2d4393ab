"""The one error type a user can cause: its message is a single line that says what to do."""


class UserError(Exception):
    """A problem the user can fix (bad config, missing model, missing device); printed as one line."""


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (or its type name), for a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
