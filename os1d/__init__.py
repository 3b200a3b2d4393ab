"""os1d: a local, private voice companion daemon."""

__version__ = "0.1.0"
