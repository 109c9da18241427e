"""berth's exception hierarchy.

BerthError
├── TransientError   retry later (broker or database unavailable, timeouts); messages are nak'ed
└── PermanentError   retrying cannot help (undecodable message); messages are terminated
"""


class BerthError(Exception):
    """Base of every error berth raises on purpose."""


class TransientError(BerthError):
    """Worth retrying: the same input may succeed later."""


class PermanentError(BerthError):
    """Not worth retrying: the input itself is unusable."""
