"""The one error type a user can cause: its message is a single line that says what to do."""


class UserError(Exception):
    """A problem the user can fix (bad config, missing model, missing device); printed as one line."""
